"""The embedded event feed (docs/bridge/feed.md): consumers read the outbox over local HTTP, no broker needed.

``GET /events`` long-polls (JSON lines or msgpack), ``GET /events/stream`` is server-sent events; both resume
from a cursor, the outbox rowid. The feed reads the outbox through its own read-only connections and never
writes to it.
"""

from bridge.feed.config import FeedConfigError, FeedError, FeedSettings, feed_settings, is_loopback, parse_listen
from bridge.feed.server import ROUTES, FeedServer, Request

__all__ = ["FeedConfigError", "FeedError", "FeedServer", "FeedSettings", "ROUTES", "Request", "feed_settings",
           "is_loopback", "parse_listen"]

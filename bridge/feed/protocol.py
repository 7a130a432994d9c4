"""The feed's wire format, sans I/O: query parameters, content negotiation, and the bytes of each response body.

Nothing here touches a socket or the outbox; ``server.py`` wires it to both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl

import msgpack

from protocols.events import to_json_view

# Bounds, each with its reason.
MAX_WAIT_S = 60.0  # a long-poll longer than a minute only ties up a thread; proxies often cut at 60-120 s
DEFAULT_LIMIT = 1000  # rows per response: ~100-300 kB of JSON lines, one round trip per capture burst
MAX_LIMIT = 10_000  # a response stays a few MB at most, built in memory
MAX_LAST = MAX_LIMIT  # ``last=N`` is bounded like ``limit``
MAX_GLOBS = 16  # per parameter (type, src); more is a misuse
MAX_GLOB_LEN = 256
MAX_FIELDS = 64  # query fields in one request

NDJSON = "application/x-ndjson"
MSGPACK = "application/msgpack"
SSE = "text/event-stream"
_OFFERS = {
    NDJSON: NDJSON, "application/jsonl": NDJSON, "application/json": NDJSON,
    MSGPACK: MSGPACK, "application/x-msgpack": MSGPACK, "application/vnd.msgpack": MSGPACK,
    "*/*": NDJSON, "application/*": NDJSON,
}


_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only (str.isdigit also takes "²"), at most a 64-bit rowid


class BadRequest(ValueError):
    """A client's mistake; ``str()`` is the one line the 400 response carries."""


@dataclass(frozen=True)
class Filter:
    """``type`` and ``src`` globs (``fnmatch``, case-sensitive); several of one kind match if any matches."""

    types: tuple[str, ...] = ()
    srcs: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.types or self.srcs)

    @property
    def needs_type(self) -> bool:
        return bool(self.types)

    def matches(self, src: str, type_: str | None) -> bool:
        if self.srcs and not any(fnmatchcase(src, g) for g in self.srcs):
            return False
        if self.types and not any(fnmatchcase(type_ or "", g) for g in self.types):
            return False
        return True


@dataclass(frozen=True)
class EventsQuery:
    after: int = 0
    wait: float = 0.0
    limit: int = DEFAULT_LIMIT
    last: int | None = None  # the newest N matching rows after ``after`` instead of the oldest ``limit``
    filter: Filter = Filter()


@dataclass(frozen=True)
class StreamQuery:
    after: int = 0
    filter: Filter = Filter()


def _fields(query: str, known: tuple[str, ...]) -> dict[str, list[str]]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise BadRequest(f"too many query parameters (at most {MAX_FIELDS})") from None
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        if key not in known:
            raise BadRequest(f"unknown parameter {key!r}; known: {', '.join(known)}")
        fields.setdefault(key, []).append(value)
    for key, values in fields.items():
        if key not in ("type", "src") and len(values) > 1:
            raise BadRequest(f"parameter {key!r} given {len(values)} times; give it once")
    return fields


def _int(name: str, text: str, lo: int, hi: int | None) -> int:
    if not _DIGITS.fullmatch(text):
        raise BadRequest(f"{name} must be a whole number ≥ {lo}, not {text!r}")
    value = int(text)
    if value < lo or (hi is not None and value > hi):
        raise BadRequest(f"{name} must be between {lo} and {hi}, not {value}" if hi is not None
                         else f"{name} must be ≥ {lo}, not {value}")
    return value


def _filter(fields: dict[str, list[str]]) -> Filter:
    for name in ("type", "src"):
        globs = fields.get(name, [])
        if len(globs) > MAX_GLOBS:
            raise BadRequest(f"at most {MAX_GLOBS} {name} globs")
        for glob in globs:
            if not glob or len(glob) > MAX_GLOB_LEN:
                raise BadRequest(f"{name} must be a non-empty glob of at most {MAX_GLOB_LEN} characters")
    return Filter(tuple(fields.get("type", ())), tuple(fields.get("src", ())))


MAX_CURSOR = 2**63 - 1  # SQLite's largest rowid


def parse_cursor(name: str, text: str) -> int:
    return _int(name, text.strip(), 0, MAX_CURSOR)


def parse_events_query(query: str) -> EventsQuery:
    fields = _fields(query, ("after", "wait", "limit", "last", "type", "src"))
    after = parse_cursor("after", fields["after"][0]) if "after" in fields else 0
    wait = 0.0
    if "wait" in fields:
        text = fields["wait"][0]
        try:
            wait = float(text)
        except ValueError:
            raise BadRequest(f"wait must be seconds between 0 and {MAX_WAIT_S:g}, not {text!r}") from None
        if not 0.0 <= wait <= MAX_WAIT_S:  # also refuses nan and inf
            raise BadRequest(f"wait must be seconds between 0 and {MAX_WAIT_S:g}, not {text!r}")
    limit = _int("limit", fields["limit"][0], 1, MAX_LIMIT) if "limit" in fields else DEFAULT_LIMIT
    last = _int("last", fields["last"][0], 0, MAX_LAST) if "last" in fields else None
    if last is not None and "limit" in fields:
        raise BadRequest("give limit or last, not both")
    return EventsQuery(after, wait, limit, last, _filter(fields))


def parse_stream_query(query: str, last_event_id: str | None) -> StreamQuery:
    """``Last-Event-ID`` (sent by a reconnecting EventSource) wins over ``after`` (the URL it first opened)."""
    fields = _fields(query, ("after", "type", "src"))
    after = parse_cursor("after", fields["after"][0]) if "after" in fields else 0
    if last_event_id is not None and last_event_id.strip():
        after = parse_cursor("Last-Event-ID", last_event_id)
    return StreamQuery(after, _filter(fields))


def negotiate(accept: str | None) -> str | None:
    """The body format for an ``Accept`` header: NDJSON (also when absent) or MSGPACK; None when neither is
    acceptable (406). Quality values are honoured; the earlier range wins a tie."""
    if accept is None or not accept.strip():
        return NDJSON
    best, best_q = None, 0.0
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offer = _OFFERS.get(media.lower())
        if offer and q > best_q:
            best, best_q = offer, q
    return best


def unpack(envelope: bytes) -> dict:
    return msgpack.unpackb(envelope, raw=False, strict_map_key=False)


def json_line(event: dict) -> bytes:
    """One JSON-lines record: the JSON view of the envelope (bytes as hex), as ``tillwire decode`` prints it."""
    return json.dumps(to_json_view(event), ensure_ascii=False).encode() + b"\n"


def sse_event(rowid: int, event: dict) -> bytes:
    """An envelope as a server-sent event: no ``event:`` field (so ``onmessage`` gets every one; the type is in
    the data), ``id:`` the cursor, ``data:`` the JSON view on one line."""
    return b"id: %d\ndata: " % rowid + json_line(event) + b"\n"


def sse_gap(after: int, first: int) -> bytes:
    """Rows after ``after`` and before ``first`` were pruned before this consumer read them."""
    return b'event: gap\ndata: {"after": %d, "first": %d}\n\n' % (after, first)


def sse_position(cursor: int) -> bytes:
    """An ``id:`` without data: moves the consumer's Last-Event-ID past rows it was not sent (filtered out or
    pruned) without dispatching an event."""
    return b"id: %d\n\n" % cursor


SSE_HEARTBEAT = b": keep-alive\n\n"
SSE_PREAMBLE = b"retry: 1000\n\n"  # EventSource reconnects after 1 s

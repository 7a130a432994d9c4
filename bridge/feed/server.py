"""The feed's HTTP server: ``FeedServer`` (docs/bridge/feed.md).

Threads: one accepts connections (``serve_forever``), one per connection serves it, one watches the outbox file
for commits by any writer. Routes are data (``ROUTES``: path → handler); issue 8 adds ``/metrics``, ``/livez``,
``/readyz`` and ``/status`` as entries, through ``FeedServer.add_route``.
"""

from __future__ import annotations

import hmac
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from bridge.feed import protocol as wire
from bridge.feed.config import FeedConfigError, FeedError, check_exposure
from bridge.feed.reader import OutboxReader

log = logging.getLogger("tillwire.feed")

DEFAULT_PORT = 8765
HEARTBEAT_S = 15.0  # SSE comment line when nothing else was sent; proxies cut idle connections at 30-60 s
POLL_S = 0.25  # how often the watcher looks for commits by a writer that does not call notify()
WRITE_TIMEOUT_S = 10.0  # a client that takes longer to accept bytes (or to send its request) is dropped
MAX_CLIENTS = 64  # open connections; more get 503 at once (each costs a thread)
STOP_GRACE_S = 1.0  # stop() lets handlers finish this long before it shuts their sockets


class Request:
    """What a route handler sees: the parsed request and ways to answer it (one response, or a stream)."""

    def __init__(self, handler: BaseHTTPRequestHandler, feed: "FeedServer"):
        self._h = handler
        self.feed = feed
        url = urlsplit(handler.path)
        self.path = url.path
        self.query = url.query
        self.headers = handler.headers
        self.method = handler.command

    def respond(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
                headers: dict[str, str] | None = None) -> None:
        h = self._h
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        if body and self.method != "HEAD":
            h.wfile.write(body)

    def fail(self, status: int, line: str, headers: dict[str, str] | None = None) -> None:
        self.respond(status, line.encode() + b"\n", headers=headers)

    def start_stream(self, content_type: str, headers: dict[str, str] | None = None) -> None:
        h = self._h
        h.send_response(HTTPStatus.OK)
        h.send_header("Content-Type", content_type)
        h.send_header("Cache-Control", "no-store")
        h.send_header("X-Accel-Buffering", "no")  # nginx: do not buffer the stream
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()

    def write(self, data: bytes) -> None:
        """Send bytes now; raises OSError (timeout, reset) when the client is gone or too slow."""
        self._h.wfile.write(data)


Route = Callable[[Request], None]


def handle_events(req: Request) -> None:
    """``GET /events``: long-poll. Returns as soon as a row (or a gap) is there, or when ``wait`` expires; at once
    for a cursor above the head (it came from another outbox)."""
    try:
        q = wire.parse_events_query(req.query)
    except wire.BadRequest as exc:
        return req.fail(HTTPStatus.BAD_REQUEST, str(exc))
    fmt = wire.negotiate(req.headers.get("Accept"))
    if fmt is None:
        return req.fail(HTTPStatus.NOT_ACCEPTABLE, f"this endpoint sends {wire.NDJSON} or {wire.MSGPACK}")
    feed = req.feed
    deadline = time.monotonic() + q.wait
    after, gap = q.after, None
    while True:
        seen = feed._change_count
        if q.last is not None:
            batch = feed._reader.read_last(after, q.last, q.filter)
        else:
            batch = feed._reader.read(after, q.limit, q.filter)
        gap = gap if gap is not None else batch.gap
        after = batch.cursor
        remaining = deadline - time.monotonic()
        ahead = after > batch.head  # a cursor from another (older) outbox: say so now, do not wait
        if batch.rows or gap is not None or ahead or q.last is not None or remaining <= 0 or feed._stopping.is_set():
            break
        feed._wait_for_change(seen, remaining)
    if fmt == wire.MSGPACK:
        body = b"".join(row.envelope for row in batch.rows)
    else:
        body = b"".join(wire.json_line(row.event or wire.unpack(row.envelope)) for row in batch.rows)
    headers = {"Tillwire-Cursor": str(after), "Tillwire-Head": str(batch.head)}
    if gap is not None:
        headers["Tillwire-Gap"] = str(gap)
    req.respond(HTTPStatus.OK, body, fmt, headers)


def handle_stream(req: Request) -> None:
    """``GET /events/stream``: server-sent events from the cursor on, until the client leaves or the feed stops."""
    try:
        q = wire.parse_stream_query(req.query, req.headers.get("Last-Event-ID"))
    except wire.BadRequest as exc:
        return req.fail(HTTPStatus.BAD_REQUEST, str(exc))
    feed = req.feed
    req._h.close_connection = True
    req.start_stream(wire.SSE)
    after = q.after
    try:
        req.write(wire.SSE_PREAMBLE)
        last_write = time.monotonic()
        while not feed._stopping.is_set():
            seen = feed._change_count
            batch = feed._reader.read(after, wire.DEFAULT_LIMIT, q.filter)
            out = []
            if batch.gap is not None:
                out.append(wire.sse_gap(after, batch.gap))
            for row in batch.rows:
                out.append(wire.sse_event(row.rowid, row.event or wire.unpack(row.envelope)))
            sent_to = batch.rows[-1].rowid if batch.rows else after
            if batch.cursor > sent_to:
                out.append(wire.sse_position(batch.cursor))
            after = batch.cursor
            now = time.monotonic()
            if out:
                req.write(b"".join(out))
                last_write = now
                continue  # there may be more right behind this batch
            if now - last_write >= feed.heartbeat_s:
                req.write(wire.SSE_HEARTBEAT)
                last_write = now
                continue
            feed._wait_for_change(seen, feed.heartbeat_s - (now - last_write))
    except FeedError as exc:
        log.warning("%s", exc)
    except OSError:
        pass  # the client left, or did not take our bytes within the write timeout


ROUTES: dict[str, Route] = {
    "/events": handle_events,
    "/events/stream": handle_stream,
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles in keep-alive at stop()
    server_version = "tillwire-feed"

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        self.timeout = self.server.feed.write_timeout_s  # read and write timeout of the socket
        super().setup()
        self.server.feed._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.feed._closed(self.connection)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        log.debug("%s %s", self.client_address[0], format % args)

    def _dispatch(self) -> None:
        self.server.feed._dispatch(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # stop() joins every handler thread
    block_on_close = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: it resolves the host name (slow, no DNS)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request, client_address) -> None:
        log.exception("feed: error while serving %s", client_address[0])


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class FeedServer:
    """Serve the outbox at ``outbox_path`` over HTTP on ``host:port`` (port 0: any free port, see ``.port``)."""

    def __init__(self, outbox_path, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, *,
                 token_source: str | None = None, heartbeat_s: float = HEARTBEAT_S, poll_s: float = POLL_S,
                 write_timeout_s: float = WRITE_TIMEOUT_S, max_clients: int = MAX_CLIENTS):
        if token is not None and not token.strip():
            raise FeedConfigError("the feed token must not be empty")
        check_exposure(host, token)
        self.host = host.strip("[]")
        self.port = port
        self._token = token.strip().encode() if token else None
        self.token_source = token_source
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self.write_timeout_s = write_timeout_s
        self.max_clients = max_clients
        self.routes: dict[str, Route] = dict(ROUTES)
        self._reader = OutboxReader(outbox_path)
        self._changed = threading.Condition()
        self._change_count = 0
        self.waiting = 0  # requests (long-polls and streams) waiting for a commit right now
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life cycle

    def add_route(self, path: str, handler: Route) -> None:
        """Serve ``path`` with ``handler(request)``; call before ``start()``."""
        self.routes[path] = handler

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "FeedServer":
        """Check the outbox, bind, and serve in background threads; returns once listening."""
        if self._httpd is not None:
            raise RuntimeError("FeedServer.start() called twice")
        self._reader.check()
        cls = _HTTPServer6 if ":" in self.host else _HTTPServer
        try:
            httpd = cls((self.host, self.port), _Handler)
        except OSError as exc:
            raise FeedError(f"feed cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); free the "
                            f"port or change [feed] listen") from None
        httpd.feed = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._last_head = self._reader.head()
        self._threads = [threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                          name="feed-accept", daemon=True),
                         threading.Thread(target=self._watch, name="feed-watch", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def startup_message(self) -> str:
        """The line the bridge prints at start-up: where the feed is, and whether clients need a token."""
        where = f"feed: {self.url}/events (long-poll) and {self.url}/events/stream (SSE)"
        if self._token:
            source = f" from {self.token_source}" if self.token_source else ""
            return f"{where}; clients must send Authorization: Bearer <token> (token{source})"
        return f"{where}; loopback only, no token"

    def notify(self, last_rowid: int | None = None) -> None:
        """The pipeline calls this after each commit: waiting long-polls and streams read at once. Never blocks."""
        with self._changed:
            self._change_count += 1
            self._changed.notify_all()

    def stop(self) -> None:
        """Stop accepting, end open streams and long-polls, and join every thread."""
        httpd = self._httpd
        if httpd is None or self._stopping.is_set():
            return
        self._stopping.set()
        self.notify()
        httpd.shutdown()  # the accept loop returns
        deadline = time.monotonic() + STOP_GRACE_S
        while self._open_count() and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._conns_lock:  # a client still sending its request, or not reading: cut it off
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        httpd.server_close()  # joins the handler threads
        for t in self._threads:
            t.join(timeout=5)
        self._reader.close()

    def __enter__(self) -> "FeedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _watch(self) -> None:
        """Notice commits by writers that do not call notify() (another process): one cheap read per poll_s."""
        while not self._stopping.wait(self.poll_s):
            try:
                head = self._reader.head()
            except FeedError as exc:
                log.warning("%s", exc)
                continue
            if head != self._last_head:
                self._last_head = head
                self.notify(head)

    def _wait_for_change(self, seen: int, timeout: float) -> None:
        with self._changed:
            self.waiting += 1
            try:
                self._changed.wait_for(lambda: self._change_count != seen or self._stopping.is_set(), timeout)
            finally:
                self.waiting -= 1

    def _opened(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def _open_count(self) -> int:
        with self._conns_lock:
            return len(self._conns)

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if self._token is None:
            return True
        scheme, _, given = (handler.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self._token)

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        req = Request(handler, self)
        try:
            if self._open_count() > self.max_clients:
                return req.fail(HTTPStatus.SERVICE_UNAVAILABLE, "too many feed clients; try again later",
                                {"Retry-After": "1"})
            if not self._authorized(handler):
                return req.fail(HTTPStatus.UNAUTHORIZED, "unauthorized", {"WWW-Authenticate": "Bearer"})
            route = self.routes.get(req.path)
            if route is None:
                return req.fail(HTTPStatus.NOT_FOUND, f"no such path {req.path}; try /events or /events/stream")
            if req.method != "GET":
                return req.fail(HTTPStatus.METHOD_NOT_ALLOWED, f"{req.path} takes GET", {"Allow": "GET"})
            route(req)
        except FeedError as exc:
            log.warning("%s", exc)
            req.fail(HTTPStatus.SERVICE_UNAVAILABLE, "the outbox cannot be read right now")
        except OSError:
            pass  # the client went away mid-response


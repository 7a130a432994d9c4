"""A webhook receiver for tests: a real HTTP/1.1 server on a free loopback port that answers by script.

It records every request (monotonic arrival time, method, path, headers, body, and when it was answered) and
answers with the next ``Reply`` of its script, or with a rule, or with the default (200)::

    with WebhookReceiver() as rx:
        rx.script(Reply.retry_after(429, 1), Reply.status(500), Reply.hang(3), Reply.drop())
        ...  # point a webhook sink at rx.url
        rx.wait_for(4)
        events = envelopes(rx.requests[-1])

- ``Reply(status, body, headers)``: any status; ``Reply.retry_after(429 | 503, seconds | datetime)`` adds
  ``Retry-After`` as delta-seconds or as an HTTP date; ``Reply.refuse(422, b"...")`` a 4xx with a body.
- ``Reply.hang(n)``: wait ``n`` seconds before answering (then answer ``status``, 200 unless given); the wait ends
  early when the receiver closes.
- ``Reply.dropped()``: close the connection without answering (after ``after_s``, if given).
- ``Reply.trickle(s)``: answer one byte every ``s`` seconds (a client's timeout must not restart per byte).
- ``rule``: a callable ``(Request) -> Reply | None`` consulted before the script (e.g. refuse one ``seq``).

Keep-alive is on (HTTP/1.1, every answer has a Content-Length), so a client that keeps its connection sees the
same connection until a ``drop`` or an error. HTTPS: ``WebhookReceiver(tls=self_signed_cert(tmp_path))`` (the
certificate is made at test time with the ``openssl`` command; it names ``localhost`` and ``127.0.0.1``).

``close()`` ends hangs, stops the server, shuts down every open connection and joins every thread.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgpack

STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
               401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 409: "Conflict",
               410: "Gone", 413: "Content Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
               500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
               504: "Gateway Timeout"}


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    hang_s: float = 0.0    # wait this long before answering (or before dropping)
    drop: bool = False     # close the connection without an answer
    trickle_s: float = 0.0  # write the answer one byte at a time, this long apart
    reason: str | None = None  # the reason phrase on the status line (None: the standard one; "" sends none)

    @classmethod
    def ok(cls, status: int = 200) -> "Reply":
        return cls(status)

    @classmethod
    def refuse(cls, status: int, body: bytes = b"", content_type: str = "application/json") -> "Reply":
        return cls(status, body, (("Content-Type", content_type),) if body else ())

    @classmethod
    def retry_after(cls, status: int, after: float | datetime, body: bytes = b"") -> "Reply":
        """``Retry-After`` as delta-seconds (a number; whole seconds are written as integers) or an HTTP date."""
        if isinstance(after, datetime):
            value = format_datetime(after, usegmt=True)
        else:
            value = str(int(after)) if float(after).is_integer() else str(after)
        return cls(status, body, (("Retry-After", value),))

    @classmethod
    def hang(cls, seconds: float, then: int = 200) -> "Reply":
        return cls(then, hang_s=seconds)

    @classmethod
    def trickle(cls, every_s: float, status: int = 200) -> "Reply":
        """Answer one byte at a time, ``every_s`` apart (a slow-loris answer); ends early when the receiver closes."""
        return cls(status, b"x" * 64, trickle_s=every_s)

    @classmethod
    def dropped(cls, after_s: float = 0.0) -> "Reply":
        return cls(0, hang_s=after_s, drop=True)


@dataclass
class Request:
    """One request as it arrived."""

    t: float                       # time.monotonic() when its headers had been read
    method: str
    path: str
    headers: dict[str, str]        # names in lower case
    body: bytes
    reply: Reply | None = None
    answered_t: float | None = None  # time.monotonic() as the answer went out (None: no answer)
    connection: int = 0            # which connection (1, 2, ... in accept order) carried it

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class _State:
    lock: threading.Condition = field(default_factory=threading.Condition)
    requests: list[Request] = field(default_factory=list)
    script: deque = field(default_factory=deque)
    default: Reply = field(default_factory=Reply)
    rule: Callable[[Request], Reply | None] | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    sockets: set = field(default_factory=set)
    connections: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle kept-alive connection is dropped after this (close() cuts it anyway)
    server: "_Server"

    def setup(self):
        super().setup()
        state = self.server.state
        with state.lock:
            state.connections += 1
            self.connection_number = state.connections
            state.sockets.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.state.lock:
                self.server.state.sockets.discard(self.connection)

    def log_message(self, format, *args):  # quiet: tests read .requests
        pass

    def _handle(self):
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(arrived, self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          body, connection=self.connection_number)
        state = self.server.state
        with state.lock:
            reply = state.rule(request) if state.rule is not None else None
            if reply is None:
                reply = state.script.popleft() if state.script else state.default
            request.reply = reply
            state.requests.append(request)
            state.lock.notify_all()
        if reply.hang_s:
            state.stopping.wait(reply.hang_s)
        if reply.drop or state.stopping.is_set():
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        with state.lock:  # before the answer goes out, so a client that has read it always sees answered_t
            request.answered_t = time.monotonic()
            state.lock.notify_all()
        self.send_response(reply.status, reply.reason if reply.reason is not None else STATUS_TEXT.get(reply.status))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.trickle_s:
            answer = b"".join(self._headers_buffer) + b"\r\n" + reply.body
            self._headers_buffer = []
            for i in range(len(answer)):
                if state.stopping.wait(reply.trickle_s):
                    self.close_connection = True
                    return
                self.wfile.write(answer[i:i + 1])
                self.wfile.flush()
            return
        self.end_headers()
        if reply.body and self.command != "HEAD":
            self.wfile.write(reply.body)
        self.wfile.flush()

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads
    state: _State
    tls: ssl.SSLContext | None = None

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls is not None:
            sock.settimeout(5)  # the handshake must not hold the accept loop
            try:
                sock = self.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                sock.close()
                raise
        return sock, addr

    def handle_error(self, request, client_address):  # a client going away mid-request is expected here
        pass


class WebhookReceiver:
    """The server; use as a context manager or call ``close()``."""

    def __init__(self, tls: tuple[Path, Path] | None = None, host: str = "127.0.0.1", port: int = 0):
        """``port`` 0 (the default) takes a free one; give a port to come up where a client already points."""
        self._state = _State()
        self._server = _Server((host, port), _Handler)
        self._server.state = self._state
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.tls = ctx
        self.host, self.port = self._server.server_address[:2]
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"webhook-receiver:{self.port}")
        self._thread.start()
        self._closed = False

    # ---------------------------------------------------------------- the script
    def url_for(self, path: str = "/hook") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    @property
    def url(self) -> str:
        return self.url_for()

    def script(self, *replies: Reply) -> None:
        """Append answers; each request takes the next one, then the default."""
        with self._state.lock:
            self._state.script.extend(replies)

    def set_default(self, reply: Reply) -> None:
        with self._state.lock:
            self._state.default = reply

    def set_rule(self, rule: Callable[[Request], Reply | None] | None) -> None:
        with self._state.lock:
            self._state.rule = rule

    # ---------------------------------------------------------------- what arrived
    @property
    def requests(self) -> list[Request]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._state.lock:
            return self._state.connections

    def wait_for(self, count: int, timeout: float = 10.0, answered: bool = False) -> list[Request]:
        """Wait until ``count`` requests arrived (and, with ``answered``, the last of them was answered)."""
        deadline = time.monotonic() + timeout

        def enough():
            reqs = self._state.requests
            return len(reqs) >= count and (not answered or reqs[count - 1].answered_t is not None)

        with self._state.lock:
            while not enough():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the receiver got {len(self._state.requests)} requests, not {count}, "
                                         f"within {timeout} s")
                self._state.lock.wait(left)
            return list(self._state.requests)

    def wait_until(self, predicate: Callable[[list[Request]], bool], timeout: float = 10.0,
                   what: str = "condition") -> list[Request]:
        deadline = time.monotonic() + timeout
        with self._state.lock:
            while not predicate(list(self._state.requests)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                                         f"({len(self._state.requests)} requests so far)")
                self._state.lock.wait(min(left, 0.1))
            return list(self._state.requests)

    # ---------------------------------------------------------------- life
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._state.stopping.set()
        self._server.shutdown()
        with self._state.lock:
            open_sockets = list(self._state.sockets)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()  # joins the handler threads
        self._thread.join(timeout=10)

    def __enter__(self) -> "WebhookReceiver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- bodies back to events

def cloudevents(request: Request) -> list[dict]:
    """The CloudEvents of one request, whatever mode it used (structured JSON or msgpack, single or batch;
    binary mode with ``ce-`` headers and a msgpack envelope body)."""
    kind = request.content_type
    if kind == "application/cloudevents+json":
        return [json.loads(request.body)]
    if kind == "application/cloudevents-batch+json":
        return list(json.loads(request.body))
    if kind == "application/cloudevents+msgpack":
        return [msgpack.unpackb(request.body, raw=False, strict_map_key=False)]
    if kind == "application/cloudevents-batch+msgpack":
        return list(msgpack.unpackb(request.body, raw=False, strict_map_key=False))
    if kind == "application/msgpack":
        attrs = {k[3:]: v for k, v in request.headers.items() if k.startswith("ce-")}
        attrs["datacontenttype"] = kind
        attrs["data"] = msgpack.unpackb(request.body, raw=False, strict_map_key=False)
        return [attrs]
    raise AssertionError(f"not a CloudEvents body: Content-Type {kind!r}")


def envelopes(request: Request) -> list[dict]:
    """The tillwire envelopes (``src``, ``seq``, ``ts``, ``type``, ``data``) a request carried, in order. From JSON,
    bytes come back as hex strings (compare with ``protocols.events.to_json_view(event)``)."""
    return [ce["data"] for ce in cloudevents(request)]


def keys(requests: list[Request]) -> list[tuple[str, int]]:
    """``(src, seq)`` of every event in these requests, in arrival order (repeats included)."""
    return [(env["src"], env["seq"]) for r in requests for env in envelopes(r)]


# ---------------------------------------------------------------- TLS

def self_signed_cert(directory: Path, name: str = "receiver") -> tuple[Path, Path]:
    """A throw-away self-signed certificate for ``localhost`` and ``127.0.0.1`` (made with ``openssl``);
    returns ``(cert_file, key_file)``. The certificate is its own CA, so it can serve as ``tls_ca_file``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30)
    return cert, key

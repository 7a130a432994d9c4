"""The HTTP webhook sink: POSTs events as CloudEvents to one URL (docs/bridge/sinks-webhook.md).

One kept-alive ``http.client`` connection per sink. ``mode = "single"`` sends one event per request
(``Idempotency-Key: <src>:<seq>``); ``mode = "batch"`` sends the runner's whole batch in one request as a
CloudEvents batch, keyed by a hash of its ``src:seq`` list (the runner retries the *same* batch until it is done,
so the key is stable). The body is structured-mode JSON (default) or the project's msgpack mapping
(``bridge/sinks/cloudevents.py``). With a secret, ``Tillwire-Signature: t=<unix>,v1=<hex>`` signs the timestamp
and the exact body (``verify_signature`` is the receiver's side).

What an answer means (``STATUS_ACTIONS``): 2xx delivered; 429 and 503 retry after ``Retry-After``; 408, 409, other
5xx, 3xx, 401/403/404/405/407/410/415 (our credentials, URL or format, not the event), timeouts and connection
errors retry with the runner's backoff; any other 4xx refuses the event for good, and the runner parks it as a dead letter. A batch refused with such a 4xx is sent again one event per
request, so that only the events the receiver refuses are parked.

Every wait is bounded: connecting by the runner's ``connect_timeout_s``; a request — sending it, then every
receive of the answer — by one deadline ``timeout_s`` after it started, even when the answer trickles in.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from bridge.sinks import cloudevents
from bridge.sinks.base import Outcome, Outgoing, Parked, Retry, Sink, SinkUnavailable
from bridge.sinks.settings import Secret, TlsFiles, read_secret, tls_context, tls_files, url_without_credentials

MODES = ("single", "batch")
FORMATS = {  # format -> (one event, a batch): (content type, encoder)
    "json": ((cloudevents.CE_JSON, cloudevents.structured_json),
             (cloudevents.CE_JSON_BATCH, cloudevents.batch_json)),
    "msgpack": ((cloudevents.CE_MSGPACK, cloudevents.structured_msgpack),
                (cloudevents.CE_MSGPACK_BATCH, cloudevents.batch_msgpack)),
}

SIGNATURE_HEADER = "Tillwire-Signature"
SIGNATURE_TOLERANCE_S = 300      # verify_signature's default replay window
USER_AGENT = "tillwire-webhook/1"
RESPONSE_KEEP = 4096             # bytes of a refusal kept with the dead letter (Parked.response)
RESPONSE_DRAIN = 64 * 1024       # a longer answer body is not read to the end; the connection is dropped instead
RETRY_AFTER_MAX_S = 86_400.0     # a Retry-After further away than a day is taken as a day
# Headers the sink writes itself; `headers` in the config may not set them.
RESERVED_HEADERS = frozenset({"host", "content-type", "content-length", "transfer-encoding", "connection",
                              "idempotency-key", "authorization", "proxy-authorization", "cookie",
                              SIGNATURE_HEADER.lower(), "user-agent", "te", "upgrade", "expect"})
# A header whose name says it carries a credential belongs in a file or the environment, not the config file.
SECRET_LOOKING_HEADER = re.compile(r"(auth|token|secret|password|passwd|api[-_]?key|signature|cookie)", re.I)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

RETRY_LATER, RETRY_BACKOFF, REFUSED = "retry-after", "backoff", "refused"


def status_action(status: int) -> str | None:
    """What an HTTP status means for the event(s) of the request: None (delivered), ``RETRY_LATER`` (honour
    Retry-After), ``RETRY_BACKOFF`` (the runner's backoff) or ``REFUSED`` (a dead letter)."""
    if 200 <= status < 300:
        return None
    if status in (429, 503):
        return RETRY_LATER
    if status in (408, 409) or not 400 <= status < 500:
        return RETRY_BACKOFF  # 408, 409, 5xx; also 1xx/3xx, which a webhook must not answer (no redirects)
    if status in DESTINATION_FAILURES:
        # the receiver refuses our credentials, or the URL/format itself, not this event: parking would
        # dead-letter the whole day and break its order; back off instead (the sink_down alert tells the
        # operator) until the destination is fixed
        return RETRY_BACKOFF
    return REFUSED


# 401/403/407: credentials; 404/405/410: the one URL we post to has no such route (a typo, a deploy in
# progress); 415: the receiver does not take our format. True of every event alike.
DESTINATION_FAILURES = (401, 403, 404, 405, 407, 410, 415)


STATUS_ACTIONS = {  # the documented table (docs/bridge/sinks-webhook.md), for reference and tests
    "2xx": "delivered",
    "429, 503": "retry after Retry-After (seconds or an HTTP date; absent: the runner's backoff)",
    "408, 409, other 5xx, 1xx, 3xx": "retry with the runner's backoff",
    "401, 403, 404, 405, 407, 410, 415": "retry with the runner's backoff (the destination refuses our "
                                         "credentials, URL or format, not the event)",
    "other 4xx": "dead letter (single mode: that event; batch mode: the batch is sent again one by one)",
}


# ---------------------------------------------------------------- signatures

def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``Tillwire-Signature`` value: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str | bytes, header: str | None, body: bytes, *,
                     tolerance_s: float = SIGNATURE_TOLERANCE_S, now: float | None = None) -> bool:
    """A receiver's check of ``Tillwire-Signature``: True when one ``v1`` is the HMAC of ``"<t>." + body``
    under ``secret`` and ``t`` is within ``tolerance_s`` of ``now`` (the replay window). Compares in constant
    time; any malformed header is simply False."""
    if not header:
        return False
    stamp, candidates = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            stamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if stamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        return False
    expected = sign(secret, body, stamp).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, c) for c in candidates)


def batch_key(batch: list[Outgoing]) -> str:
    """The batch's Idempotency-Key: ``batch-`` + the first 32 hex digits of SHA-256 over its ``src:seq`` lines."""
    digest = hashlib.sha256("\n".join(ev.key for ev in batch).encode()).hexdigest()
    return f"batch-{digest[:32]}"


def retry_after_s(value: str | None, now: float | None = None, date: str | None = None) -> float | None:
    """``Retry-After`` in seconds from now: delta-seconds or an HTTP date (a past date is 0); None if absent or
    unreadable. Capped at a day. An HTTP date is measured against the response's own ``Date`` header when it has
    one (RFC 9110 §10.2.3), so a till whose clock is off by hours neither waits hours too long nor retries at
    once."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        if seconds != seconds or seconds < 0:  # NaN or negative: not a delay
            return None
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        reference = _http_date(date)
        if reference is None:
            reference = time.time() if now is None else now
        seconds = max(0.0, when.timestamp() - reference)
    return min(seconds, RETRY_AFTER_MAX_S)


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when is not None and when.tzinfo is not None else None


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class WebhookOptions:
    url: str
    scheme: str
    host: str
    port: int
    target: str                       # path and query, as sent on the request line
    mode: str = "single"
    format: str = "json"
    timeout_s: float = 10.0
    secret: Secret | None = field(default=None, repr=False)
    bearer_token: Secret | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    tls: TlsFiles | None = None

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _parse_headers(t: Any) -> tuple[tuple[str, str], ...]:
    table = t.get("headers", dict, {})
    out = []
    for name, value in table.items():
        if not HEADER_NAME.match(name):
            t.fail(f"{name!r} is not a valid HTTP header name", "headers")
        if name.lower() in RESERVED_HEADERS:
            t.fail(f"{name!r} is set by the sink itself (a token goes in bearer_token_file or bearer_token_env)",
                   "headers")
        if SECRET_LOOKING_HEADER.search(name):
            t.fail(f"{name!r} looks like a credential, and a secret never goes into the config file; use "
                   f"bearer_token_file/_env (Authorization) or secret_file/_env (a signature)", "headers")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            t.fail(f"the value of {name!r} must be a one-line string", "headers")
        out.append((name, value))
    return tuple(out)


# ---------------------------------------------------------------- the sink

class _NoAnswer(Exception):
    """The request got no HTTP answer (connection error, timeout); ``str()`` is a one-line reason. ``stale``: the
    connection broke before any byte of an answer, as a kept-alive connection the server closed while idle does."""

    def __init__(self, reason: str, stale: bool = False):
        super().__init__(reason)
        self.stale = stale


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    retry_after: str | None
    body: bytes
    date: str | None = None  # the response's Date header: the clock a Retry-After date is measured against


class WebhookSink(Sink):
    kind: ClassVar[str] = "webhook"
    default_max_batch: ClassVar[int] = 100

    @classmethod
    def parse_options(cls, t: Any, base: Path, env: Any) -> WebhookOptions:
        url = url_without_credentials(t, "url", ("http", "https"))
        parts = urlsplit(url)
        if parts.fragment:
            t.fail("must not have a #fragment", "url")
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        mode = t.get("mode", str, "single")
        if mode not in MODES:
            t.fail(f"must be {' or '.join(map(repr, MODES))}, not {mode!r}", "mode")
        fmt = t.get("format", str, "json")
        if fmt not in FORMATS:
            t.fail(f"must be {' or '.join(map(repr, FORMATS))}, not {fmt!r}", "format")
        timeout_s = float(t.number("timeout_s", 10, 0.05, 600))
        secret = read_secret(t, "secret", base, env)
        token = read_secret(t, "bearer_token", base, env)
        headers = _parse_headers(t)
        if scheme == "https":
            tls = tls_files(t, base, env)
        else:
            tls = None
            given = sorted(k for k in t.data if k.startswith("tls_"))
            if given:
                t.fail("TLS settings need an https:// url", given[0])
        return WebhookOptions(url=url, scheme=scheme, host=parts.hostname, port=port, target=target, mode=mode,
                              format=fmt, timeout_s=timeout_s, secret=secret, bearer_token=token,
                              headers=headers, tls=tls)

    def __init__(self, name: str, settings: WebhookOptions, context):
        super().__init__(name, settings, context)
        self.options = settings
        self._ssl = tls_context(self.options.tls) if self.options.tls is not None else None
        self._conn: http.client.HTTPConnection | None = None
        self._requests_on_conn = 0
        self._connect_timeout_s = 5.0  # the runner's connect_timeout_s, given to connect()
        self._interrupted = False
        o = self.options
        self._single = FORMATS[o.format][0]
        self._batched = FORMATS[o.format][1]
        self._fixed_headers = {"User-Agent": USER_AGENT, **dict(o.headers)}
        if o.bearer_token is not None:
            self._fixed_headers["Authorization"] = f"Bearer {o.bearer_token.reveal()}"

    # ---------------------------------------------------------------- Sink
    def describe(self) -> str:
        o = self.options
        where = f"{o.scheme}://{_host_port(o.host, o.port)}{urlsplit(o.url).path or '/'}"  # no query: it may hold a key
        notes = [o.mode, o.format]
        if o.secret is not None:
            notes.append("signed")
        if o.scheme == "http" and not o.loopback:
            notes.append("UNENCRYPTED")
        elif o.tls is not None and not o.tls.verify:
            notes.append("TLS NOT VERIFIED")
        return f"webhook POST {where} ({', '.join(notes)})"

    def connect(self, timeout_s: float) -> None:
        self._interrupted = False
        self._connect_timeout_s = timeout_s
        try:
            self._open()
        except _NoAnswer as exc:
            raise SinkUnavailable(str(exc)) from None

    def send(self, batch: list[Outgoing]) -> Outcome:
        try:
            if self.options.mode == "batch":
                return self._send_batch(batch)
            return self._send_singly(batch)
        finally:
            self._interrupted = False  # an interrupt cuts the send under way short, not the next one

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - close never raises
                pass

    def interrupt(self) -> None:
        self._interrupted = True
        conn = self._conn
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---------------------------------------------------------------- the two modes
    def _send_singly(self, batch: list[Outgoing]) -> Outcome:
        content_type, encode = self._single
        parked: list[Parked] = []
        for i, ev in enumerate(batch):
            if self._interrupted:
                return Outcome(i, parked=tuple(parked), retry=Retry("interrupted: the bridge is stopping"))
            try:
                answer = self._post(encode(ev), content_type, ev.key)
            except _NoAnswer as exc:
                return Outcome(i, parked=tuple(parked), retry=Retry(str(exc), reconnect=True))
            action = status_action(answer.status)
            if action == REFUSED:
                parked.append(_parked(i, answer))
            elif action is not None:
                return Outcome(i, parked=tuple(parked), retry=_retry(answer, action))
        return Outcome(len(batch), parked=tuple(parked))

    def _send_batch(self, batch: list[Outgoing]) -> Outcome:
        content_type, encode = self._batched
        try:
            answer = self._post(encode(batch), content_type, batch_key(batch))
        except _NoAnswer as exc:
            return Outcome(0, retry=Retry(str(exc), reconnect=True))
        action = status_action(answer.status)
        if action is None:
            return Outcome(len(batch))
        if action != REFUSED:
            return Outcome(0, retry=_retry(answer, action))
        # The receiver refused the batch but a batch answer cannot say which event it objects to. Parking the
        # whole batch would dead-letter good events with the bad; sending each event on its own finds exactly the
        # refused ones (their own 4xx is kept with each dead letter), and delivers the rest in order.
        return self._send_singly(batch)

    # ---------------------------------------------------------------- one request
    def _open(self) -> None:
        self.close()
        o = self.options
        if o.scheme == "https":
            conn = http.client.HTTPSConnection(o.host, o.port, timeout=self._connect_timeout_s, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(o.host, o.port, timeout=self._connect_timeout_s)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            raise _NoAnswer(f"TLS: the certificate of {self._where()} is not trusted "
                            f"({_one_line(exc.verify_message or exc.reason or 'verification failed')}); "
                            f"give tls_ca_file to trust a private CA") from None
        except ssl.SSLError as exc:
            conn.close()
            raise _NoAnswer(f"TLS handshake with {self._where()} failed ({_one_line(exc.reason or type(exc).__name__)})") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _NoAnswer(f"cannot connect to {self._where()}: {_os_reason(exc)}") from None
        self._conn = conn
        self._requests_on_conn = 0

    def _post(self, body: bytes, content_type: str, key: str) -> _Answer:
        """One POST on the kept-alive connection (opened again if it was closed). A kept-alive connection the
        server closed while idle shows as an error on its first reuse; that request is tried once more at once
        on a new connection."""
        for attempt in (1, 2):
            if self._conn is None or self._conn.sock is None:
                self._open()
            reused = self._requests_on_conn > 0
            try:
                return self._exchange(body, content_type, key)
            except _NoAnswer as exc:
                self.close()
                if attempt == 2 or not reused or not exc.stale or self._interrupted:
                    raise
        raise AssertionError("unreachable")

    def _exchange(self, body: bytes, content_type: str, key: str) -> _Answer:
        conn = self._conn
        deadline = time.monotonic() + self.options.timeout_s
        headers = dict(self._fixed_headers)
        headers["Content-Type"] = content_type
        headers["Idempotency-Key"] = key
        if self.options.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.options.secret.reveal(), body, int(time.time()))
        self._requests_on_conn += 1
        phase = "sending the request"
        try:
            _budget(conn, deadline)
            conn.request("POST", self.options.target, body, headers)  # sendall: bounded as a whole
            phase = "waiting for the answer"
            conn.response_class = _deadline_response(deadline)
            response = conn.getresponse()
            phase = "reading the answer"
            status, reason = response.status, _one_line(response.reason or "")[:100]
            retry_after = response.getheader("Retry-After")
            server_date = response.getheader("Date")
            kept = response.read(RESPONSE_DRAIN)
            if not response.isclosed():
                conn.close()  # an answer longer than we read: the connection cannot be reused
        except (TimeoutError, socket.timeout):
            raise _NoAnswer(f"no answer from {self._where()} within timeout_s={self.options.timeout_s:g} "
                            f"({phase})") from None
        except (OSError, http.client.HTTPException) as exc:
            if self._interrupted:
                raise _NoAnswer("interrupted: the bridge is stopping") from None
            stale = phase != "reading the answer" and isinstance(
                exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError))
            raise _NoAnswer(f"{_os_reason(exc)} while {phase} ({self._where()})", stale) from None
        return _Answer(status, reason, retry_after, kept[:RESPONSE_KEEP], server_date)

    def _where(self) -> str:
        return _host_port(self.options.host, self.options.port)


def _budget(conn: http.client.HTTPConnection, deadline: float) -> None:
    """Give the socket what is left of the request's timeout."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timeout_s used up")
    if conn.sock is not None:
        conn.sock.settimeout(left)
    conn.timeout = left


class _DeadlineReader(io.RawIOBase):
    """The socket's reader for one answer: before every receive the socket gets what is left until the deadline,
    so an answer trickling in byte by byte still ends at the deadline (a plain socket timeout restarts per byte)."""

    def __init__(self, sock: socket.socket, deadline: float):
        super().__init__()
        self._sock, self._deadline = sock, deadline
        self._raw = sock.makefile("rb", buffering=0)  # keeps http.client's reference counting of the socket

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timeout_s used up")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineSocket:
    """What ``HTTPResponse`` is given instead of the socket: it only calls ``makefile("rb")``."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock, self._deadline = sock, deadline

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


def _deadline_response(deadline: float):
    def response(sock, *args, **kwargs) -> http.client.HTTPResponse:
        return http.client.HTTPResponse(_DeadlineSocket(sock, deadline), *args, **kwargs)
    return response


def _parked(index: int, answer: _Answer) -> Parked:
    return Parked(index, answer.status, _status_line(answer), answer.body[:RESPONSE_KEEP])


def _retry(answer: _Answer, action: str) -> Retry:
    after = retry_after_s(answer.retry_after, date=answer.date) if action == RETRY_LATER else None
    return Retry(_status_line(answer), after_s=after)


def _status_line(answer: _Answer) -> str:
    """``HTTP 422 Unprocessable Entity``: the server's reason phrase, or the standard one when it sent none."""
    reason = answer.reason
    if not reason:
        try:
            reason = HTTPStatus(answer.status).phrase
        except ValueError:
            reason = ""
    return f"HTTP {answer.status} {reason}".rstrip()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without an answer"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({_one_line(exc.strerror or exc)})"
    if isinstance(exc, OSError) and exc.strerror:
        return _one_line(exc.strerror)
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP answer ({type(exc).__name__})"
    return type(exc).__name__


SINK = WebhookSink

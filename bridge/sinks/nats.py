"""The NATS JetStream sink (``kind = "nats"``, docs/bridge/sinks-nats.md).

Each event is published to ``<subject_prefix>.<site>.<till>.<type>`` with ``Nats-Msg-Id: <src>:<seq>``, the
CloudEvents binary-mode headers and the stored msgpack envelope as the body. Two ways to publish (``publish``):

- ``"pipelined"`` (default): up to ``max_inflight`` publishes await their PubAck and every PubAck is checked: it
  must come from our stream with a stream sequence, and ``duplicate: true`` is counted. ``done`` is the in-order
  prefix of acknowledged events. Under the server's ``sync_interval: always`` each message costs one fsync.
- ``"atomic"``: JetStream atomic batch publish (ADR-50, nats-server 2.12+; the stream needs ``allow_atomic``):
  up to 1,000 events go as one batch (``Nats-Batch-Id``/``-Sequence``/``-Commit``), one PubAck for the commit
  says the whole batch is stored (two fsyncs per batch), or nothing of it is. Fewer than 32 events go pipelined
  (quicker: a batch has a fixed cost of some 3 ms). A batch the stream refuses (above all: it holds one of the
  batch's ``Nats-Msg-Id`` already, after a lost PubAck — nats-server refuses the whole batch, it does not drop
  the duplicates) is sent again pipelined, where each message gets its own verdict.

The client never reconnects by itself (``allow_reconnect=False``): a lost connection or any failed publish ends
the batch with the acknowledged prefix and ``Retry(reconnect=True)``; the runner reconnects and sends the rest
again (the stream drops what it already has, by ``Nats-Msg-Id``). Why the stored messages are then still in
order is argued in the docs (§ "Ordering").

nats-py is asyncio; the sink runs a private event loop in its own thread (so the connection answers the
server's PINGs between batches) and the runner's thread calls ``connect``/``send``/``close`` synchronously.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import os
import re
import ssl
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bridge.sinks import cloudevents
from bridge.sinks.base import Outcome, Outgoing, Parked, Retry, Sink, SinkConfigError, SinkUnavailable
from bridge.sinks.settings import Secret, TlsFiles, read_secret, readable_file, tls_context, tls_files

SCHEMES = ("nats", "tls")
STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
TOKEN = re.compile(r"^[^\s.*>]+$")              # one subject token: no whitespace, '.', '*' or '>'
PATTERN_TOKEN = re.compile(r"^(?:[^\s.*>]+|\*|>)$")
HEADROOM = 4096                                  # headers are far smaller: only near max_payload are they counted
LOOP_GUARD_S = 5.0                               # slack on top of the sink's own timeouts for a loop round trip
PUBLISH_MODES = ("pipelined", "atomic")
ATOMIC_BATCH_LIMIT = 1000                        # messages per atomic batch: nats-server's limit (error 10199)
ATOMIC_MIN_EVENTS = 32                           # fewer go pipelined: a batch costs ~3 ms (two fsyncs), a message ~0.2
ATOMIC_HEADERS_SIZE = 120                        # Nats-Batch-Id (32 hex), -Sequence (≤ 4 digits), -Commit: 1


class StreamMismatch(SinkUnavailable):
    """The stream is missing (and may not be created) or its configuration does not fit; says what to change."""


@dataclass(frozen=True)
class NatsOptions:
    servers: tuple[str, ...]
    stream: str = "TILLWIRE"
    subject_prefix: str = "tillwire"
    subjects: tuple[str, ...] | None = None     # the stream's subjects when we create it (None: <prefix>.<site>.<till>.>)
    create_stream: bool = True
    duplicate_window_s: float = 120.0
    max_bytes: int | None = None
    max_age_s: float | None = None
    domain: str | None = None                  # JetStream domain for the stream API (leaf/hub setups)
    ack_timeout_s: float = 5.0
    max_inflight: int = 256
    publish: str = "pipelined"                 # or "atomic" (PUBLISH_MODES)
    creds_file: Path | None = None
    nkey_file: Path | None = None
    user: str | None = None
    password: Secret | None = field(default=None, repr=False)
    token: Secret | None = field(default=None, repr=False)
    tls: TlsFiles | None = None

    @property
    def auth_method(self) -> str:
        if self.creds_file:
            return "creds_file"
        if self.nkey_file:
            return "nkey_file"
        if self.user:
            return "user and password"
        if self.token:
            return "token"
        return "no credentials"


# ---------------------------------------------------------------- subjects


def valid_subject(subject: str, *, wildcards: bool = False) -> bool:
    tokens = subject.split(".")
    if wildcards:
        return all(PATTERN_TOKEN.match(t) for t in tokens) and ">" not in tokens[:-1]
    return all(TOKEN.match(t) for t in tokens)


def covers(pattern: str, subject: str) -> bool:
    """Whether every subject matching ``subject`` (itself possibly a pattern) also matches ``pattern``."""
    p, s = pattern.split("."), subject.split(".")
    for i, pt in enumerate(p):
        if pt == ">":
            return len(s) > i
        if i >= len(s):
            return False
        st = s[i]
        if st == ">":
            return False
        if pt != "*" and (pt != st or st == "*"):
            return False
    return len(s) == len(p)


# ---------------------------------------------------------------- config


def _server_urls(t) -> tuple[str, ...]:
    raw = t.get("url", (str, list), required=True)
    urls = [raw] if isinstance(raw, str) else raw
    if not urls or not all(isinstance(u, str) for u in urls):
        t.fail("must be a URL like nats://host:4222 or a non-empty list of them", "url")
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            t.fail(f"is not a valid URL: {_without_userinfo(url)!r}", "url")
        if parts.scheme not in SCHEMES:
            t.fail(f"must start with nats:// or tls://, not {_without_userinfo(url)!r}", "url")
        if parts.username is not None or parts.password is not None:
            t.fail("must not carry user:password@; give user with password_file/password_env, or token_file/"
                   "token_env, creds_file or nkey_file", "url")
        if not parts.hostname:
            t.fail(f"has no host: {url!r}", "url")
    return tuple(urls)


def _without_userinfo(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def parse_options(t, base: Path, env) -> NatsOptions:
    servers = _server_urls(t)
    stream = t.get("stream", str, "TILLWIRE")
    if not STREAM_NAME.match(stream):
        t.fail(f"must be letters, digits, '_' or '-' (a JetStream stream name), not {stream!r}", "stream")
    prefix = t.get("subject_prefix", str, "tillwire")
    if not valid_subject(prefix):
        t.fail(f"must be subject tokens separated by '.', without spaces, '*' or '>', not {prefix!r}",
               "subject_prefix")
    subjects = t.get("subjects", list, None)
    if subjects is not None:
        if not subjects or not all(isinstance(s, str) and valid_subject(s, wildcards=True) for s in subjects):
            t.fail("must be a non-empty list of subjects or patterns like 'tillwire.store-1.>'", "subjects")
        subjects = tuple(subjects)
    create = t.get("create_stream", bool, True)
    window = float(t.number("duplicate_window_s", 120, 1, 7 * 86_400))
    max_bytes = t.number("max_bytes", None, 1)
    max_age = t.number("max_age_s", None, 1)
    domain = t.get("domain", str, None)
    if domain is not None and not STREAM_NAME.match(domain):
        t.fail(f"must be letters, digits, '_' or '-' (a JetStream domain), not {domain!r}", "domain")
    ack_timeout = float(t.number("ack_timeout_s", 5, 0.05, 600))
    inflight = int(t.number("max_inflight", 256, 1, 65_536))
    publish = t.get("publish", str, "pipelined")
    if publish not in PUBLISH_MODES:
        t.fail(f'must be "pipelined" or "atomic" (atomic batches need nats-server 2.12+), not {publish!r}', "publish")

    creds = readable_file(t, "creds_file", base)
    nkey = readable_file(t, "nkey_file", base)
    user = t.get("user", str, None)
    password = read_secret(t, "password", base, env)
    token = read_secret(t, "token", base, env)
    if user is not None and password is None:
        t.fail("needs password_file or password_env too", "user")
    if password is not None and user is None:
        t.fail("needs user too", "password_file" if "password_file" in t.data else "password_env")
    methods = [k for k, v in (("creds_file", creds), ("nkey_file", nkey), ("user", user),
                              ("token_file/token_env", token)) if v is not None]
    if len(methods) > 1:
        t.fail(f"give one way to authenticate, not {' and '.join(methods)}", methods[1].split("/")[0])
    if creds is not None or nkey is not None:
        try:
            import nkeys  # noqa: F401
        except ImportError:
            t.fail("needs the nkeys package: pip install nkeys (or `make run`)", methods[0])
        if nkey is not None:
            seed = nkey.read_bytes().strip()
            if not seed.startswith(b"SU"):
                t.fail(f"{nkey} does not hold a user nkey seed (a line starting with SU)", "nkey_file")

    tls_keys = ("tls_ca_file", "tls_cert_file", "tls_key_file", "tls_verify", "tls_key_password_file",
                "tls_key_password_env")
    tls = None
    if any(urlsplit(u).scheme == "tls" for u in servers) or any(k in t.data for k in tls_keys):
        tls = tls_files(t, base, env)
    return NatsOptions(
        servers=servers, stream=stream, subject_prefix=prefix, subjects=subjects, create_stream=create,
        duplicate_window_s=window, max_bytes=int(max_bytes) if max_bytes is not None else None,
        max_age_s=float(max_age) if max_age is not None else None, domain=domain, ack_timeout_s=ack_timeout,
        max_inflight=inflight, publish=publish, creds_file=creds, nkey_file=nkey, user=user, password=password,
        token=token, tls=tls)


# ---------------------------------------------------------------- the sink


class _Progress:
    """What the running send has achieved so far (read back if it is cut short)."""

    __slots__ = ("done", "duplicates", "parked")

    def __init__(self):
        self.done = 0
        self.duplicates = 0
        self.parked: list[Parked] = []


class _Failed(Exception):
    """A publish or its PubAck failed; ``str()`` is the one-line reason for ``Retry``."""


class NatsSink(Sink):
    kind = "nats"
    default_max_batch = 1000

    @classmethod
    def parse_options(cls, t, base, env) -> NatsOptions:
        return parse_options(t, base, env)

    def __init__(self, name, settings: NatsOptions, context):
        super().__init__(name, settings, context)
        o = self.options = settings
        for what, value in (("site", context.site), ("till", context.till)):
            if not TOKEN.match(value or ""):
                raise SinkConfigError(
                    f"sink {name!r}: [bridge] {what} {value!r} cannot be a NATS subject token (no spaces, '.', "
                    f"'*' or '>'); set [bridge] {what} to a name like 'store-1'")
        self.subject_base = f"{o.subject_prefix}.{context.site}.{context.till}"
        self.our_subjects = f"{self.subject_base}.>"
        self.stream_subjects = list(o.subjects) if o.subjects else [self.our_subjects]
        if not any(covers(p, self.our_subjects) for p in self.stream_subjects):
            raise SinkConfigError(
                f"sink {name!r}: subjects {list(self.stream_subjects)} do not cover {self.our_subjects}; "
                f"add '{self.our_subjects}' (or a wider pattern) to subjects")
        self._subjects: dict[str, str | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc = None
        self._inbox = ""
        self._waiting: dict[str, asyncio.Future] = {}
        self._tokens = itertools.count()
        self._lost: str | None = None
        self._last_error: str | None = None
        self._running: concurrent.futures.Future | None = None
        self._progress = _Progress()
        self.atomic_fallbacks = 0      # atomic batches the stream refused and that were sent again pipelined

    # -- what we say about ourselves

    def describe(self) -> str:
        how = ", atomic batches" if self.options.publish == "atomic" else ""
        return f"{','.join(self.options.servers)} stream {self.options.stream} subjects {self.subject_base}.<type>{how}"

    def _mask(self, text: str) -> str:
        for secret in self.context.secrets:
            if secret:
                text = text.replace(secret, "***")
        return " ".join(text.split())

    # -- the private event loop

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name=f"nats-sink-{self.name}", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def _run(self, coro, timeout_s: float):
        loop = self._ensure_loop()
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        self._running = fut
        try:
            return fut.result(timeout_s)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise
        finally:
            self._running = None

    def interrupt(self) -> None:
        fut = self._running
        if fut is not None:
            fut.cancel()

    # -- connect

    def connect(self, timeout_s: float) -> None:
        self.close()
        self._lost = None
        self._last_error = None
        try:
            self._run(self._connect(timeout_s), timeout_s * 3 + LOOP_GUARD_S)
        except SinkUnavailable:
            self.close()
            raise
        except concurrent.futures.CancelledError:
            self.close()
            raise SinkUnavailable(f"connecting to {self._where()} was interrupted") from None
        except concurrent.futures.TimeoutError:
            self.close()
            raise SinkUnavailable(f"connecting to {self._where()} did not finish in time") from None
        except Exception as exc:  # any other failure of the client library: one line, no credentials
            self.close()
            raise SinkUnavailable(self._mask(f"cannot connect to {self._where()}: {_reason(exc)}")) from None

    def _where(self) -> str:
        return ",".join(self.options.servers)

    async def _connect(self, timeout_s: float) -> None:
        import nats
        import nats.errors

        o = self.options
        nc = nats.NATS()
        kwargs = dict(
            servers=list(o.servers), name=f"tillwire {self.name}", connect_timeout=timeout_s,
            allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0, dont_randomize=True,
            error_cb=self._on_error, disconnected_cb=self._on_disconnected, closed_cb=self._on_closed,
            flush_timeout=o.ack_timeout_s, pending_size=8 * 1024 * 1024)
        if o.tls is not None:
            kwargs["tls"] = tls_context(o.tls)
        if o.creds_file:
            kwargs["user_credentials"] = str(o.creds_file)
        elif o.nkey_file:
            kwargs["nkeys_seed"] = str(o.nkey_file)
        elif o.user:
            kwargs["user"], kwargs["password"] = o.user, o.password.reveal()
        elif o.token:
            kwargs["token"] = o.token.reveal()
        refused = SinkUnavailable(f"{self._where()} refused the credentials ({o.auth_method}): authorization "
                                  f"violation; check them against the server's accounts")
        try:
            await asyncio.wait_for(nc.connect(**kwargs), timeout_s)
        except nats.errors.AuthorizationError:
            raise refused from None
        except nats.errors.NoServersError:
            if "authorization violation" in (self._last_error or "").lower():
                raise refused from None
            raise SinkUnavailable(self._mask(f"cannot connect to {self._where()}: "
                                             f"{self._last_error or 'no server answered'}")) from None
        except asyncio.TimeoutError:
            raise SinkUnavailable(f"cannot connect to {self._where()}: no answer within {timeout_s:g} s") from None
        except OSError as exc:
            raise SinkUnavailable(f"cannot connect to {self._where()}: {_reason(exc)}") from None
        except nats.errors.Error as exc:
            if "authorization violation" in str(exc).lower():
                raise refused from None
            raise
        self._nc = nc
        try:
            await self._check_stream(nc, timeout_s)
            self._inbox = nc.new_inbox() + "."
            await nc.subscribe(self._inbox + "*", cb=self._on_ack)
            await asyncio.wait_for(nc.flush(), timeout_s)
        except BaseException:
            await _close_quietly(nc)
            self._nc = None
            raise

    async def _check_stream(self, nc, timeout_s: float) -> None:
        import nats.errors
        import nats.js.errors
        from nats.js.api import StorageType, StreamConfig

        o = self.options
        jsm = nc.jsm(prefix=f"$JS.{o.domain}.API", timeout=timeout_s) if o.domain else nc.jsm(timeout=timeout_s)
        try:
            info = await jsm.stream_info(o.stream)
        except nats.js.errors.NotFoundError:
            if not o.create_stream:
                raise StreamMismatch(f"stream {o.stream} does not exist on {self._where()}; create it (file "
                                     f"storage, subjects {self.our_subjects}) or set create_stream = true") from None
            config = StreamConfig(name=o.stream, subjects=self.stream_subjects, storage=StorageType.FILE,
                                  duplicate_window=o.duplicate_window_s, max_bytes=o.max_bytes,
                                  max_age=o.max_age_s, allow_atomic=True if o.publish == "atomic" else None)
            try:
                created = await jsm.add_stream(config)
            except nats.js.errors.APIError as exc:
                raise StreamMismatch(f"cannot create stream {o.stream}: {exc.description or exc.code}"
                                     f"{_overlap_hint(exc)}") from None
            if o.publish == "atomic" and not created.config.allow_atomic:
                raise StreamMismatch(f"stream {o.stream} was created without allow_atomic: the server has no atomic "
                                     f"batch publish (nats-server 2.12 or later); upgrade it or set publish = "
                                     f'"pipelined"')
            return
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
            raise StreamMismatch(f"JetStream is not enabled on {self._where()}"
                                 f"{' for domain ' + o.domain if o.domain else ''}; enable it in the server's "
                                 f"config (jetstream {{ store_dir: ... }})") from None
        except asyncio.TimeoutError:
            raise SinkUnavailable(f"JetStream on {self._where()} did not answer within {timeout_s:g} s") from None
        cfg = info.config
        if cfg.storage != StorageType.FILE:
            raise StreamMismatch(f"stream {o.stream} uses {getattr(cfg.storage, 'value', cfg.storage)} storage; "
                                 f"it must use file storage (recreate it with --storage file)")
        if cfg.mirror is not None:
            raise StreamMismatch(f"stream {o.stream} is a mirror and takes no publishes; point stream at the "
                                 f"stream that holds {self.our_subjects}")
        if not any(covers(p, self.our_subjects) for p in cfg.subjects or ()):
            raise StreamMismatch(f"stream {o.stream} has subjects {list(cfg.subjects or ())}, which do not cover "
                                 f"{self.our_subjects}; add it to the stream's subjects")
        window = float(cfg.duplicate_window or 0)
        if window + 1e-6 < o.duplicate_window_s:
            raise StreamMismatch(f"stream {o.stream} has a duplicate window of {window:g} s, shorter than "
                                 f"duplicate_window_s = {o.duplicate_window_s:g}; raise the stream's "
                                 f"duplicate window (nats stream edit {o.stream} --dupe-window "
                                 f"{int(o.duplicate_window_s)}s) or lower duplicate_window_s")
        retention = getattr(cfg.retention, "value", cfg.retention)
        if retention not in (None, "limits"):
            # interest: stored messages vanish when no consumer is interested; workqueue: once one consumer
            # took them. Either way a PubAck would not mean "kept for the back office".
            raise StreamMismatch(f"stream {o.stream} has {retention} retention, which drops stored events (no "
                                 f"consumer, or once one consumer took them); use limits retention")
        if getattr(cfg, "no_ack", False):
            raise StreamMismatch(f"stream {o.stream} has no_ack set: it sends no PubAck, so no event could ever "
                                 f"count as delivered; unset no_ack")
        if getattr(cfg, "sealed", False):
            raise StreamMismatch(f"stream {o.stream} is sealed and takes no publishes; point stream at another")
        if o.publish == "atomic" and not cfg.allow_atomic:
            raise StreamMismatch(f"stream {o.stream} does not allow atomic batch publishes; set allow_atomic: true "
                                 f"in its configuration (nats-server 2.12 or later) or set publish = \"pipelined\"")

    # -- callbacks (on the loop)

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = _reason(exc)

    async def _on_disconnected(self) -> None:
        self._connection_lost("the connection was lost")

    async def _on_closed(self) -> None:
        self._connection_lost("the connection was closed")

    def _connection_lost(self, why: str) -> None:
        if self._lost is None:
            self._lost = why + (f" ({self._last_error})" if self._last_error else "")
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(_Failed(self._lost))
        self._waiting.clear()

    async def _on_ack(self, msg) -> None:
        fut = self._waiting.pop(msg.subject[len(self._inbox):], None)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    # -- send

    def send(self, batch: list[Outgoing]) -> Outcome:
        progress = self._progress = _Progress()
        if self._nc is None or self._lost is not None:
            return Outcome(0, retry=Retry(self._lost or "not connected", reconnect=True))
        guard = self.options.ack_timeout_s * 4 + len(batch) * 0.05 + LOOP_GUARD_S
        try:
            reason = self._run(self._send(batch, progress), guard)
        except concurrent.futures.CancelledError:
            reason = "interrupted"
        except concurrent.futures.TimeoutError:
            reason = f"the batch did not finish within {guard:g} s"
        except Exception as exc:  # a failure of the client library: the prefix stands, the rest is retried
            reason = _reason(exc)
        retry = Retry(self._mask(reason), reconnect=True) if reason else None
        return Outcome(progress.done, progress.duplicates, tuple(progress.parked), retry)

    def _subject(self, type_: str) -> str | None:
        subject = self._subjects.get(type_, "")
        if subject == "":
            subject = f"{self.subject_base}.{type_}" if type_ and valid_subject(type_) else None
            self._subjects[type_] = subject
        return subject

    def _route(self, ev: Outgoing, extra_headers: int = 0) -> tuple[str | None, str | None]:
        """(subject, None) for an event the server can take; (None, why not) for one it never will."""
        subject = self._subject(ev.type)
        if subject is None:
            return None, f"event type {ev.type!r} cannot be a NATS subject"
        max_payload = self._nc.max_payload
        size = len(ev.envelope)
        if size > max_payload - HEADROOM:   # the server counts the headers too
            size += _headers_size(cloudevents.headers(ev), ev.key, self.options.stream) + extra_headers
        if size > max_payload:
            return None, f"event of {size} bytes exceeds the server's max_payload of {max_payload}"
        return subject, None

    def _headers(self, ev: Outgoing) -> dict[str, str]:
        headers = cloudevents.headers(ev)
        headers["Nats-Msg-Id"] = ev.key
        headers["Nats-Expected-Stream"] = self.options.stream
        return headers

    async def _send(self, batch: list[Outgoing], progress: _Progress) -> str | None:
        """Publish ``batch`` in order; returns None or why the rest (after ``progress.done``) must be retried."""
        try:
            if self.options.publish == "atomic":
                await self._send_atomic(batch, progress)
            else:
                await self._send_pipelined(batch, 0, len(batch), progress)
        except _Failed as exc:
            return str(exc)
        return None

    async def _send_pipelined(self, batch: list[Outgoing], lo: int, hi: int, progress: _Progress) -> None:
        """Publish ``batch[lo:hi]`` pipelined; settle PubAcks in order (``progress.done`` up to ``hi``)."""
        nc, o = self._nc, self.options
        pending: deque[tuple[int, asyncio.Future | str]] = deque()
        loop = asyncio.get_running_loop()
        try:
            for i in range(lo, hi):
                ev = batch[i]
                while len(pending) >= o.max_inflight:
                    await self._settle(pending.popleft(), batch, progress)
                if self._lost is not None:
                    raise _Failed(self._lost)
                subject, refused = self._route(ev)
                if subject is None:
                    # Refused for good, whatever we try: it is parked in its place in the order.
                    pending.append((i, refused))
                    continue
                token = str(next(self._tokens))
                fut = loop.create_future()
                self._waiting[token] = fut
                await nc.publish(subject, ev.envelope, reply=self._inbox + token, headers=self._headers(ev))
                pending.append((i, fut))
            while pending:
                await self._settle(pending.popleft(), batch, progress)
        finally:
            pending = [(i, f) for i, f in pending if not isinstance(f, str)]
            for _, fut in pending:
                fut.cancel()
            self._forget(pending)

    async def _send_atomic(self, batch: list[Outgoing], progress: _Progress) -> None:
        """Publish ``batch`` as atomic batches of up to ATOMIC_BATCH_LIMIT, one after the other, each committed
        (its PubAck checked) before the next starts: what the stream holds of ours stays a prefix, in order."""
        lo = 0
        while lo < len(batch):
            members: list[tuple[int, str]] = []
            parked: list[Parked] = []
            hi = lo
            while hi < len(batch) and len(members) < ATOMIC_BATCH_LIMIT:
                subject, refused = self._route(batch[hi], ATOMIC_HEADERS_SIZE)
                if subject is None:
                    parked.append(Parked(hi, None, refused))
                else:
                    members.append((hi, subject))
                hi += 1
            if len(members) < ATOMIC_MIN_EVENTS:
                # A few events are quicker pipelined (docs §7): same order, same prefix, each with its PubAck.
                await self._send_pipelined(batch, lo, hi, progress)
            elif members and await self._commit_atomic(batch, members) is not None:
                # Refused as a whole (a Nats-Msg-Id it already has, a limit): each message gets its own verdict.
                self.atomic_fallbacks += 1
                await self._send_pipelined(batch, lo, hi, progress)
            else:
                progress.parked.extend(parked)
                progress.done = hi
            lo = hi

    async def _commit_atomic(self, batch: list[Outgoing], members: list[tuple[int, str]]) -> str | None:
        """One atomic batch: None when its commit PubAck says all of it is stored, else the stream's refusal.
        Raises ``_Failed`` when the outcome is unknown (connection lost, no PubAck in time, a PubAck that does
        not fit): the runner reconnects and sends it again."""
        nc, o = self._nc, self.options
        batch_id = uuid.uuid4().hex
        token = str(next(self._tokens))
        fut = asyncio.get_running_loop().create_future()
        self._waiting[token] = fut
        first, last = batch[members[0][0]], batch[members[-1][0]]
        what = f"the atomic batch {first.key} … {last.key}" if len(members) > 1 else f"the atomic batch {first.key}"
        try:
            for n, (i, subject) in enumerate(members, 1):
                if self._lost is not None:
                    raise _Failed(self._lost)
                headers = self._headers(batch[i])
                headers["Nats-Batch-Id"] = batch_id
                headers["Nats-Batch-Sequence"] = str(n)
                reply = ""
                if n == len(members):
                    headers["Nats-Batch-Commit"] = "1"
                    reply = self._inbox + token
                await nc.publish(subject, batch[i].envelope, reply=reply, headers=headers)
            try:
                msg = await asyncio.wait_for(fut, o.ack_timeout_s)
            except asyncio.TimeoutError:
                raise _Failed(f"no PubAck for {what} within {o.ack_timeout_s:g} s") from None
        finally:
            if not fut.done():
                fut.cancel()
            self._waiting.pop(token, None)
        return self._check_commit(msg, what, batch_id, len(members), last)

    def _read_ack(self, msg, what: str, type_: str) -> tuple[dict, str | None]:
        """A PubAck as a dict and the stream's error description (None when there is none); ``_Failed`` when it
        is no PubAck at all (no responders, not a JSON object) or names another stream."""
        status = (msg.headers or {}).get("Status")
        if status == "503":
            raise _Failed(f"no stream takes subject {self._subject(type_)} (no responders)")
        try:
            ack = json.loads(msg.data)
        except ValueError:
            raise _Failed(f"a PubAck for {what} that is not JSON") from None
        if not isinstance(ack, dict):
            raise _Failed(f"a PubAck for {what} that is not an object")
        error = ack.get("error")
        if error:
            return ack, str(error.get("description") if isinstance(error, dict) else error)
        if ack.get("stream") != self.options.stream:
            raise _Failed(f"the PubAck for {what} names stream {ack.get('stream')!r}, not {self.options.stream}")
        return ack, None

    def _check_commit(self, msg, what: str, batch_id: str, count: int, last: Outgoing) -> str | None:
        """The commit PubAck's verdict: None when it proves all ``count`` messages stored; the stream's error
        description when it refused the batch (nothing of it stored); ``_Failed`` when it proves neither."""
        ack, error = self._read_ack(msg, what, last.type)
        if error:
            return error
        seq = ack.get("seq")
        if not isinstance(seq, int) or seq < count:
            raise _Failed(f"the PubAck for {what} has no stream sequence")
        if ack.get("batch") != batch_id or ack.get("count") != count:
            raise _Failed(f"the PubAck for {what} is for batch {ack.get('batch')!r} of {ack.get('count')!r} "
                          f"messages, not ours of {count}")
        return None

    def _forget(self, pending) -> None:
        if pending:
            waiting = {id(f) for _, f in pending}
            for token in [t for t, f in self._waiting.items() if id(f) in waiting]:
                del self._waiting[token]

    async def _settle(self, item: tuple[int, asyncio.Future | str], batch: list[Outgoing],
                      progress: _Progress) -> None:
        i, fut = item
        if isinstance(fut, str):
            progress.parked.append(Parked(i, None, fut))
            progress.done = i + 1
            return
        try:
            msg = fut.result() if fut.done() else await asyncio.wait_for(fut, self.options.ack_timeout_s)
        except asyncio.TimeoutError:
            raise _Failed(f"no PubAck for {batch[i].key} within {self.options.ack_timeout_s:g} s") from None
        duplicate = self._check_ack(msg, batch[i])
        progress.done = i + 1
        if duplicate:
            progress.duplicates += 1

    def _check_ack(self, msg, ev: Outgoing) -> bool:
        """The PubAck's verdict: True for a duplicate, False for a new message; ``_Failed`` otherwise."""
        ack, error = self._read_ack(msg, ev.key, ev.type)
        if error:
            raise _Failed(f"JetStream refused {ev.key}: {error}")
        seq = ack.get("seq")
        if not isinstance(seq, int) or seq < 1:
            raise _Failed(f"the PubAck for {ev.key} has no stream sequence")
        return bool(ack.get("duplicate"))

    # -- close

    def close(self) -> None:
        loop, nc = self._loop, self._nc
        self._nc = None
        if loop is not None:
            if nc is not None:
                try:
                    asyncio.run_coroutine_threadsafe(_close_quietly(nc), loop).result(LOOP_GUARD_S)
                except Exception:
                    pass
            self._waiting.clear()
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(LOOP_GUARD_S)
            if not loop.is_running():
                loop.close()
            self._loop = self._thread = None


async def _close_quietly(nc) -> None:
    try:
        await asyncio.wait_for(nc.close(), LOOP_GUARD_S)
    except Exception:
        pass


def _headers_size(headers: dict[str, str], key: str, stream: str) -> int:
    """What the headers add to a message on the wire (NATS/1.0 line, ``k: v`` lines, blank line)."""
    lines = {**headers, "Nats-Msg-Id": key, "Nats-Expected-Stream": stream}
    return len("NATS/1.0\r\n\r\n") + sum(len(k) + len(v) + 4 for k, v in lines.items())


def _reason(exc: BaseException) -> str:
    """One line for an exception of the client library or the OS (never a credential: callers mask too)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate does not verify ({exc.verify_message}); set tls_ca_file to its CA"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip() or type(exc).__name__
    if text.startswith("nats: "):
        text = text[6:]
    return " ".join(text.split())


def _overlap_hint(exc) -> str:
    text = (getattr(exc, "description", "") or "").lower()
    return "; another stream already takes these subjects: name it in stream, or set subjects" if "overlap" in text \
        else ""


SINK = NatsSink

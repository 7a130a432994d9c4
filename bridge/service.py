"""The running bridge: transport threads → capture queue → pipeline → outbox (+ recording, + feed).

Threads and what each may block on:

- one thread per device runs its transport (``Transport.run``): it blocks only on its device. A tap forwards the
  till's bytes first and hands a copy to the ``CaptureQueue``, which never blocks.
- the capture thread takes everything queued, decodes it (``Pipeline``), writes the recording, and appends the
  events to the outbox in one transaction per round (group commit: the fsync is paid per round, not per event).
  It is the only thread that writes the outbox.
- the feed's HTTP threads read the outbox through their own read-only connections.

When the outbox cannot store (its size limit, a full disk, free space under ``min_free_mb``), the capture thread
keeps the events in memory up to ``pending_max_mb``, says so loudly (stderr and a ``bridge.alert``), retries
every second, and stores them when space returns. Past that bound it counts what it drops, per source, and
records the loss as a ``bridge.alert`` once it can store again. The till's traffic is never held back.

SIGTERM/SIGINT (``request_stop``): transports stop, the queue is drained, decoders are closed (flushing what
they hold), the last events are committed, the recording gets its index, and the outbox is closed.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.capture import CaptureQueue, Chunk, Status
from bridge.config import BridgeConfig
from bridge.outbox import Outbox, OutboxFull
from bridge.pipeline import Body, Pipeline
from bridge.transports import open_transport

APPEND_SLICE = 5000  # events per transaction when catching up on a backlog held in memory
RETRY_S = 1.0  # how often a blocked outbox is retried
GUARD_EVERY_S = 1.0  # disk and size checks
PRUNE_EVERY_S = 60.0
TICK_EVERY_NS = 50_000_000  # decoders' idle timers (display bursts …)
RECORD_FLUSH_S = 1.0
LOUD_EVERY_S = 10.0
DRAIN_TIMEOUT_S = 60.0  # how long SIGTERM waits for the capture thread to commit what is queued
SWITCH_INTERVAL_S = 0.0005  # repeat the "cannot store" line this often while it lasts


class StartError(Exception):
    """The bridge cannot start as configured; the message is one line for the user."""


@dataclass
class Alert:
    kind: str
    message: str
    since_ns: int


@dataclass
class Totals:
    stored: int = 0
    commits: int = 0
    dropped_events: int = 0  # decoded but never stored (memory bound while the outbox was blocked)
    dropped_bytes: int = 0
    queue_dropped_chunks: int = 0  # read from a device but not decoded (the capture queue was full)
    queue_dropped_bytes: int = 0
    lost_by_src: dict[str, int] = field(default_factory=dict)


def _log(message: str) -> None:
    sys.stderr.write(f"tillwire: {message}\n")
    sys.stderr.flush()


class Bridge:
    def __init__(self, config: BridgeConfig, *, on_stored: Callable[[list[Body], list[tuple[str, int]]], None] | None = None,
                 backend: str | None = None, feed: bool = True, store: bool = True,
                 record: str | None = None, log: Callable[[str], None] = _log):
        self.config = config
        self.on_stored = on_stored
        self.log = log
        self.queue = CaptureQueue()
        self.pipeline = Pipeline(config.devices, config.src, backend=backend) if store else None
        self.transports = [open_transport(d.name, d.transport) for d in config.devices]
        self.totals = Totals()
        self.alerts: dict[str, Alert] = {}
        self.outbox: Outbox | None = None
        self.feed_server = None
        self.recorder = None
        self.sink_runners: list = []  # bridge.sinks.runner.SinkRunner, one per [[sinks]] entry
        self._want_feed = feed and config.feed.enabled and store
        self._store_events = store
        self._record_path = record if record is not None else (str(config.record) if config.record else None)
        self._stop_transports = threading.Event()
        self._stop_capture = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._capture_thread: threading.Thread | None = None
        self._pending: list[Body] = []
        self._pending_bytes = 0
        self._slice = APPEND_SLICE
        self._blocked_until = 0.0
        self._last_loud = 0.0
        self._last_guard = 0.0
        self._last_prune = 0.0
        self._last_tick = 0
        self._last_flush = 0.0
        self.fatal: BaseException | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Open the outbox (raises OutboxError for the CLI to print), the recording and the feed, then start."""
        cfg = self.config
        # A tap thread woken by the till must get the GIL at once, even while the capture thread decodes:
        # 0.5 ms instead of CPython's 5 ms bounds what a busy capture thread can add to the till's latency.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        if self._record_path:
            self._record_path = self._check_record_path(self._record_path)
        if self._store_events:
            cfg.outbox.parent.mkdir(parents=True, exist_ok=True)
            self.outbox = Outbox.open(cfg.outbox, sinks=tuple(s.name for s in cfg.sinks),
                                      retention_s=cfg.retention_s, max_bytes=cfg.outbox_max_bytes)
        if self._record_path:
            from bridge.recording import tws

            devices = [tws.DeviceInfo(d.name, d.protocol, d.transport, dict(d.options)) for d in cfg.devices]
            from pathlib import Path

            Path(self._record_path).parent.mkdir(parents=True, exist_ok=True)
            self.recorder = tws.Writer.create(self._record_path, devices=devices, site=cfg.site, till=cfg.till)
        if self._want_feed:
            from bridge.feed import FeedServer

            server = FeedServer(str(cfg.outbox), host=cfg.feed.host, port=cfg.feed.port, token=cfg.feed.token,
                                token_source=cfg.feed.token_source)
            server.add_route("/sinks", self._sinks_route)  # before start: no early 404
            server.start()  # FeedError (a port in use …): the CLI prints it; close() undoes the rest
            self.feed_server = server
        if self._store_events and cfg.sinks:
            self._start_sinks()
        self._capture_thread = threading.Thread(target=self._capture_main, name="tillwire-capture", daemon=True)
        self._capture_thread.start()
        for transport in self.transports:
            t = threading.Thread(target=self._transport_main, args=(transport,), name=f"tillwire-{transport.device}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def _start_sinks(self) -> None:
        """One runner thread per ``[[sinks]]`` entry; each reads the outbox after its own cursor."""
        from bridge.sinks import SinkConfigError, sink_class
        from bridge.sinks.runner import SinkRunner
        from bridge.sinks.settings import context_for

        cfg = self.config
        for s in cfg.sinks:
            try:
                sink = sink_class(s.kind)(s.name, s.options,
                                          context_for(cfg.site, cfg.till, cfg.source_prefix, s.options))
            except SinkConfigError as exc:  # e.g. a site or till name that cannot be part of a NATS subject
                raise StartError(f"{cfg.path}: sinks: {s.name}: {exc}") from None
            runner = SinkRunner(str(cfg.outbox), s, sink, cfg.delivery, log=self.log, max_bytes=cfg.outbox_max_bytes)
            runner.start()
            self.sink_runners.append(runner)

    def sink_stats(self) -> list[dict]:
        return [r.stats() for r in self.sink_runners]

    def _sinks_route(self, request) -> None:
        """``GET /sinks``: each sink's state, cursor, depth, counters and last error (JSON)."""
        import json

        request.respond(200, json.dumps({"sinks": self.sink_stats()}).encode() + b"\n", "application/json")

    def _check_record_path(self, path: str) -> str:
        """``{start}`` becomes the start time (UTC); an existing file is never overwritten (it may be the outbox, a
        recording being replayed, or yesterday's recording)."""
        import os

        path = path.replace("{start}", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        target = os.path.realpath(path)
        outbox = os.path.realpath(self.config.outbox)
        if target in (outbox, outbox + "-wal", outbox + "-shm"):
            raise StartError(f"the recording {path} would overwrite the outbox; record to a .tws file elsewhere")
        for transport in self.transports:
            source = getattr(transport, "path", None)
            if source and os.path.realpath(source) == target:
                raise StartError(f"the recording {path} is the file device {transport.device!r} replays; "
                                 f"record to another file")
        if os.path.lexists(path):
            raise StartError(f"the recording {path} exists; tillwire never overwrites one: choose another path, "
                             f"or put {{start}} in it (replaced by the start time)")
        return path

    def _transport_main(self, transport) -> None:
        try:
            transport.run(self.queue, self._stop_transports)
        except Exception as exc:  # noqa: BLE001 - a transport bug: report it, keep the others running
            self.queue.status(time.time_ns(), transport.device, "closed", transport=transport.describe(),
                              reason=f"transport failed: {type(exc).__name__}: {exc}".splitlines()[0])
            self.log(f"device {transport.device}: transport stopped after an internal error: {exc!r}")

    def devices_finished(self) -> bool:
        """Every transport thread has returned (replays at their end, or all stopped)."""
        return all(not t.is_alive() for t in self._threads)

    def request_stop(self) -> None:
        self._stop_transports.set()
        for transport in self.transports:
            try:
                transport.stop()
            except Exception:  # noqa: BLE001 - stopping must go on
                pass

    def wait(self, poll_s: float = 0.2) -> None:
        """Block until stopped (``request_stop``) or, with ``stop_after_replay``, until every device finished."""
        while not self._stop_transports.is_set():
            if self.config.stop_after_replay and self.devices_finished():
                break
            if self.fatal is not None:
                break
            self._stop_transports.wait(poll_s)

    def close(self, timeout: float = 5.0) -> None:
        """Stop transports, drain and commit everything, close recording, feed and outbox. Idempotent."""
        if self._stopped.is_set():
            return
        self.request_stop()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for t in self._threads:
            if t.is_alive():
                self.log(f"{t.name}: did not stop within {timeout:.0f} s; its last bytes may not be captured")
        self._stop_capture.set()
        self.queue.wake()
        if self._capture_thread is not None:
            # Draining a full queue can take a while on slow storage; the outbox and the recording belong to the
            # capture thread until it has finished, so they are never closed under it.
            self._capture_thread.join(DRAIN_TIMEOUT_S)
            if self._capture_thread.is_alive():
                self.log(f"the capture thread is still draining after {DRAIN_TIMEOUT_S:.0f} s; exiting without "
                         f"waiting: {len(self._pending)} events held and what is still queued are not stored "
                         f"(everything committed before is safe)")
                self._stopped.set()
                return
        self._stop_sinks()
        if self.feed_server is not None:
            self.feed_server.stop()
        if self.recorder is not None:
            self.recorder.close()
        if self.outbox is not None:
            self.outbox.close()
        self._stopped.set()

    def _stop_sinks(self) -> None:
        """Everything captured is committed: let the sinks deliver what is pending for ``sink_drain_s``, then stop.
        What they could not deliver stays in the outbox for the next start."""
        drain = self.config.sink_drain_s
        for r in self.sink_runners:
            r.stop(drain)
        # one deadline for all of them: N sinks stuck in a send cost drain + 5 s together, not N times that
        deadline = time.monotonic() + drain
        for r in self.sink_runners:
            r.join(max(0.0, deadline - time.monotonic()))
        for r in self.sink_runners:
            r.halt()
        deadline = time.monotonic() + 5.0
        for r in self.sink_runners:
            if not r.join(max(0.0, deadline - time.monotonic())):
                self.log(f"sink {r.name}: did not stop; its pending events stay in the outbox for the next start")

    # ---------------------------------------------------------------- the capture thread

    def _capture_main(self) -> None:
        try:
            while True:
                stopping = self._stop_capture.is_set()
                items = self.queue.get_batch(timeout=0.05)
                self._round(items)
                if stopping and not items:
                    break
            self._finish()
        except BaseException as exc:  # noqa: BLE001 - a bug in the bridge: stop loudly, never silently
            self.fatal = exc
            import traceback

            self.log("internal error in the capture thread (please report it):\n" + traceback.format_exc())
            if self._pending:
                self.log(f"{len(self._pending)} events decoded but not stored are lost")
                self._drop(self._pending)
                self._pending = []
            self._stop_transports.set()

    def _round(self, items: list[Chunk | Status]) -> None:
        now = time.time_ns()
        alerts = self._record(items, now) if self.recorder is not None else []
        if self.pipeline is None:
            return
        bodies = self.pipeline.process(items) if items else []
        bodies.extend(alerts)
        for item in items:  # a transport that had to drop copies says so on the connection's closed status
            if type(item) is Status and item.detail.get("dropped_bytes"):
                bodies.extend(self._copies_lost(item.device, item.detail.get("dropped_chunks", 0),
                                                item.detail["dropped_bytes"], now, "the transport's hold was full"))
        if now - self._last_tick >= TICK_EVERY_NS:
            self._last_tick = now
            bodies.extend(self.pipeline.tick(now))
        bodies.extend(self._queue_losses(now))
        mono = time.monotonic()
        if mono - self._last_guard >= GUARD_EVERY_S:
            self._last_guard = mono
            bodies.extend(self._guard(now))
        self._store(bodies, mono)
        if mono - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = mono
            self._prune()

    def _finish(self) -> None:
        now = time.time_ns()
        if self.pipeline is not None:
            bodies = self.pipeline.close(now)
            bodies.extend(self._queue_losses(now))
            self._blocked_until = 0.0
            self._store(bodies, time.monotonic())
            if self._pending:
                self._blocked_until = 0.0
                self._store([], time.monotonic())
            if self._pending:
                self.log(f"stopping with {len(self._pending)} events that could not be stored "
                         f"({self._pending_bytes} bytes): they are lost")
                self._drop(self._pending)
                self._pending = []

    def _record(self, items: list[Chunk | Status], now: int) -> list[Body]:
        rec = self.recorder
        try:
            for item in items:
                if type(item) is Chunk:
                    rec.chunk(item.t_ns, item.device, item.direction, item.data)
                else:
                    rec.control(item.t_ns, item.device, item.state, **item.detail)
            mono = time.monotonic()
            if mono - self._last_flush >= RECORD_FLUSH_S:
                self._last_flush = mono
                rec.flush()
        except Exception as exc:  # noqa: BLE001 - a full disk, or a bug in the recorder: capture must go on
            self.recorder = None
            try:
                rec.close()
            except Exception:  # noqa: BLE001 - the file is already failing; what was flushed stays readable
                pass
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
            return self._raise("recording_failed", f"the recording {self._record_path} stopped: "
                               f"{why.splitlines()[0]}; capture into the outbox goes on", now)
        return []

    # ---------------------------------------------------------------- storing, guards, alerts

    def _store(self, bodies: list[Body], mono: float) -> None:
        if bodies:
            self._pending.extend(bodies)
            self._pending_bytes += sum(_size(b) for b in bodies)
            self._bound_pending()
        if not self._pending or mono < self._blocked_until:
            return
        outbox = self.outbox
        while self._pending:
            batch = self._pending[:self._slice]
            try:
                keys = outbox.append(batch)
            except OutboxFull as exc:
                if len(batch) > 1:  # part of it may still fit: store what fits, in order
                    self._slice = max(1, len(batch) // 2)
                    continue
                self._blocked(mono, f"the outbox is full ({exc})")
                self._prune()
                return
            except sqlite3.OperationalError as exc:  # e.g. disk I/O error: hold and retry, say so
                self._blocked(mono, f"the outbox cannot be written: {exc}")
                return
            del self._pending[:len(batch)]
            self._slice = min(APPEND_SLICE, self._slice * 2)
            self.totals.stored += len(batch)
            self.totals.commits += 1
            for runner in self.sink_runners:  # each committed slice, also when a later one does not fit
                runner.wake()
            if self.on_stored is not None:
                self.on_stored(batch, keys)
        self._pending_bytes = 0
        if self.feed_server is not None:
            self.feed_server.notify()
        self._recovered(time.time_ns())

    def _bound_pending(self) -> None:
        limit = self.config.pending_max_bytes
        if self._pending_bytes <= limit:
            return
        keep, size = 0, 0
        for body in self._pending:
            s = _size(body)
            if size + s > limit:
                break
            size += s
            keep += 1
        dropped = self._pending[keep:]
        del self._pending[keep:]
        self._pending_bytes = size
        self._drop(dropped)

    def _drop(self, bodies: list[Body]) -> None:
        t = self.totals
        for src, _kind, _data, _ts in bodies:
            t.lost_by_src[src] = t.lost_by_src.get(src, 0) + 1
        t.dropped_events += len(bodies)
        t.dropped_bytes += sum(_size(b) for b in bodies)

    def _blocked(self, mono: float, why: str) -> None:
        self._blocked_until = mono + RETRY_S
        self._last_guard = 0.0  # check disk and size in the next round: say *why* it is blocked
        self._pending_bytes = sum(_size(b) for b in self._pending)  # part of the backlog may have been stored
        now = time.time_ns()
        t = self.totals
        message = (f"{why}: holding {len(self._pending)} events ({self._pending_bytes} bytes) in memory, "
                   f"{t.dropped_events} lost so far; the till's traffic still flows; free disk space or raise "
                   f"bridge.outbox_max_mb — capture resumes by itself")
        new = "outbox_blocked" not in self.alerts
        self.alerts.setdefault("outbox_blocked", Alert("outbox_blocked", message, now)).message = message
        if new or mono - self._last_loud >= LOUD_EVERY_S:
            self._last_loud = mono
            self.log(message)

    def _recovered(self, now: int) -> None:
        alert = self.alerts.pop("outbox_blocked", None)
        bodies: list[Body] = []
        if alert is not None:
            self.log(f"the outbox stores again (blocked since {_ago(alert.since_ns, now)})")
            bodies.append(self._alert_body("outbox_blocked", alert.message, alert.since_ns, now, active=False))
        t = self.totals
        if t.lost_by_src:
            lost = ", ".join(f"{src}: {n}" for src, n in sorted(t.lost_by_src.items()))
            message = f"{sum(t.lost_by_src.values())} events could not be stored and are lost ({lost})"
            self.log(message)
            bodies.append(self._alert_body("events_lost", message, alert.since_ns if alert else now, now,
                                           active=False, lost=dict(t.lost_by_src)))
            t.lost_by_src = {}
        if bodies:
            self._store(bodies, time.monotonic())

    def _raise(self, kind: str, message: str, now: int, key: str | None = None, **extra) -> list[Body]:
        """Start (or keep) an alert; returns the bridge.alert body when it is new. ``key`` tells apart alerts of
        one kind about different things (a sink each)."""
        key = key or kind
        if key in self.alerts:
            self.alerts[key].message = message
            return []
        self.alerts[key] = Alert(kind, message, now)
        self.log(message)
        return [self._alert_body(kind, message, now, now, active=True, **extra)]

    def _clear(self, kind: str, now: int, key: str | None = None, **extra) -> list[Body]:
        alert = self.alerts.pop(key or kind, None)
        if alert is None:
            return []
        self.log(f"cleared: {alert.message}")
        return [self._alert_body(kind, alert.message, alert.since_ns, now, active=False, **extra)]

    def _sink_alerts(self, now: int) -> list[Body]:
        """``sink_down``: a sink has failed for ``sink_alert_s`` without delivering; cleared when it delivers."""
        out: list[Body] = []
        for runner in self.sink_runners:
            st = runner.stats()
            since = st["failing_since_ns"]
            key = f"sink_down:{runner.name}"
            if since is not None and now - since >= self.config.sink_alert_s * 1e9:
                out += self._raise("sink_down", f"sink {runner.name} ({st['target']}) has not delivered for "
                                   f"{_ago(since, now)}: {st['last_error']}; {st['depth']} events wait in the "
                                   f"outbox", now, key=key, sink=runner.name, depth=st["depth"])
            elif since is None:
                out += self._clear("sink_down", now, key=key, sink=runner.name, depth=st["depth"])
        return out

    def _alert_body(self, kind: str, message: str, since_ns: int, ts: int, *, active: bool, **extra) -> Body:
        data = {"kind": kind, "message": message, "since_ns": since_ns, "active": active}
        data.update(extra)
        return (self.config.bridge_src, "bridge.alert", data, ts)

    def _queue_losses(self, now: int) -> list[Body]:
        dropped = self.queue.take_dropped()
        out: list[Body] = []
        for device, (chunks, nbytes) in sorted(dropped.items()):
            out.extend(self._copies_lost(device, chunks, nbytes, now, "the capture queue was full"))
        return out

    def _copies_lost(self, device: str, chunks: int, nbytes: int, now: int, why: str) -> list[Body]:
        self.totals.queue_dropped_chunks += chunks
        self.totals.queue_dropped_bytes += nbytes
        message = f"device {device}: {nbytes} bytes in {chunks} chunks were forwarded but not captured ({why})"
        self.log(message)
        return [self._alert_body("capture_overflow", message, now, now, active=False, device=device,
                                 chunks=chunks, bytes=nbytes)]

    def _guard(self, now: int) -> list[Body]:
        cfg = self.config
        out: list[Body] = []
        directory = cfg.outbox.parent
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = None
        if free is not None and cfg.min_free_bytes:
            if free < cfg.min_free_bytes:
                self._blocked_until = max(self._blocked_until, time.monotonic() + RETRY_S)
                out += self._raise("disk_full", f"only {free // 1024} KiB free under {directory} (below "
                                   f"bridge.min_free_mb): events are held in memory, not stored", now)
            else:
                out += self._clear("disk_full", now)
            if free < 2 * cfg.min_free_bytes:
                out += self._raise("disk_low", f"disk space is low under {directory}: {free // (1024 * 1024)} MiB "
                                   f"free; storing stops below {cfg.min_free_bytes // (1024 * 1024)} MiB", now)
            elif free >= 2 * cfg.min_free_bytes + cfg.min_free_bytes // 10:  # hysteresis
                out += self._clear("disk_low", now)
        if cfg.outbox_max_bytes and self.outbox is not None:
            used = self.outbox.used_bytes()
            percent = 100 * used // cfg.outbox_max_bytes
            if percent >= cfg.alert_percent:
                out += self._raise("outbox_nearly_full", f"the outbox is {percent}% full ({used // 1024} KiB of "
                                   f"{cfg.outbox_max_bytes // 1024} KiB); events still undelivered keep it from "
                                   f"shrinking", now)
            elif percent < cfg.alert_percent - 5:
                out += self._clear("outbox_nearly_full", now)
        out += self._sink_alerts(now)
        return out

    def _prune(self) -> None:
        try:
            self.outbox.prune()
        except sqlite3.OperationalError:
            pass  # pruning is best effort; the next round tries again


def _size(body: Body) -> int:
    """A cheap estimate of an event's stored size (the memory bound while the outbox is blocked)."""
    return 64 + len(body[0]) + len(body[1]) + 16 * len(body[2])


def _ago(since_ns: int, now_ns: int) -> str:
    return f"{(now_ns - since_ns) / 1e9:.1f} s"

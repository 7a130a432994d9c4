"""One thread per sink: outbox → sink, in order, at least once, with retries and statistics (docs/bridge/sinks.md §3).

The loop, in words:

1. Read the rows after the sink's cursor (``SinkStore.pending``), in rowid order — so each source in seq order.
2. Skip the rows the sink does not take (its ``classes`` and ``types``); they count as done for it.
3. **Batching**: a real-time event goes out at once and carries every earlier pending event with it (order is
   never traded for latency). When only batch-class events are pending, they wait until ``batch_max_events`` of
   them are pending or the oldest is ``batch_max_age_s`` old — or the bridge is stopping.
4. ``send`` the batch (at most ``max_batch`` events). The outcome's ``done`` prefix is acknowledged: the cursor
   moves past it and the parked events among it become dead letters, in one transaction.
5. The rest of the batch is **retried as it is** (same events, same order: a webhook batch keeps its idempotency
   key) after ``Retry.after_s`` when the destination said when (Retry-After: no request before it elapses), else
   after a full-jitter exponential backoff capped at ``backoff_cap_s``. A ``SinkUnavailable`` or
   ``Retry(reconnect=True)`` closes the sink and connects again first.
6. Dead letters flagged by ``tillwire outbox redrive`` are sent again, on their own, about once a second.

The capture thread calls ``wake()`` after every commit, so a real-time event leaves within one loop turn.
``stop(drain_s)`` lets the runner send what is pending (batch-class events too) for up to ``drain_s`` seconds,
then interrupts the sink and ends the thread.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable

import msgpack

from bridge.backoff import Backoff
from bridge.outbox import OutboxError
from bridge.sinks.base import BATCH, REALTIME, Outcome, Outgoing, Parked, Retry, Sink, SinkUnavailable
from bridge.sinks.classes import DeliveryClasses
from bridge.sinks.settings import SinkSettings
from bridge.sinks.store import PendingRow, SinkStore

READ_AHEAD = 4096          # at most this many rows read per look at the outbox
UNDECODABLE = "undecodable"  # the type given to a dead letter whose stored envelope does not decode
REDRIVE_EVERY_S = 1.0      # how often flagged dead letters are looked for
IDLE_POLL_S = 1.0          # without a wake-up, look at the outbox this often anyway (another process may write)
LOG_REPEAT_S = 60.0        # a failure that goes on is logged again at most this often
SEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _stderr(line: str) -> None:
    print(f"tillwire: {line}", file=sys.stderr, flush=True)


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret value replaced by ``***``, on one line."""
    for s in secrets:
        if s and s in text:
            text = text.replace(s, "***")
    return " ".join(text.split())


class SinkRunner:
    def __init__(self, outbox_path: str, settings: SinkSettings, sink: Sink, classes: DeliveryClasses, *,
                 log: Callable[[str], None] = _stderr, clock: Callable[[], float] = time.monotonic,
                 max_bytes: int | None = None):
        self.path = str(outbox_path)
        self.max_bytes = max_bytes  # the outbox's size limit, which dead letters respect too
        self.settings = settings
        self.sink = sink
        self.classes = classes
        self.name = settings.name
        self._log = log
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drain_until: float | None = None
        self._thread = threading.Thread(target=self._main, name=f"sink-{self.name}", daemon=True)
        self._backoff = Backoff(base=settings.backoff_base_s, cap=settings.backoff_cap_s, floor=0.0)
        self._lock = threading.Lock()
        self._store: SinkStore | None = None
        # statistics (read by stats() from other threads; plain ints/strs under the GIL, snapshotted under _lock)
        self._s = {
            "state": "starting", "connected": False, "delivered": 0, "duplicates": 0, "undecodable": 0, "parked": 0,
            "redriven": 0, "retries": 0, "reconnects": 0, "failures_in_a_row": 0, "failing_since_ns": None, "cursor": 0, "depth": 0,
            "oldest_age_s": 0.0, "dead_letters": 0, "pruned_before_start": 0, "last_delivery_ns": None, "last_error": None,
            "last_error_ns": None, "next_attempt_in_s": None, "sends": 0, "send_seconds_sum": 0.0,
        }
        self._send_buckets = [0] * (len(SEND_BUCKETS) + 1)
        # rows read per look: enough for a full batch after skipping some, not the whole backlog every turn
        self._read_ahead = min(READ_AHEAD, max(64, 2 * settings.max_batch))
        self._next_attempt: float | None = None
        self._last_logged: dict[str, float] = {}

    # ---------------------------------------------------------------- control (other threads)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New rows were committed (called by the capture thread)."""
        self._wake.set()

    def stop(self, drain_s: float = 0.0) -> None:
        """Ask the runner to end after sending what is pending, for at most ``drain_s`` seconds."""
        self._drain_until = self._clock() + drain_s
        self._wake.set()
        if drain_s <= 0:
            self._halt()

    def halt(self) -> None:
        """End now: the drain is over (interrupts a blocking send)."""
        self._halt()

    def _halt(self) -> None:
        self._stop.set()
        self._wake.set()
        try:
            self.sink.interrupt()
        except Exception:  # interrupt is best effort from a foreign thread
            pass

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; past the drain deadline the sink is interrupted. True when it ended."""
        deadline = None if timeout is None else self._clock() + timeout
        while self._thread.is_alive():
            now = self._clock()
            if self._drain_until is not None and now >= self._drain_until and not self._stop.is_set():
                self._halt()
            if deadline is not None and now >= deadline:
                return False
            self._thread.join(0.05)
        return True

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> dict:
        with self._lock:
            out = dict(self._s)
            out["send_seconds_buckets"] = list(zip((*SEND_BUCKETS, float("inf")), self._send_buckets))
        out["name"], out["kind"] = self.name, self.settings.kind
        out["target"] = mask(self.sink.describe(), self.sink.context.secrets)
        next_attempt = self._next_attempt  # one read: the runner thread may clear it meanwhile
        if next_attempt is not None:
            out["next_attempt_in_s"] = round(max(0.0, next_attempt - self._clock()), 3)
        return out

    # ---------------------------------------------------------------- the thread

    def _set(self, **kv) -> None:
        with self._lock:
            self._s.update(kv)

    def _add(self, **kv) -> None:
        with self._lock:
            for k, v in kv.items():
                self._s[k] += v

    def _draining(self) -> bool:
        return self._drain_until is not None

    def _drain_over(self) -> bool:
        return self._stop.is_set() or (self._drain_until is not None and self._clock() >= self._drain_until)

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug here must not pass silently: say so, keep the bridge capturing
            line = f"sink {self.name}: delivery stopped after an internal error ({type(exc).__name__})"
            self._fail_log("stopped", line, force=True)
            now = time.time_ns()
            with self._lock:  # a dead runner is a down sink: the bridge's sink_down alert must see it
                if self._s["failing_since_ns"] is None:
                    self._s["failing_since_ns"] = now
                self._s.update(state="failed", last_error=line, last_error_ns=now)
        finally:
            try:
                self.sink.close()
            finally:
                if self._store is not None:
                    self._store.close()
                if self._s["state"] != "failed":
                    self._set(state="stopped", connected=False)

    def _run(self) -> None:
        store = None
        while store is None:  # the outbox may be locked or briefly unreadable: wait, never give up
            try:
                store = SinkStore(self.path, self.name, self.max_bytes)
            except (OutboxError, sqlite3.Error) as exc:
                if not self._pause(Retry(f"outbox: {exc}")):
                    return
        self._store = store
        cursor = store.acked()
        self._set(cursor=cursor, depth=store.depth(cursor), dead_letters=store.dead_letter_count())
        self._report_pruned_gap(store, cursor)
        self._cursor = cursor
        self._current: list[Outgoing] = []   # the batch being sent, retried as it is until done
        self._end_rowid = cursor              # the cursor once it is done (includes skipped rows after it)
        self._connected = False
        self._next_redrive = 0.0
        while True:
            if self._stop.is_set():
                return
            if self._draining() and self._drain_over():
                return
            try:
                if not self._turn(store):
                    return
            except sqlite3.Error as exc:
                # a locked or full outbox, an I/O error: the batch in hand stays as it is and is sent again
                if not self._pause(Retry(f"outbox: {exc}")):
                    return

    def _turn(self, store: SinkStore) -> bool:
        """One turn of the loop; False when the runner is to end."""
        if not self._connected:
            self._set(state="connecting")
            try:
                self.sink.connect(self.settings.connect_timeout_s)
            except SinkUnavailable as exc:
                return self._pause(Retry(str(exc), reconnect=True))
            self._connected = True
            self._set(state="up", connected=True)
            self._ok_log(f"sink {self.name}: connected to {self.sink.describe()}")
        now = self._clock()
        if now >= self._next_redrive and not self._current:
            self._next_redrive = now + REDRIVE_EVERY_S
            if store.redrive_requested(1):
                return self._redrive(store)
        if not self._current:
            self._wake.clear()
            rows = store.pending(self._cursor, self._read_ahead)
            self._current, self._end_rowid, wait_s = self._select(rows, self._cursor, store)
            if not self._current:
                if self._end_rowid > self._cursor:  # only rows this sink does not take
                    store.commit(self._end_rowid)
                    self._cursor = self._end_rowid
                    self._set(cursor=self._cursor, depth=store.depth(self._cursor))
                    return True
                if self._draining() and wait_s is None:
                    return False  # nothing left to send
                # nothing waits (or only held batch-class events): whatever failed before is not a "down" sink
                self._set(state="idle", depth=store.depth(self._cursor), failures_in_a_row=0,
                          failing_since_ns=None, oldest_age_s=self._age(store.oldest_captured(self._cursor)))
                self._wake.wait(IDLE_POLL_S if wait_s is None else min(wait_s, IDLE_POLL_S))
                return True
        current = self._current
        outcome = self._checked(self._send(current), len(current))
        done = outcome.done
        if done:
            upto = self._end_rowid if done == len(current) else current[done].rowid - 1
            parked = [(current[p.index], self._masked(p)) for p in outcome.parked]
            store.commit(upto, parked)
            self._cursor = upto
            self._add(delivered=done - len(parked), duplicates=outcome.duplicates, parked=len(parked),
                      dead_letters=len(parked))
            self._set(cursor=upto, depth=store.depth(upto), last_delivery_ns=time.time_ns(),
                      state="up", failures_in_a_row=0, failing_since_ns=None)
            for ev, p in parked:
                self._fail_log("parked", f"sink {self.name}: {ev.key} ({ev.type}) parked as a dead letter: "
                                         f"{p.reason}", force=True)
            self._current = current[done:]
        if outcome.retry is None:
            self._backoff.reset()
            return True
        if outcome.retry.reconnect:
            self._close_sink()
            self._connected = False
        return self._pause(outcome.retry)

    def _checked(self, outcome: Outcome, n: int) -> Outcome:
        """A sink that breaks the contract (done past the batch; less than all without a Retry) is retried with
        a reconnect instead of spinning or ending the thread."""
        if outcome.done > n or (outcome.done < n and outcome.retry is None):
            return Outcome(0, retry=Retry(f"the {self.settings.kind} sink returned an invalid outcome "
                                          f"(done={outcome.done} of {n}, no retry)", reconnect=True))
        return outcome

    def _masked(self, p: Parked) -> Parked:
        """A dead letter's reason and response with every secret masked: a receiver may echo our headers."""
        secrets = self.sink.context.secrets
        response = p.response
        for secret in secrets:
            if secret:
                response = response.replace(secret.encode(), b"***")
        return Parked(p.index, p.status, mask(p.reason, secrets), response)

    def _report_pruned_gap(self, store: SinkStore, cursor: int) -> None:
        """A sink that comes back under an old name resumes at its old cursor; rows pruned meanwhile are gone."""
        first = store.first_rowid()
        if cursor and first is not None and first > cursor + 1:
            missed = first - cursor - 1
            self._log(f"sink {self.name}: {missed} events were pruned while this sink was not configured; it "
                      f"resumes with the oldest event still in the outbox (row {first})")
            self._set(pruned_before_start=missed)

    # ---------------------------------------------------------------- pieces

    def _select(self, rows: list[PendingRow], cursor: int, store: SinkStore
                ) -> tuple[list[Outgoing], int, float | None]:
        """The next batch from ``rows``: (events to send, cursor after them, seconds to wait when held)."""
        wanted: list[Outgoing] = []
        end = cursor
        realtime = False
        oldest_batch: int | None = None
        settings, classes = self.settings, self.classes
        skipped = 0
        for row in rows:
            ev = _outgoing(row, classes)
            if ev is None:
                if wanted:  # send what comes before it first; the bad row is dealt with on the next turn
                    break
                self._park_undecodable(row, store)
                return [], row.rowid, None
            if not settings.wants(ev.type, ev.cls):
                end = row.rowid
                skipped += 1
                continue
            wanted.append(ev)
            end = row.rowid
            if ev.cls == REALTIME:
                realtime = True
            elif oldest_batch is None:
                oldest_batch = row.captured
            if len(wanted) >= settings.max_batch:
                break
        if not wanted:
            return [], end, None
        if realtime or self._draining():
            return wanted, end, None
        # only batch-class events: hold them until enough are pending or the oldest is old enough
        age = self._age(oldest_batch)
        if len(wanted) >= min(settings.batch_max_events, settings.max_batch) or age >= settings.batch_max_age_s:
            return wanted, end, None
        if len(rows) == self._read_ahead:  # more rows than one look: the backlog is large, send
            return wanted, end, None
        return [], cursor if not skipped else _last_skipped_before(rows, wanted[0].rowid, cursor), \
            max(0.0, settings.batch_max_age_s - age)

    def _send(self, batch: list[Outgoing]) -> Outcome:
        t0 = time.perf_counter()
        try:
            outcome = self.sink.send(batch)
        except SinkUnavailable as exc:
            outcome = Outcome(0, retry=Retry(str(exc), reconnect=True))
        except Exception as exc:  # a sink bug: retry after a reconnect rather than lose the thread
            # only the exception's type: its text may hold anything the sink had in hand (a header, a token)
            outcome = Outcome(0, retry=Retry(f"internal error in the {self.settings.kind} sink: "
                                             f"{type(exc).__name__}", reconnect=True))
        dt = time.perf_counter() - t0
        i = 0
        while i < len(SEND_BUCKETS) and dt > SEND_BUCKETS[i]:
            i += 1
        with self._lock:
            self._send_buckets[i] += 1
            self._s["sends"] += 1
            self._s["send_seconds_sum"] += dt
        return outcome

    def _pause(self, retry: Retry) -> bool:
        """Record a failure and wait before the next attempt; False when the runner must end instead."""
        reason = mask(retry.reason, self.sink.context.secrets)
        # Retry-After is a lower bound, never shortened; the backoff keeps growing under it, so a storm of
        # "Retry-After: 0" still backs off
        backoff = self._backoff.next()
        wait = backoff if retry.after_s is None else max(retry.after_s, backoff)
        with self._lock:
            self._s["retries"] += 1
            if not self._s["failures_in_a_row"]:
                self._s["failing_since_ns"] = time.time_ns()
            self._s["failures_in_a_row"] += 1
            self._s.update(state="retrying", connected=self._s["connected"] and not retry.reconnect,
                           last_error=reason, last_error_ns=time.time_ns())
            if retry.reconnect:
                self._s["reconnects"] += 1
        if self._store is not None:
            self._set(depth=self._store.depth(self._s["cursor"]),
                      oldest_age_s=self._age(self._store.oldest_captured(self._s["cursor"])))
        self._fail_log(reason, f"sink {self.name}: {reason}; trying again in {wait:.1f} s")
        self._next_attempt = self._clock() + wait
        try:
            # Retry-After is honoured exactly: only stopping cuts the wait short, never a wake-up
            end = self._next_attempt
            while True:
                left = end - self._clock()
                if left <= 0:
                    return True
                if self._stop.wait(left if self._drain_until is None else min(left, 0.05)):
                    return False
                if self._draining() and self._drain_over():
                    return False
        finally:
            self._next_attempt = None

    def _park_undecodable(self, row: PendingRow, store: SinkStore) -> None:
        """An outbox row whose envelope no longer decodes (bit rot past quick_check) is never sent and never
        silent: it becomes a dead letter (it outlives retention and shows in ``tillwire outbox``) and the cursor
        moves past it, with the rows before it that this sink does not take."""
        ev = Outgoing(row.rowid, row.src, row.seq, UNDECODABLE, 0, row.envelope, REALTIME)
        store.commit(row.rowid, [(ev, Parked(0, None, "the stored envelope does not decode (outbox damage)"))])
        self._cursor = row.rowid
        self._add(undecodable=1, parked=1, dead_letters=1)
        self._fail_log("undecodable", f"sink {self.name}: outbox row {row.rowid} ({row.src}:{row.seq}) does not "
                                      f"decode as an envelope; parked as a dead letter, not sent", force=True)

    def _redrive(self, store: SinkStore) -> bool:
        """Send the dead letters flagged for re-delivery, one at a time; False when the runner is to end."""
        for dl in store.redrive_requested(self.settings.max_batch):
            if dl.type == UNDECODABLE:
                store.redriven([], [(dl.id, Parked(0, None, "not re-driven: the stored envelope does not "
                                                   "decode (outbox damage)"))])
                continue
            ev = Outgoing(0, dl.src, dl.seq, dl.type, dl.ts, dl.envelope, self.classes(dl.type))
            outcome = self._checked(self._send([ev]), 1)
            if outcome.done:
                if outcome.parked:
                    store.redriven([], [(dl.id, self._masked(outcome.parked[0]))])
                    self._fail_log("parked", f"sink {self.name}: re-driven {dl.key} refused again: "
                                             f"{outcome.parked[0].reason}", force=True)
                else:
                    store.redriven([dl.id], [])
                    self._add(redriven=1, delivered=1, dead_letters=-1)
                    self._set(failures_in_a_row=0, failing_since_ns=None, last_delivery_ns=time.time_ns())
                continue
            if outcome.retry.reconnect:
                self._close_sink()
                self._connected = False
            return self._pause(outcome.retry)
        self._set(dead_letters=store.dead_letter_count())
        return True

    def _close_sink(self) -> None:
        try:
            self.sink.close()
        except Exception:  # close never raises by contract; a sink bug must not end delivery
            pass
        self._set(connected=False)

    def _age(self, captured_ns: int | None) -> float:
        return 0.0 if captured_ns is None else max(0.0, (time.time_ns() - captured_ns) / 1e9)

    def _fail_log(self, key: str, line: str, force: bool = False) -> None:
        now = self._clock()
        last = self._last_logged.get(key)
        if force or last is None or now - last >= LOG_REPEAT_S:
            self._last_logged[key] = now
            self._log(mask(line, self.sink.context.secrets))

    def _ok_log(self, line: str) -> None:
        if self._last_logged:  # a recovery after failures is worth a line; a quiet start is not
            self._last_logged.clear()
            self._log(mask(line, self.sink.context.secrets))


def _last_skipped_before(rows: list[PendingRow], first_wanted: int, cursor: int) -> int:
    """The cursor may move past skipped rows that come before the first held event."""
    end = cursor
    for row in rows:
        if row.rowid >= first_wanted:
            break
        end = row.rowid
    return end


def _outgoing(row: PendingRow, classes: DeliveryClasses) -> Outgoing | None:
    try:
        env = msgpack.unpackb(row.envelope, raw=False, strict_map_key=False)
        type_, ts = env["type"], int(env["ts"])
    except Exception:  # an envelope that does not decode (bit rot past quick_check): never sent, never silent
        return None
    return Outgoing(row.rowid, row.src, row.seq, type_, ts, row.envelope, classes(type_))


__all__ = ["SinkRunner", "mask", "BATCH", "REALTIME"]

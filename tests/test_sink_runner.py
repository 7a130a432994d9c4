"""The delivery runner (bridge/sinks/runner.py) over a real outbox file.

Most tests use the real file sink. Where a test needs a destination that answers in a particular way (takes 3 of
5, says Retry-After, refuses one event for good), ``ScriptedSink`` plays that destination: it is the runner that
is under test there, and the real sinks have their own end-to-end tests against real brokers.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from bridge.outbox import Outbox
from bridge.sinks.base import Outcome, Outgoing, Parked, Retry, Sink, SinkContext, SinkUnavailable
from bridge.sinks.classes import DeliveryClasses
from bridge.sinks.file import FileOptions, FileSink
from bridge.sinks.runner import SinkRunner
from bridge.sinks.settings import SinkSettings
from bridge.sinks.store import dead_letters, connect, request_redrive

CTX = SinkContext(site="s1", till="t1", source_prefix="pos://s1/t1/", secrets=("hunter2-secret",))


def settings(name="s", kind="file", **kw) -> SinkSettings:
    base = dict(name=name, kind=kind, classes=("realtime", "batch"), types=None, max_batch=100,
                batch_max_events=500, batch_max_age_s=60.0, backoff_base_s=0.01, backoff_cap_s=0.05,
                connect_timeout_s=1.0)
    base.update(kw)
    return SinkSettings(**base)


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class ScriptedSink(Sink):
    """A destination that answers ``send`` from a script of callables ``batch -> Outcome`` (then: all done)."""

    kind = "scripted"

    @classmethod
    def parse_options(cls, t, base, env):
        return None

    def __init__(self, script=(), connect_failures=0):
        super().__init__("scripted", None, CTX)
        self.script = list(script)
        self.connect_failures = connect_failures
        self.sent: list[tuple[float, list[Outgoing]]] = []
        self.connects = 0
        self.lock = threading.Lock()

    def describe(self):
        return "scripted destination"

    def connect(self, timeout_s):
        self.connects += 1
        if self.connect_failures:
            self.connect_failures -= 1
            raise SinkUnavailable("refused by hunter2-secret host")

    def send(self, batch):
        with self.lock:
            self.sent.append((time.monotonic(), list(batch)))
            step = self.script.pop(0) if self.script else None
        return step(batch) if step else Outcome(len(batch))

    def close(self):
        pass

    def keys(self):
        with self.lock:
            return [ev.key for _, batch in self.sent for ev in batch]


def fill(box: Outbox, n: int, srcs=("pos://s1/t1/scanner",), type_="scanner.data") -> None:
    box.append([(srcs[i % len(srcs)], type_, {"label": str(i)}, 1_700_000_000_000_000_000 + i) for i in range(n)])


@pytest.fixture
def box(tmp_path):
    b = Outbox.open(tmp_path / "o.sqlite", sinks=("s",))
    yield b
    b.close()


def run(box, sink, st=None, classes=None) -> SinkRunner:
    r = SinkRunner(box.path, st or settings(), sink, classes or DeliveryClasses(), log=lambda line: None)
    r.start()
    return r


def caught_up(r: SinkRunner, box: Outbox) -> bool:
    """The runner's durable cursor has reached the last captured row."""
    top = box._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0]
    return r.stats()["cursor"] == top and box.pending("s", 1) == []


def stop(r: SinkRunner, drain=0.0):
    r.stop(drain)
    assert r.join(10), "runner did not stop"


def test_file_sink_gets_every_event_in_seq_order_per_source(box, tmp_path):
    srcs = ("pos://s1/t1/a", "pos://s1/t1/b", "pos://s1/t1/c")
    fill(box, 1000, srcs)
    sink = FileSink("s", FileOptions(tmp_path / "files", "jsonl", "events", 1 << 20, 0, 0), CTX)
    r = run(box, sink)
    wait_for(lambda: caught_up(r, box) and r.stats()["delivered"] == 1000, what="delivery")
    stop(r)
    lines = [json.loads(line) for f in sorted((tmp_path / "files").iterdir()) for line in f.read_text().splitlines()]
    assert len(lines) == 1000
    for src in srcs:
        seqs = [ce["seq"] for ce in lines if ce["source"] == src]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) and seqs[0] == 1
    first = lines[0]
    assert first["specversion"] == "1.0" and first["id"] == "1" and first["type"] == "scanner.data"
    assert first["data"]["src"] == first["source"] and first["data"]["data"] == {"label": "0"}
    assert box.pending("s", 1) == []  # the cursor is durable in the file


def test_partial_batch_retried_as_is_and_not_before_retry_after(box):
    fill(box, 5)
    sink = ScriptedSink([lambda b: Outcome(3, retry=Retry("HTTP 429", after_s=0.4))])
    r = run(box, sink)
    wait_for(lambda: r.stats()["delivered"] == 5, what="delivery")
    stop(r)
    (t1, first), (t2, second) = sink.sent[:2]
    assert [e.seq for e in first] == [1, 2, 3, 4, 5]
    assert [e.seq for e in second] == [4, 5]          # the rest of the same batch, nothing added
    assert t2 - t1 >= 0.4                             # no request before Retry-After elapsed
    st = r.stats()
    assert st["retries"] == 1 and st["last_error"] == "HTTP 429"


def test_backoff_grows_with_full_jitter_and_is_capped(box):
    fill(box, 1)
    fails = [lambda b: Outcome(0, retry=Retry("HTTP 500"))] * 8
    sink = ScriptedSink(fails)
    r = run(box, sink, settings(backoff_base_s=0.02, backoff_cap_s=0.08))
    wait_for(lambda: r.stats()["delivered"] == 1, what="delivery after 8 failures")
    stop(r)
    times = [t for t, _ in sink.sent]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) == 8
    assert max(gaps) < 0.08 + 0.05                    # capped (plus scheduling slack)
    assert all(g >= 0 for g in gaps)


def test_refused_event_is_parked_with_response_and_redrive_sends_it_again(box):
    fill(box, 3)
    refuse = lambda b: Outcome(len(b), parked=(Parked(1, 422, "HTTP 422 Unprocessable Entity", b'{"error":"bad sku"}'),))
    sink = ScriptedSink([refuse])
    r = run(box, sink)
    wait_for(lambda: r.stats()["parked"] == 1 and caught_up(r, box), what="parking")
    db = connect(box.path)
    letters = dead_letters(db)
    assert [(d.sink, d.seq, d.status, d.response) for d in letters] == [("s", 2, 422, b'{"error":"bad sku"}')]
    assert r.stats()["delivered"] == 2
    assert request_redrive(db, "s", None) == 1
    wait_for(lambda: dead_letters(db) == [], what="redrive")
    db.close()
    stop(r)
    redriven = sink.sent[-1][1]
    assert [(e.rowid, e.seq) for e in redriven] == [(0, 2)]
    assert r.stats()["redriven"] == 1


def test_batch_class_waits_for_size_or_age_and_realtime_carries_it(box):
    src = "pos://s1/t1/printer"
    box.append([(src, "printer.line", {"text": str(i)}, i) for i in range(3)])
    sink = ScriptedSink()
    r = run(box, sink, settings(batch_max_events=10, batch_max_age_s=30))
    time.sleep(0.3)
    assert sink.sent == []                            # three batch-class events: held
    box.append([(src, "payment.result", {"approved": True}, 9)])
    r.wake()
    wait_for(lambda: r.stats()["delivered"] == 4, what="flush by a real-time event")
    assert [e.type for e in sink.sent[0][1]] == ["printer.line"] * 3 + ["payment.result"]
    box.append([(src, "printer.line", {"text": "x"}, 10)])
    r.wake()
    time.sleep(0.2)
    assert r.stats()["delivered"] == 4                # held again
    stop(r, drain=2.0)                                # stopping flushes what is held
    assert r.stats()["delivered"] == 5


def test_batch_age_releases_held_events(box):
    box.append([("pos://s1/t1/printer", "printer.line", {"text": "a"}, 1)])
    sink = ScriptedSink()
    r = run(box, sink, settings(batch_max_age_s=0.3))
    wait_for(lambda: r.stats()["delivered"] == 1, timeout=5, what="age flush")
    stop(r)


def test_types_filter_skips_without_sending_and_moves_the_cursor(box):
    src = "pos://s1/t1/x"
    box.append([(src, "device.status", {"state": "open"}, 1), (src, "scanner.data", {"label": "1"}, 2),
                (src, "device.status", {"state": "closed"}, 3)])
    sink = ScriptedSink()
    r = run(box, sink, settings(types=("scanner.*",)))
    wait_for(lambda: caught_up(r, box), what="cursor past skipped rows")
    stop(r)
    assert sink.keys() == [f"{src}:2"]


def test_classes_filter(box):
    src = "pos://s1/t1/x"
    box.append([(src, "payment.eod", {"count": 1}, 1), (src, "payment.result", {"approved": True}, 2)])
    sink = ScriptedSink()
    r = run(box, sink, settings(classes=("batch",), batch_max_age_s=0))
    wait_for(lambda: caught_up(r, box), what="cursor")
    stop(r)
    assert sink.keys() == [f"{src}:1"]


def test_unavailable_destination_is_retried_and_secrets_are_masked(box):
    fill(box, 2)
    sink = ScriptedSink(connect_failures=3)
    logged = []
    r = SinkRunner(box.path, settings(), sink, DeliveryClasses(), log=logged.append)
    r.start()
    wait_for(lambda: r.stats()["delivered"] == 2, what="delivery after reconnects")
    stop(r)
    st = r.stats()
    assert sink.connects == 4 and st["reconnects"] == 3
    assert "hunter2-secret" not in json.dumps(st) and not any("hunter2-secret" in line for line in logged)
    assert "***" in st["last_error"]


def test_a_sink_exception_is_retried_not_fatal(box):
    fill(box, 1)

    def boom(batch):
        raise RuntimeError("bug")

    sink = ScriptedSink([boom])
    r = run(box, sink)
    wait_for(lambda: r.stats()["delivered"] == 1, what="delivery after a sink bug")
    stop(r)
    assert "internal error" in r.stats()["last_error"]


def test_restart_resumes_from_the_durable_cursor(box):
    fill(box, 10)
    sink = ScriptedSink([lambda b: Outcome(4, retry=Retry("cut", reconnect=True))] + [
        lambda b: Outcome(0, retry=Retry("down", after_s=30))])
    r = run(box, sink)
    wait_for(lambda: r.stats()["cursor"] == 4, what="first four acked")
    stop(r)                                           # interrupts the 30 s wait
    sink2 = ScriptedSink()
    r2 = run(box, sink2)
    wait_for(lambda: caught_up(r2, box), what="the rest")
    stop(r2)
    assert [e.seq for _, b in sink2.sent for e in b] == [5, 6, 7, 8, 9, 10]


def test_undecodable_row_is_reported_not_sent(box):
    fill(box, 2)
    box._db.execute("UPDATE events SET envelope = x'c1' WHERE seq = 1")
    logged = []
    sink = ScriptedSink()
    r = SinkRunner(box.path, settings(), sink, DeliveryClasses(), log=logged.append)
    r.start()
    wait_for(lambda: caught_up(r, box), what="cursor")
    stop(r)
    assert sink.keys() == ["pos://s1/t1/scanner:2"]
    assert r.stats()["undecodable"] == 1 and any("does not decode" in line for line in logged)


def test_delivery_classes_table():
    c = DeliveryClasses()
    assert c("payment.result") == "realtime" and c("payment.eod") == "batch"
    assert c("printer.line") == "batch" and c("printer.status") == "realtime"
    assert c("link.ack") == "batch" and c("never.heard.of") == "realtime"
    c2 = DeliveryClasses({"printer.*": "realtime", "*": "batch"})
    assert c2("printer.line") == "realtime" and c2("never.heard.of") == "batch"
    assert c2("payment.result") == "realtime"          # exact defaults stay more specific than "*"


def test_outbox_v1_is_upgraded_in_place(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with Outbox.open(path, sinks=("s",)) as b:
        fill(b, 3)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE dead_letters")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with Outbox.open(path, sinks=("s",)) as b:
        assert b._db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert b.last_seq("pos://s1/t1/scanner") == 3 and len(b.pending("s", 10)) == 3
        assert b._db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0


def test_file_sink_cuts_a_torn_tail_and_rotates(tmp_path, box):
    d = tmp_path / "files"
    d.mkdir()
    torn = d / "events-20260101T000000Z-000007.jsonl"
    torn.write_bytes(b'{"id":"1"}\n{"id":"2","tor')
    fill(box, 50)
    sink = FileSink("s", FileOptions(d, "jsonl", "events", 2000, 0, 0), CTX)
    r = run(box, sink, settings(max_batch=5))
    wait_for(lambda: caught_up(r, box), what="delivery")
    stop(r)
    assert torn.read_bytes() == b'{"id":"1"}\n'
    files = sorted(d.iterdir())
    assert len(files) > 2 and files[1].name.endswith("-000008.jsonl")   # numbering continues
    got = [json.loads(line)["seq"] for f in files[1:] for line in f.read_text().splitlines()]
    assert got == list(range(1, 51))


def test_file_sink_msgpack_format(tmp_path, box):
    import msgpack

    fill(box, 3)
    sink = FileSink("s", FileOptions(tmp_path / "f", "msgpack", "ev", 1 << 20, 0, 0), CTX)
    r = run(box, sink)
    wait_for(lambda: caught_up(r, box), what="delivery")
    stop(r)
    (f,) = (tmp_path / "f").iterdir()
    objs = list(msgpack.Unpacker(open(f, "rb"), raw=False))
    assert [o["seq"] for o in objs] == [1, 2, 3] and objs[0]["data"]["data"] == {"label": "0"}


def test_a_locked_outbox_pauses_the_runner_and_it_goes_on_afterwards(box, monkeypatch):
    import sqlite3

    import bridge.sinks.store as store_mod

    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_MS", 100)
    fill(box, 3)
    locker = sqlite3.connect(box.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")          # e.g. a long prune after an outage holds the write lock
    sink = ScriptedSink()
    r = run(box, sink)
    wait_for(lambda: r.stats()["retries"] >= 1, what="the runner noticing the lock")
    assert r.alive and r.stats()["last_error"].startswith("outbox: database is locked")
    assert r.stats()["failing_since_ns"] is not None   # so the bridge's sink_down alert can fire
    locker.execute("ROLLBACK")
    locker.close()
    wait_for(lambda: caught_up(r, box), what="delivery after the lock")
    stop(r)
    assert [e.seq for e in sink.sent[-1][1]] == [1, 2, 3]


def test_a_sink_breaking_the_outcome_contract_is_retried_with_backoff_not_spun(box):
    fill(box, 2)
    sink = ScriptedSink([lambda b: Outcome(0)] * 3 + [lambda b: Outcome(len(b) + 1)])
    r = run(box, sink, settings(backoff_base_s=0.02, backoff_cap_s=0.02))
    wait_for(lambda: caught_up(r, box), what="delivery after invalid outcomes")
    stop(r)
    assert len(sink.sent) == 5 and r.stats()["retries"] == 4 and r.alive is False
    assert "invalid outcome" in r.stats()["last_error"]


def test_dead_letters_are_stored_with_secrets_masked(box):
    fill(box, 1)
    echo = lambda b: Outcome(1, parked=(Parked(0, 400, "HTTP 400 bad token hunter2-secret",
                                               b'{"echo": "Authorization: Bearer hunter2-secret"}'),))
    r = run(box, ScriptedSink([echo]))
    wait_for(lambda: caught_up(r, box), what="parking")
    stop(r)
    db = connect(box.path)
    (d,) = dead_letters(db)
    db.close()
    assert d.reason == "HTTP 400 bad token ***" and d.response == b'{"echo": "Authorization: Bearer ***"}'


def test_a_recovered_idle_sink_is_not_reported_down(box):
    sink = ScriptedSink(connect_failures=1)
    r = run(box, sink)
    wait_for(lambda: r.stats()["state"] == "idle", what="idle after one failed connect")
    st = r.stats()
    stop(r)
    assert st["retries"] == 1 and st["failing_since_ns"] is None and st["failures_in_a_row"] == 0


def test_one_sink_down_does_not_hold_back_another_but_holds_back_pruning(tmp_path):
    box = Outbox.open(tmp_path / "o.sqlite", sinks=("up", "down"))
    fill(box, 20)
    up = ScriptedSink()
    down = ScriptedSink(connect_failures=10_000)
    r1 = run(box, up, settings(name="up"))
    r2 = run(box, down, settings(name="down", backoff_cap_s=0.05))
    wait_for(lambda: r1.stats()["delivered"] == 20, what="the healthy sink")
    wait_for(lambda: r2.stats()["retries"] >= 2, what="the down sink failing")
    assert r2.stats()["delivered"] == 0 and r2.stats()["depth"] == 20
    assert box.prune() == 0                         # the down sink still needs every row
    stop(r1)
    stop(r2)
    assert box.depth("down") == 20
    box.close()


def test_a_re_added_sink_reports_the_events_pruned_meanwhile(tmp_path):
    path = tmp_path / "o.sqlite"
    with Outbox.open(path, sinks=("s",)) as b:
        fill(b, 5)
        b.ack("s", 2)
    with Outbox.open(path, sinks=()) as b:          # the sink is removed from the config; retention 0 prunes
        b.prune()
        fill(b, 2)
    box = Outbox.open(path, sinks=("s",))
    logged = []
    sink = ScriptedSink()
    r = SinkRunner(box.path, settings(), sink, DeliveryClasses(), log=logged.append)
    r.start()
    wait_for(lambda: caught_up(r, box), what="delivery")
    stop(r)
    box.close()
    assert [e.seq for _, b in sink.sent for e in b] == [6, 7]
    assert r.stats()["pruned_before_start"] == 3
    assert any("3 events were pruned while this sink was not configured" in line for line in logged)


def test_dead_letters_respect_the_outbox_size_limit(box):
    import sqlite3

    from bridge.sinks.store import SinkStore

    fill(box, 1)
    row = box.pending("s", 1)[0]
    used = box.used_bytes()
    store = SinkStore(box.path, "s", max_bytes=used)
    ev = Outgoing(row.rowid, row.src, row.seq, "scanner.data", 1, row.envelope, "realtime")
    with pytest.raises(sqlite3.OperationalError, match="full"):
        store.commit(row.rowid, [(ev, Parked(0, 400, "HTTP 400", b"<html>" + b"x" * 100_000))])
    assert store.acked() == 0                       # nothing moved: the runner pauses and tries again
    store.close()

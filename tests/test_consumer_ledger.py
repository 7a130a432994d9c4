"""The consumer's de-duplication ledger and the delivery accounting, checked against a simple model."""

from __future__ import annotations

import sqlite3
import sys
import threading

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.consumer import Accounting, Ledger, NotAnEvent, from_msgpack

SOURCES = ("pos://s/t/scanner", "pos://s/t/printer", "pos://s/t/payment")


# ------------------------------------------------------------------------------------------------ the model

def model_gaps(seen: set[int]) -> tuple[tuple[int, int], ...]:
    """Missing seqs between 1 and the highest seen, as inclusive ranges."""
    out, start = [], None
    for seq in range(1, max(seen, default=0) + 1):
        if seq not in seen and start is None:
            start = seq
        if seq in seen and start is not None:
            out.append((start, seq - 1))
            start = None
    return tuple(out)


def model_ranges(seen: set[int]) -> tuple[tuple[int, int], ...]:
    """Runs of seen seqs above the high-water mark (the first missing seq minus one)."""
    hwm = model_hwm(seen)
    out: list[list[int]] = []
    for seq in sorted(s for s in seen if s > hwm):
        if out and out[-1][1] == seq - 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return tuple((a, b) for a, b in out)


def model_hwm(seen: set[int]) -> int:
    return next(q for q in range(1, max(seen, default=0) + 2) if q not in seen) - 1


class Model:
    """The ledger's meaning, spelt out: a set of seen seqs per source; a horizon gives up old missing seqs."""

    def __init__(self, horizon: int | None = None):
        self.seen: dict[str, set[int]] = {}
        self.horizon = horizon

    def accept(self, src: str, seq: int) -> tuple[bool, tuple, tuple]:
        s = self.seen.setdefault(src, set())
        new = seq not in s
        s.add(seq)
        given_up = self._horizon(src) if new else ()
        return new, model_gaps(s), given_up

    def skip(self, src: str, first: int, last: int) -> None:
        self.seen.setdefault(src, set()).update(range(first, last + 1))
        self._horizon(src)

    def _horizon(self, src: str) -> tuple:
        s = self.seen[src]
        if self.horizon is None:
            return ()
        cutoff = max(s) - self.horizon - 1
        given_up = tuple((a, min(b, cutoff)) for a, b in model_gaps(s) if a <= cutoff)
        s.update(range(1, cutoff + 1))
        return given_up


@st.composite
def operations(draw):
    """A delivery history (see ``histories``) with ``skip`` declarations mixed in."""
    _, arrivals = draw(histories())
    ops: list[tuple] = [("accept", src, seq) for src, seq in arrivals]
    for _ in range(draw(st.integers(0, 4))):
        first = draw(st.integers(1, 30))
        ops.insert(draw(st.integers(0, len(ops))),
                   ("skip", draw(st.sampled_from(SOURCES)), first, first + draw(st.integers(0, 6))))
    return ops


def run(ledger: Ledger, model: Model, op: tuple) -> None:
    """Apply one operation to both and check that they agree."""
    if op[0] == "accept":
        verdict = ledger.accept(op[1], op[2])
        assert (verdict.new, verdict.gaps, verdict.given_up) == model.accept(op[1], op[2])
    else:
        ledger.skip(*op[1:])
        model.skip(*op[1:])
    src = op[1]
    seen = model.seen[src]
    assert ledger.ranges(src) == model_ranges(seen)
    assert ledger.high_water(src) == model_hwm(seen)
    assert ledger.highest(src) == max(seen)


@st.composite
def histories(draw):
    """Produced events per source, and a delivery history: a shuffle of some of them, with re-sends."""
    produced = {src: draw(st.integers(0, 25)) for src in draw(st.sets(st.sampled_from(SOURCES), min_size=1))}
    keys = [(src, seq) for src, n in produced.items() for seq in range(1, n + 1)]
    kept = [k for k in keys if draw(st.integers(0, 9)) > 0] if keys else []   # ~10 % lost
    resent = draw(st.lists(st.sampled_from(kept), max_size=15)) if kept else []
    arrivals = draw(st.permutations(kept + resent))
    if draw(st.booleans()):  # often mostly in order, as a real bus delivers
        arrivals = sorted(arrivals, key=lambda k: (k[1], k[0])) if draw(st.booleans()) else arrivals
    return produced, list(arrivals)


# ------------------------------------------------------------------------------------------------ the ledger

@given(histories())
def test_ledger_agrees_with_a_set_of_seen_keys(history):
    _, arrivals = history
    ledger = Ledger.memory()
    seen: dict[str, set[int]] = {}
    for src, seq in arrivals:
        verdict = ledger.accept(src, seq)
        assert verdict.new == (seq not in seen.setdefault(src, set()))
        seen[src].add(seq)
        assert verdict.gaps == model_gaps(seen[src])
    assert ledger.gaps() == {src: g for src, s in seen.items() if (g := model_gaps(s))}
    for src, s in seen.items():
        hwm = next(q for q in range(1, max(s) + 2) if q not in s) - 1
        assert ledger.high_water(src) == hwm
        assert ledger.highest(src) == max(s)


@given(operations(), st.one_of(st.none(), st.integers(0, 8)))
def test_ranges_skip_and_horizon_agree_with_the_model(ops, horizon):
    ledger, model = Ledger.memory(horizon=horizon), Model(horizon)
    for op in ops:
        run(ledger, model, op)
    assert ledger.gaps() == {src: g for src, s in model.seen.items() if (g := model_gaps(s))}
    for src, s in model.seen.items():
        assert all(ledger.seen(src, seq) == (seq in s) for seq in range(1, max(s) + 3))


@given(operations(), st.integers(0, 60))
def test_a_file_ledger_with_skips_restarted_anywhere_agrees_with_the_model(tmp_path_factory, ops, cut):
    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite"
    model = Model()
    ledger = Ledger.open(str(path))
    for i, op in enumerate(ops):
        if i == cut:
            ledger.close()
            ledger = Ledger.open(str(path))
        run(ledger, model, op)
    ledger.close()
    db = sqlite3.connect(path)   # what is stored is one row per source and one per range, nothing per event
    stored = dict(db.execute("SELECT src, count(*) FROM tillwire_ledger_ranges GROUP BY src").fetchall())
    db.close()
    assert stored == {src: n for src, s in model.seen.items() if (n := len(model_ranges(s)))}


@given(histories(), st.integers(0, 60))
def test_a_file_ledger_restarted_anywhere_gives_the_same_verdicts(tmp_path_factory, history, cut):
    _, arrivals = history
    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite"
    reference = Ledger.memory()
    expected = [reference.accept(src, seq) for src, seq in arrivals]
    ledger = Ledger.open(str(path))
    got = []
    for i, (src, seq) in enumerate(arrivals):
        if i == cut:
            ledger.close()
            ledger = Ledger.open(str(path))
        got.append(ledger.accept(src, seq))
    ledger.close()
    assert got == expected
    with Ledger.open(str(path)) as reopened:
        assert reopened.gaps() == reference.gaps()


def test_in_order_delivery_keeps_one_row_per_source(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(str(path)) as ledger:
        for seq in range(1, 1001):
            assert ledger.accept(SOURCES[0], seq).new
    db = sqlite3.connect(path)
    assert db.execute("SELECT src, hwm FROM tillwire_ledger_sources").fetchall() == [(SOURCES[0], 1000)]
    assert db.execute("SELECT count(*) FROM tillwire_ledger_ranges").fetchone()[0] == 0
    db.close()


def test_a_hole_costs_one_range_however_many_events_follow(tmp_path):
    """One missing seq (a filtered-out event, a parked dead letter) and 100,000 events after it: the ledger
    stores one range, not one row per event, and closing the hole leaves one row for the source."""
    path = tmp_path / "ledger.sqlite"
    src = SOURCES[0]
    with Ledger.open(str(path)) as ledger:
        with ledger.transaction():
            assert ledger.accept(src, 1).new
            for seq in range(3, 100_003):
                verdict = ledger.accept(src, seq)
            assert verdict.new and verdict.gaps == ((2, 2),)
        assert ledger.ranges(src) == ((3, 100_002),)
        assert ledger.gaps() == {src: ((2, 2),)}
        db = sqlite3.connect(path)
        assert db.execute("SELECT src, first, last FROM tillwire_ledger_ranges").fetchall() == [(src, 3, 100_002)]
        ledger.skip(src, 2, 2)          # the integrator knows seq 2 will never come
        assert ledger.high_water(src) == 100_002 and ledger.ranges(src) == () and ledger.gaps() == {}
        assert ledger.accept(src, 2).duplicate
        assert db.execute("SELECT count(*) FROM tillwire_ledger_ranges").fetchone()[0] == 0
        assert db.execute("SELECT src, hwm FROM tillwire_ledger_sources").fetchall() == [(src, 100_002)]
        db.close()


def test_a_filtered_consumer_gives_up_gaps_beyond_its_horizon():
    """A sink with ``types`` delivers every third seq of a source: without a horizon each arrival leaves a
    permanent gap (one range each); with ``horizon=0`` (the sink delivers in order: whatever is below the highest
    seq seen will not come) the source stays one row."""
    src = SOURCES[1]
    unfiltered = Ledger.memory()
    filtered = Ledger.memory(horizon=0)
    for seq in range(3, 3001, 3):
        unfiltered.accept(src, seq)
        verdict = filtered.accept(src, seq)
        assert verdict.new and verdict.gaps == () and verdict.given_up == ((seq - 2, seq - 1),)
    assert len(unfiltered.ranges(src)) == 1000 and len(unfiltered.gaps(src)[src]) == 1000
    assert filtered.ranges(src) == () and filtered.high_water(src) == 3000
    assert filtered.accept(src, 1000).duplicate      # given up: a late arrival is not processed


def test_a_horizon_keeps_recent_gaps_open_and_is_set_per_source():
    src, other = SOURCES[0], SOURCES[2]
    ledger = Ledger.memory(horizon=100)
    ledger.set_horizon(other, None)
    for s in (src, other):
        ledger.accept(s, 1)
        ledger.accept(s, 3)
        ledger.accept(s, 50)
    assert ledger.gaps() == {src: ((2, 2), (4, 49)), other: ((2, 2), (4, 49))}
    assert ledger.accept(src, 2).new                 # within the horizon: still expected
    assert ledger.accept(src, 120).given_up == ((4, 19),)
    assert ledger.gaps(src) == {src: ((20, 49), (51, 119))}
    ledger.accept(other, 120)
    assert ledger.gaps(other) == {other: ((2, 2), (4, 49), (51, 119))}
    with pytest.raises(ValueError):
        ledger.set_horizon(src, -1)


def test_a_ledger_in_the_first_layout_is_converted_to_ranges(tmp_path):
    """Files written before ranges (one row per seq above hwm) open with the same state."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE tillwire_ledger_sources (src TEXT PRIMARY KEY, hwm INTEGER NOT NULL);
        CREATE TABLE tillwire_ledger_above (src TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (src, seq))
            WITHOUT ROWID;
        INSERT INTO tillwire_ledger_sources VALUES ('a', 2);
        INSERT INTO tillwire_ledger_above VALUES ('a', 4), ('a', 5), ('a', 6), ('a', 9), ('b', 3);
    """)
    db.close()
    with Ledger.open(str(path)) as ledger:
        assert ledger.ranges("a") == ((4, 6), (9, 9)) and ledger.ranges("b") == ((3, 3),)
        assert ledger.gaps() == {"a": ((3, 3), (7, 8)), "b": ((1, 2),)}
        assert ledger.accept("b", 1).new and ledger.accept("b", 2).new and ledger.high_water("b") == 3
    with Ledger.open(str(path)) as ledger:
        assert ledger.high_water("b") == 3 and ledger.gaps() == {"a": ((3, 3), (7, 8))}


def test_a_gap_opens_and_closes_when_the_missing_event_arrives():
    ledger = Ledger.memory()
    src = SOURCES[0]
    assert ledger.accept(src, 1).gaps == ()
    assert ledger.accept(src, 4).gaps == ((2, 3),)
    assert ledger.accept(src, 6).gaps == ((2, 3), (5, 5))
    assert ledger.gaps() == {src: ((2, 3), (5, 5))}
    assert ledger.accept(src, 3).gaps == ((2, 2), (5, 5))
    assert ledger.accept(src, 2).gaps == ((5, 5),)
    assert ledger.high_water(src) == 4
    assert ledger.accept(src, 5).gaps == ()
    assert ledger.high_water(src) == 6 and ledger.gaps() == {}
    assert ledger.accept(src, 4).duplicate


def test_baseline_declares_history_handled():
    ledger = Ledger.memory()
    ledger.accept(SOURCES[0], 5003)
    ledger.baseline(SOURCES[0], 5000)
    assert ledger.gaps() == {SOURCES[0]: ((5001, 5002),)}
    assert ledger.accept(SOURCES[0], 17).duplicate


def test_seq_must_be_positive():
    ledger = Ledger.memory()
    for bad in (0, -1, True, "3"):
        with pytest.raises(ValueError):
            ledger.accept(SOURCES[0], bad)
    with pytest.raises(ValueError):
        ledger.skip(SOURCES[0], 0, 3)
    with pytest.raises(ValueError):
        ledger.skip(SOURCES[0], 5, 4)
    assert ledger.sources() == []


@pytest.mark.parametrize("seq", [0, -1, "3", 2.0, True, None])
def test_a_message_without_a_positive_integer_seq_is_not_an_event(seq):
    """The decoders refuse it (``NotAnEvent``, like any other malformed message), so it never reaches
    ``Ledger.accept``."""
    body = msgpack.packb({"src": SOURCES[0], "seq": seq, "ts": 1, "type": "scan", "data": {}})
    with pytest.raises(NotAnEvent):
        from_msgpack(body)


def test_the_ledger_commits_with_the_integrators_own_write(tmp_path):
    """Exactly once in effect: the sale row and the ledger row commit together or not at all."""
    db = sqlite3.connect(tmp_path / "shop.sqlite", isolation_level=None)
    db.execute("CREATE TABLE sales (src TEXT, seq INTEGER, total INTEGER)")
    ledger = Ledger(db)

    def handle(src, seq, total, fail=False):
        with ledger.transaction() as tx:
            if ledger.accept(src, seq).new:
                tx.execute("INSERT INTO sales VALUES (?, ?, ?)", (src, seq, total))
                if fail:
                    raise RuntimeError("the consumer crashed before its commit")

    handle(SOURCES[0], 1, 250)
    with pytest.raises(RuntimeError):
        handle(SOURCES[0], 2, 990, fail=True)
    assert not ledger.seen(SOURCES[0], 2)          # rolled back with the sale
    handle(SOURCES[0], 2, 990)                     # the re-delivery is processed
    handle(SOURCES[0], 2, 990)                     # and a re-send after that is not
    handle(SOURCES[0], 1, 250)
    assert db.execute("SELECT seq, total FROM sales ORDER BY seq").fetchall() == [(1, 250), (2, 990)]
    assert Ledger(db).high_water(SOURCES[0]) == 2  # the same state read back from the shared file
    db.close()


def shop(path) -> tuple[sqlite3.Connection, Ledger]:
    """An integrator's own database (rollback journal, the SQLite default) with the ledger inside."""
    db = sqlite3.connect(path, isolation_level=None, timeout=0.05, check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS sales (src TEXT, seq INTEGER, total INTEGER)")
    return db, Ledger(db)


def handle(ledger: Ledger, src: str, seq: int, total: int) -> None:
    with ledger.transaction() as tx:
        if ledger.accept(src, seq).new:
            tx.execute("INSERT INTO sales VALUES (?, ?, ?)", (src, seq, total))


def test_a_commit_that_fails_forgets_the_events_so_the_redelivery_is_processed(tmp_path):
    """COMMIT itself fails ("database is locked": another connection holds a read lock on the integrator's
    rollback-journal database): the error reaches the caller, nothing stays open, the ledger forgets the
    event, and its re-delivery is processed and committed."""
    path = tmp_path / "shop.sqlite"
    db, ledger = shop(path)
    src = SOURCES[0]
    handle(ledger, src, 1, 250)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM sales").fetchone() == (1,)   # holds a SHARED lock until COMMIT
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        handle(ledger, src, 2, 990)
    assert not db.in_transaction                     # rolled back, not left open for the next transaction to join
    assert not ledger.seen(src, 2) and ledger.high_water(src) == 1
    reader.execute("COMMIT")
    reader.close()
    handle(ledger, src, 2, 990)                      # the re-delivery is new, and this time it commits
    handle(ledger, src, 3, 120)
    assert not db.in_transaction
    db.close()
    db, reopened = shop(path)
    assert reopened.high_water(src) == 3
    assert db.execute("SELECT seq, total FROM sales ORDER BY seq").fetchall() == [(1, 250), (2, 990), (3, 120)]
    db.close()


def test_a_transaction_sqlite_already_rolled_back_raises_the_original_error(tmp_path):
    """A trigger's RAISE(ROLLBACK) ends the transaction inside SQLite (as SQLITE_FULL or an I/O error may): the
    caller sees that error, not "cannot rollback", and the ledger forgets what it accepted."""
    db, ledger = shop(tmp_path / "shop.sqlite")
    db.execute("CREATE TRIGGER no_refunds BEFORE INSERT ON sales WHEN NEW.total < 0 "
               "BEGIN SELECT RAISE(ROLLBACK, 'refunds are not sales'); END")
    src = SOURCES[0]
    handle(ledger, src, 1, 250)
    with pytest.raises(sqlite3.IntegrityError, match="refunds are not sales"):
        handle(ledger, src, 2, -990)
    assert not db.in_transaction and not ledger.seen(src, 2)
    handle(ledger, src, 2, 990)
    assert db.execute("SELECT seq, total FROM sales ORDER BY seq").fetchall() == [(1, 250), (2, 990)]
    db.close()


def test_threads_sharing_a_ledger_each_see_every_event_new_exactly_once():
    """Four threads race through the same 1,500 events (as consumers of one subject on several connections
    would), two of them in transactions: each event is new for exactly one thread and nothing raises."""
    ledger = Ledger.memory()
    keys = [(src, seq) for seq in range(1, 751) for src in SOURCES[:2]]
    news: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def work(in_transactions: bool) -> None:
        try:
            for i in range(0, len(keys), 10):
                if in_transactions:
                    with ledger.transaction():
                        news.extend(k for k in keys[i:i + 10] if ledger.accept(*k).new)
                else:
                    news.extend(k for k in keys[i:i + 10] if ledger.accept(*k).new)
        except BaseException as exc:   # reported below, with the thread joined
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)        # switch threads as often as possible, to meet every race
    try:
        threads = [threading.Thread(target=work, args=(n % 2 == 1,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert sorted(news) == sorted(keys)
    assert ledger.gaps() == {} and all(ledger.high_water(src) == 750 for src in SOURCES[:2])


def test_another_threads_accept_waits_for_the_transaction_and_survives_its_rollback(tmp_path):
    """Thread A holds a transaction; thread B's ``accept`` waits for it instead of slipping into it, so when A
    rolls back, B's event (which B was told is new, and processed) stays accepted and committed."""
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger.open(str(path))
    verdicts = []
    b = threading.Thread(target=lambda: verdicts.append(ledger.accept(SOURCES[1], 1)))
    with pytest.raises(RuntimeError):
        with ledger.transaction():
            ledger.accept(SOURCES[0], 1)
            b.start()
            b.join(0.3)
            assert b.is_alive(), "B's accept ran inside A's transaction"
            raise RuntimeError("A's handler failed: roll back A's event")
    b.join(10)
    assert not b.is_alive() and verdicts[0].new
    assert not ledger.seen(SOURCES[0], 1) and ledger.seen(SOURCES[1], 1)
    ledger.close()
    with Ledger.open(str(path)) as reopened:
        assert reopened.sources() == [SOURCES[1]] and reopened.high_water(SOURCES[1]) == 1


# ------------------------------------------------------------------------------------------------ accounting

@given(histories())
def test_accounting_agrees_with_the_model(history):
    produced, arrivals = history
    accounting = Accounting()
    for t, (src, seq) in enumerate(arrivals):
        accounting.observe(src, seq, at=float(t))
    accounting.produced(produced)
    report = accounting.report(recovered_from=0.0)

    produced_keys = {(src, seq) for src, n in produced.items() for seq in range(1, n + 1)}
    distinct = set(arrivals)
    first_order, highest, out_of_order = [], {}, 0
    for k in arrivals:
        if k not in first_order:
            first_order.append(k)
            out_of_order += k[1] < highest.get(k[0], 0)
            highest[k[0]] = max(highest.get(k[0], 0), k[1])
    assert report.produced == len(produced_keys)
    assert report.delivered == len(distinct)
    assert report.lost == len(produced_keys - distinct)
    assert report.raw_duplicates == len(arrivals) - len(distinct)
    assert report.duplicates == 0          # the ledger lets each event through once
    assert report.unknown == 0
    assert report.out_of_order == out_of_order
    assert report.ok == (report.lost == 0 and out_of_order == 0)
    if report.lost == 0 and arrivals:
        assert report.recover_s == float(arrivals.index(first_order[-1]))


def test_a_ledger_that_forgets_shows_as_duplicates():
    """Accounting measures the ledger it is given: one restarted from nothing lets re-sends through."""
    accounting = Accounting()
    for seq in (1, 2, 3):
        accounting.observe(SOURCES[0], seq)
    accounting.ledger = Ledger.memory()   # a consumer that lost its ledger
    accounting.observe(SOURCES[0], 2)
    accounting.produced({SOURCES[0]: 3})
    report = accounting.report()
    assert (report.duplicates, report.raw_duplicates, report.ok) == (1, 1, False)


def test_unknown_and_lost_events_are_reported():
    accounting = Accounting()
    accounting.observe(SOURCES[0], 1, at=10.0)
    accounting.observe(SOURCES[1], 9, at=11.0)
    accounting.produced({SOURCES[0]: 2})
    report = accounting.report(recovered_from=5.0)
    assert (report.lost, report.unknown, report.recover_s, report.ok) == (1, 1, None, False)
    assert report.lost_examples == ((SOURCES[0], 2),)
    assert "lost=1" in report.line("demo")


def test_recovery_counts_only_the_backlog_of_the_fault():
    accounting = Accounting()
    for seq, at in ((1, 1.0), (2, 4.0), (3, 9.0)):
        accounting.observe(SOURCES[0], seq, at=at)
    accounting.produced({SOURCES[0]: 3})
    assert accounting.report(recovered_from=2.0, backlog={SOURCES[0]: 2}).recover_s == 2.0
    assert accounting.report(recovered_from=2.0).recover_s == 7.0

"""The consumer's de-duplication ledger and the delivery accounting, checked against a simple model."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.consumer import Accounting, Ledger

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
    assert db.execute("SELECT count(*) FROM tillwire_ledger_above").fetchone()[0] == 0
    db.close()


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
    with pytest.raises(ValueError):
        Ledger.memory().accept(SOURCES[0], 0)


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

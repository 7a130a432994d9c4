"""The de-duplication ledger: has this consumer already handled event ``(src, seq)``? (docs/bridge/consumers.md)

Broker-side de-duplication (JetStream's duplicate window, minutes) cannot catch a re-send that comes hours
later, after a till was offline: tillwire delivers at least once, and the consumer's ledger turns that into
exactly once in effect.

The ledger is compact because tillwire numbers each source's events 1, 2, 3, ... with no hole: per source it keeps
a **high-water mark** ``hwm`` (every seq ``1..hwm`` was seen) and the seqs seen **above** it as **ranges**
(inclusive ``(first, last)`` runs). In steady state (events in order) there is no range and a source costs one
row; a missing seq followed by any number of in-order events costs one range (one row), not one row per event.
Seqs missing between ``hwm`` and the highest seen are **gaps**: an event not (yet) received. A gap closes when the
missing seq arrives, when the integrator declares it will never come (``skip``), or when it falls further below
the highest seq seen than the source's ``horizon`` allows (given up; off by default).

Cost: ``accept`` is O(log r + g) for a source with r ranges and g open gaps (g = r): a permanent hole costs one
range for ever, and a consumer that receives only some of a source's events (a filtered sink, a subscription to
some subjects) opens a hole before nearly every event — use ``skip`` or a ``horizon`` there.

Storage: SQLite, either a file of its own (``Ledger.open(path)``), an in-memory database (``Ledger.memory()``),
or **the integrator's own SQLite connection** (``Ledger(conn)``), so that the ledger row and the integrator's
write commit in one transaction — see ``transaction()``.

Threads: every method holds the ledger's re-entrant lock, and ``transaction()`` holds it for the whole ``with``
block, so threads sharing one ledger take turns (another thread's ``accept`` waits for your commit).
"""

from __future__ import annotations

import sqlite3
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tillwire_ledger_sources (src TEXT PRIMARY KEY, hwm INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tillwire_ledger_ranges (src TEXT NOT NULL, first INTEGER NOT NULL, "
    "last INTEGER NOT NULL, PRIMARY KEY (src, first)) WITHOUT ROWID",
)
_OLD_ABOVE = "tillwire_ledger_above"   # the first layout: one row per seq above hwm; converted to ranges on open

Gap = tuple[int, int]  # (first, last) missing seqs, inclusive


@dataclass(frozen=True)
class Verdict:
    """What ``accept`` decided for one event."""

    src: str
    seq: int
    new: bool                      # first time seen: process it; False: a duplicate, skip it
    gaps: tuple[Gap, ...] = ()     # the source's open gaps after this event (missing seqs below the highest seen)
    given_up: tuple[Gap, ...] = ()  # gaps this event pushed beyond the source's horizon (now counted as seen)

    @property
    def duplicate(self) -> bool:
        return not self.new


class _Source:
    """``hwm`` and the seen ranges above it: ``starts``/``ends`` sorted, disjoint, never adjacent to each other
    nor to ``hwm`` (``starts[0] >= hwm + 2``)."""

    __slots__ = ("hwm", "starts", "ends")

    def __init__(self, hwm: int = 0):
        self.hwm = hwm
        self.starts: list[int] = []
        self.ends: list[int] = []

    def seen(self, seq: int) -> bool:
        if seq <= self.hwm:
            return True
        i = bisect_right(self.starts, seq) - 1
        return i >= 0 and seq <= self.ends[i]

    def highest(self) -> int:
        return self.ends[-1] if self.ends else self.hwm

    def ranges(self) -> tuple[Gap, ...]:
        return tuple(zip(self.starts, self.ends))

    def gaps(self, upto: int | None = None) -> tuple[Gap, ...]:
        """Missing seqs below the highest seen (or only those up to ``upto``)."""
        out = tuple((prev + 1, start - 1) for prev, start in zip(chain((self.hwm,), self.ends), self.starts))
        if upto is None:
            return out
        return tuple((first, min(last, upto)) for first, last in out if first <= upto)


class Ledger:
    """``accept(src, seq)`` → ``Verdict``; ``gaps()``; ``skip()``; durable when backed by a file or your connection.

    Safe to share between threads (one re-entrant lock; ``transaction()`` holds it for its whole block).
    ``horizon``: if set, a missing seq more than ``horizon`` below the source's highest seen seq is given up
    (counted as seen; a late arrival of it is then a duplicate); ``set_horizon`` overrides it per source."""

    def __init__(self, conn: sqlite3.Connection, *, own: bool = False, horizon: int | None = None):
        self._db = conn
        self._own = own
        self._lock = threading.RLock()
        self._depth = 0
        self._stale = False   # True while the in-memory state may differ from the database
        self._sources: dict[str, _Source] = {}
        self._horizon = _check_horizon(horizon)
        self._horizons: dict[str, int | None] = {}
        with self._lock, self._write():
            for stmt in _SCHEMA:
                self._db.execute(stmt)
            self._convert_old_layout()
        self._load()

    @classmethod
    def open(cls, path: str, *, horizon: int | None = None) -> "Ledger":
        """A ledger in its own SQLite file (WAL, ``synchronous=FULL``), created on first use; each ``accept``
        outside ``transaction()`` commits at once."""
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return cls(conn, own=True, horizon=horizon)

    @classmethod
    def memory(cls, *, horizon: int | None = None) -> "Ledger":
        """A ledger that lives as long as the object (tests, or a consumer that keeps no state)."""
        return cls(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False), own=True,
                   horizon=horizon)

    def close(self) -> None:
        with self._lock:
            if self._own:
                self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reload(self) -> None:
        """Read the state back from the database: after you rolled back a shared connection's transaction
        yourself (``transaction()`` does it for you)."""
        with self._lock:
            self._load()

    def _load(self) -> None:
        self._stale = True
        sources = {src: _Source(hwm) for src, hwm in
                   self._db.execute("SELECT src, hwm FROM tillwire_ledger_sources")}
        for src, first, last in self._db.execute(
                "SELECT src, first, last FROM tillwire_ledger_ranges ORDER BY src, first"):
            source = sources.setdefault(src, _Source())
            source.starts.append(first)
            source.ends.append(last)
        self._sources = sources
        self._stale = False

    def _fresh(self) -> None:
        """A failed reload (the database was locked) is retried before the state is used again."""
        if self._stale:
            self._load()

    def _convert_old_layout(self) -> None:
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                (_OLD_ABOVE,)).fetchone():
            return
        runs: list[list] = []
        for src, seq in self._db.execute(f"SELECT src, seq FROM {_OLD_ABOVE} ORDER BY src, seq"):
            if runs and runs[-1][0] == src and runs[-1][2] == seq - 1:
                runs[-1][2] = seq
            else:
                runs.append([src, seq, seq])
        self._db.executemany("INSERT INTO tillwire_ledger_ranges (src, first, last) VALUES (?, ?, ?)", runs)
        self._db.execute(f"DROP TABLE {_OLD_ABOVE}")

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction around ledger updates and, on a shared connection, your own writes::

            with ledger.transaction() as db:
                if ledger.accept(ev["src"], ev["seq"]).new:
                    db.execute("INSERT INTO sales ...", ...)

        Both commit together or neither does. On an exception inside, or when the COMMIT itself fails (the
        database is locked, full, ...), the transaction is rolled back (unless SQLite already did), the ledger
        reads its state back from the database — forgetting what it accepted inside — and the original error is
        raised: a re-delivery of those events is then new again."""
        with self._lock:
            self._fresh()
            began = self._depth == 0 and not self._db.in_transaction
            if began:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._db
                if began:
                    self._db.execute("COMMIT")
            except BaseException:
                if began:
                    self._undo()
                raise
            finally:
                self._depth -= 1

    def _undo(self) -> None:
        """After a failed transaction of ours: roll back if SQLite has not, and reload; never masks the error."""
        self._stale = True
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._load()
        except sqlite3.Error:
            pass   # still stale: the next call reloads (or raises then, with its own error)

    @contextmanager
    def _write(self):
        """Inside a transaction already (ours or the caller's): join it; otherwise commit at the end."""
        if self._depth or self._db.in_transaction:
            yield
            return
        with self.transaction():
            yield

    # ------------------------------------------------------------------ the ledger

    def seen(self, src: str, seq: int) -> bool:
        """Was ``(src, seq)`` accepted (or skipped) before? Changes nothing."""
        with self._lock:
            self._fresh()
            source = self._sources.get(src)
            return source is not None and source.seen(seq)

    def accept(self, src: str, seq: int) -> Verdict:
        """Check and mark in one step: ``new`` the first time, a duplicate afterwards."""
        _check_seq(seq, "seq")
        with self._lock:
            self._fresh()
            source = self._sources.get(src)
            if source is not None and source.seen(seq):
                return Verdict(src, seq, False, source.gaps())
            with self._write():
                source, given_up = self._mark(src, seq, seq)
            return Verdict(src, seq, True, source.gaps(), given_up)

    mark = accept  # "mark after processing": call it once the work is done (see the module docs)

    def skip(self, src: str, first: int, last: int) -> None:
        """Declare ``first..last`` of ``src`` events you will never get (filtered out upstream, a dead letter you
        will not re-drive): they count as seen, their gap closes, a late arrival of one is a duplicate."""
        _check_seq(first, "first")
        _check_seq(last, "last")
        if last < first:
            raise ValueError(f"last must be >= first, got {first}..{last}")
        with self._lock, self._write():
            self._fresh()
            self._mark(src, first, last)

    def baseline(self, src: str, hwm: int) -> None:
        """Declare ``1..hwm`` of ``src`` handled (a consumer that starts after a source's history began)."""
        if hwm >= 1:
            self.skip(src, 1, hwm)

    def set_horizon(self, src: str, horizon: int | None) -> None:
        """This source's horizon (overrides the ledger's; ``None``: never give up). Not stored: set it at start-up.
        Takes effect at the source's next ``accept`` or ``skip``."""
        with self._lock:
            self._horizons[src] = _check_horizon(horizon)

    def _mark(self, src: str, first: int, last: int) -> tuple[_Source, tuple[Gap, ...]]:
        source = self._sources.get(src)
        if source is None:
            source = _Source()
            self._db.execute("INSERT OR IGNORE INTO tillwire_ledger_sources (src, hwm) VALUES (?, 0)", (src,))
            self._sources[src] = source
        self._cover(src, source, first, last)
        horizon = self._horizons.get(src, self._horizon)
        given_up: tuple[Gap, ...] = ()
        if horizon is not None:
            cutoff = source.highest() - horizon - 1    # missing seqs up to here are given up
            if cutoff > source.hwm:
                given_up = source.gaps(upto=cutoff)
                self._cover(src, source, source.hwm + 1, cutoff)
        return source, given_up

    def _cover(self, src: str, source: _Source, first: int, last: int) -> None:
        """Mark ``first..last`` seen: merge it with the ranges it touches (or into ``hwm``); store, then apply."""
        first = max(first, source.hwm + 1)
        if first > last:
            return
        starts, ends = source.starts, source.ends
        i = bisect_left(ends, first - 1)        # the first range that ends at or after first - 1
        j = bisect_right(starts, last + 1)      # ranges [i, j) overlap or touch first..last
        if i < j:
            first, last = min(first, starts[i]), max(last, ends[j - 1])
        absorbed = first == source.hwm + 1
        db = self._db
        try:
            if not absorbed and j - i == 1 and starts[i] == first:
                db.execute("UPDATE tillwire_ledger_ranges SET last = ? WHERE src = ? AND first = ?",
                           (last, src, first))
            else:
                if i < j:
                    db.execute("DELETE FROM tillwire_ledger_ranges WHERE src = ? AND first BETWEEN ? AND ?",
                               (src, starts[i], starts[j - 1]))
                if not absorbed:
                    db.execute("INSERT INTO tillwire_ledger_ranges (src, first, last) VALUES (?, ?, ?)",
                               (src, first, last))
            if absorbed:
                db.execute("INSERT INTO tillwire_ledger_sources (src, hwm) VALUES (?, ?) "
                           "ON CONFLICT (src) DO UPDATE SET hwm = excluded.hwm", (src, last))
        except BaseException:
            self._stale = True   # the database may hold part of this change: read it back before the next use
            raise
        if absorbed:
            source.hwm = last
            del starts[i:j], ends[i:j]
        else:
            starts[i:j] = [first]
            ends[i:j] = [last]

    def high_water(self, src: str) -> int:
        """The highest seq with every seq up to it seen (0 if none)."""
        with self._lock:
            self._fresh()
            source = self._sources.get(src)
            return source.hwm if source else 0

    def highest(self, src: str) -> int:
        """The highest seq seen at all (0 if none)."""
        with self._lock:
            self._fresh()
            source = self._sources.get(src)
            return source.highest() if source else 0

    def ranges(self, src: str) -> tuple[Gap, ...]:
        """The seqs seen above the high-water mark, as inclusive ``(first, last)`` ranges: what the ledger stores
        for this source beyond its one row (one range per open gap)."""
        with self._lock:
            self._fresh()
            source = self._sources.get(src)
            return source.ranges() if source else ()

    def gaps(self, src: str | None = None) -> dict[str, tuple[Gap, ...]]:
        """Open gaps, per source (only sources that have some): missing seqs below the highest seen."""
        with self._lock:
            self._fresh()
            if src is not None:
                items = [(src, self._sources[src])] if src in self._sources else []
            else:
                items = list(self._sources.items())
            return {s: g for s, source in items if (g := source.gaps())}

    def sources(self) -> list[str]:
        with self._lock:
            self._fresh()
            return sorted(self._sources)


def _check_seq(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_horizon(horizon: int | None) -> int | None:
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0):
        raise ValueError(f"horizon must be None or an integer >= 0, got {horizon!r}")
    return horizon

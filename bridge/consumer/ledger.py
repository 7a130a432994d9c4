"""The de-duplication ledger: has this consumer already handled event ``(src, seq)``? (docs/bridge/consumers.md)

Broker-side de-duplication (JetStream's duplicate window, minutes) cannot catch a re-send that comes hours
later, after a till was offline: tillwire delivers at least once, and the consumer's ledger turns that into
exactly once in effect.

The ledger is compact because tillwire numbers each source's events 1, 2, 3, ... with no hole: per source it keeps
a **high-water mark** ``hwm`` (every seq ``1..hwm`` was seen) and the set of seqs seen **above** it. In steady
state (events in order) the set is empty and a source costs one row. Seqs missing between ``hwm`` and the highest
seen are **gaps**: an event not (yet) received. A gap closes when the missing seq arrives.

Storage: SQLite, either a file of its own (``Ledger.open(path)``), an in-memory database (``Ledger.memory()``),
or **the integrator's own SQLite connection** (``Ledger(conn)``), so that the ledger row and the integrator's
write commit in one transaction — see ``transaction()``.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left, insort
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tillwire_ledger_sources (src TEXT PRIMARY KEY, hwm INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tillwire_ledger_above (src TEXT NOT NULL, seq INTEGER NOT NULL, "
    "PRIMARY KEY (src, seq)) WITHOUT ROWID",
)

Gap = tuple[int, int]  # (first, last) missing seqs, inclusive


@dataclass(frozen=True)
class Verdict:
    """What ``accept`` decided for one event."""

    src: str
    seq: int
    new: bool                      # first time seen: process it; False: a duplicate, skip it
    gaps: tuple[Gap, ...] = ()     # the source's open gaps after this event (missing seqs below the highest seen)

    @property
    def duplicate(self) -> bool:
        return not self.new


class _Source:
    __slots__ = ("hwm", "above")

    def __init__(self, hwm: int = 0, above: list[int] | None = None):
        self.hwm = hwm
        self.above = above or []   # sorted seqs > hwm + 1 that were seen

    def seen(self, seq: int) -> bool:
        if seq <= self.hwm:
            return True
        i = bisect_left(self.above, seq)
        return i < len(self.above) and self.above[i] == seq

    def gaps(self) -> tuple[Gap, ...]:
        out, expect = [], self.hwm + 1
        for seq in self.above:
            if seq > expect:
                out.append((expect, seq - 1))
            expect = seq + 1
        return tuple(out)


class Ledger:
    """``accept(src, seq)`` → ``Verdict``; ``gaps()``; durable when backed by a file or your connection.

    One ledger serves one thread at a time (like an SQLite connection): share it between threads behind a lock."""

    def __init__(self, conn: sqlite3.Connection, *, own: bool = False):
        self._db = conn
        self._own = own
        self._depth = 0
        self._sources: dict[str, _Source] = {}
        with self._write():
            for stmt in _SCHEMA:
                self._db.execute(stmt)
        self._load()

    @classmethod
    def open(cls, path: str) -> "Ledger":
        """A ledger in its own SQLite file (WAL, ``synchronous=FULL``), created on first use; each ``accept``
        outside ``transaction()`` commits at once."""
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return cls(conn, own=True)

    @classmethod
    def memory(cls) -> "Ledger":
        """A ledger that lives as long as the object (tests, or a consumer that keeps no state)."""
        return cls(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False), own=True)

    def close(self) -> None:
        if self._own:
            self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reload(self) -> None:
        """Read the state back from the database: after you rolled back a shared connection's transaction
        yourself (``transaction()`` does it for you)."""
        self._load()

    def _load(self) -> None:
        self._sources = {src: _Source(hwm) for src, hwm in
                         self._db.execute("SELECT src, hwm FROM tillwire_ledger_sources")}
        for src, seq in self._db.execute("SELECT src, seq FROM tillwire_ledger_above ORDER BY src, seq"):
            self._sources.setdefault(src, _Source()).above.append(seq)

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction around ledger updates and, on a shared connection, your own writes::

            with ledger.transaction() as db:
                if ledger.accept(ev["src"], ev["seq"]).new:
                    db.execute("INSERT INTO sales ...", ...)

        Both commit together or neither does; on an exception the ledger forgets what it accepted inside."""
        if self._depth == 0 and not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            began = True
        else:
            began = False
        self._depth += 1
        try:
            yield self._db
        except BaseException:
            self._depth -= 1
            if began:
                self._db.execute("ROLLBACK")
                self._load()
            raise
        self._depth -= 1
        if began:
            self._db.execute("COMMIT")

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
        """Was ``(src, seq)`` accepted (or marked) before? Changes nothing."""
        source = self._sources.get(src)
        return source is not None and source.seen(seq)

    def accept(self, src: str, seq: int) -> Verdict:
        """Check and mark in one step: ``new`` the first time, a duplicate afterwards."""
        if seq < 1:
            raise ValueError(f"seq must be >= 1, got {seq}")
        source = self._sources.get(src)
        if source is not None and source.seen(seq):
            return Verdict(src, seq, False, source.gaps())
        with self._write():
            source = self._mark(src, seq)
        return Verdict(src, seq, True, source.gaps())

    mark = accept  # "mark after processing": call it once the work is done (see the module docs)

    def baseline(self, src: str, hwm: int) -> None:
        """Declare ``1..hwm`` of ``src`` handled (a consumer that starts after a source's history began)."""
        with self._write():
            source = self._sources.setdefault(src, _Source())
            if hwm > source.hwm:
                source.above = [s for s in source.above if s > hwm]
                source.hwm = hwm
                self._advance(src, source, purge=True)

    def _mark(self, src: str, seq: int) -> _Source:
        source = self._sources.get(src)
        if source is None:
            source = self._sources[src] = _Source()
        if seq == source.hwm + 1:
            source.hwm = seq
            self._advance(src, source)
        else:
            insort(source.above, seq)
            self._db.execute("INSERT INTO tillwire_ledger_above (src, seq) VALUES (?, ?)", (src, seq))
        return source

    def _advance(self, src: str, source: _Source, purge: bool = False) -> None:
        """Move ``hwm`` over the seqs above it that are now contiguous, and store the new state."""
        absorbed = 0
        while absorbed < len(source.above) and source.above[absorbed] == source.hwm + 1:
            source.hwm += 1
            absorbed += 1
        if absorbed:
            del source.above[:absorbed]
        if absorbed or purge:
            self._db.execute("DELETE FROM tillwire_ledger_above WHERE src = ? AND seq <= ?", (src, source.hwm))
        self._db.execute("INSERT INTO tillwire_ledger_sources (src, hwm) VALUES (?, ?) "
                         "ON CONFLICT (src) DO UPDATE SET hwm = excluded.hwm", (src, source.hwm))

    def high_water(self, src: str) -> int:
        """The highest seq with every seq up to it seen (0 if none)."""
        source = self._sources.get(src)
        return source.hwm if source else 0

    def highest(self, src: str) -> int:
        """The highest seq seen at all (0 if none)."""
        source = self._sources.get(src)
        if source is None:
            return 0
        return source.above[-1] if source.above else source.hwm

    def gaps(self, src: str | None = None) -> dict[str, tuple[Gap, ...]]:
        """Open gaps, per source (only sources that have some): missing seqs below the highest seen."""
        items = [(src, self._sources[src])] if src is not None and src in self._sources else (
            [] if src is not None else self._sources.items())
        return {s: g for s, source in items if (g := source.gaps())}

    def sources(self) -> list[str]:
        return sorted(self._sources)

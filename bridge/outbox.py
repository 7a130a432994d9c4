"""The durable outbox (docs/bridge/outbox.md): one SQLite file in WAL mode with ``synchronous=FULL``.

An event counts as *captured* once the transaction that stored it has committed. The outbox numbers events per
source (``seq`` from 1, persisted, never reused), stores the packed msgpack envelope (docs/EVENTS.md), keeps one
cursor per sink, and deletes a row only after every sink has acknowledged it and the retention period has passed.

A capture loop batches: it collects every event it decoded in one poll cycle (or up to a few thousand events or a
few milliseconds, whichever comes first) and calls ``append`` once; that is one transaction and one fsync::

    box = Outbox.open("/var/lib/tillwire/outbox.db", sinks=("nats",), retention_s=3600)
    keys = box.append([(src, body["type"], body["data"], ts) for body in bodies])   # one commit
    rows = box.pending("nats", 500)      # publish them, then
    box.ack("nats", rows[-1].rowid)

The only I/O is the SQLite file (and its ``-wal``/``-shm`` companions). One process writes an outbox at a time.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

from protocols.events import envelope, pack

SCHEMA_VERSION = 2
PRUNE_SLICE = 5000  # rows deleted per transaction by prune()

_SCHEMA = """
CREATE TABLE events (
    rowid    INTEGER PRIMARY KEY AUTOINCREMENT,
    src      TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    captured INTEGER NOT NULL,
    envelope BLOB    NOT NULL,
    UNIQUE (src, seq)
);
CREATE TABLE sources (
    src      TEXT    PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
CREATE TABLE cursors (
    sink     TEXT    PRIMARY KEY,
    acked    INTEGER NOT NULL
)
""" + ";"

# version 2: events a sink's destination refused for good (a webhook's 4xx), kept with the response until an
# operator re-drives them (`tillwire outbox redrive`) or deletes them (`tillwire outbox drop`); docs/bridge/sinks.md §5
_SCHEMA_V2 = """
CREATE TABLE dead_letters (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    sink     TEXT    NOT NULL,
    src      TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    type     TEXT    NOT NULL,
    ts       INTEGER NOT NULL,
    envelope BLOB    NOT NULL,
    parked   INTEGER NOT NULL,
    status   INTEGER,
    reason   TEXT    NOT NULL,
    response BLOB    NOT NULL,
    attempts INTEGER NOT NULL,
    redrive  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (sink, src, seq)
)
"""


class OutboxError(Exception):
    """Base class; the message fits on one line and says what to do."""


class OutboxCorrupt(OutboxError):
    def __init__(self, path: str, detail: str):
        detail = " ".join(detail.split())  # SQLite's reports span lines; the message is one line
        self.path, self.detail = path, detail
        super().__init__(
            f"outbox {path} failed its integrity check ({detail}); stop tillwire, move the file and its -wal/-shm "
            f"files aside (a new, empty outbox is created on the next start) and keep them for inspection")


class OutboxConfigError(OutboxError):
    """The file is readable but SQLite would not give the durability settings, or the schema is from elsewhere."""


class OutboxFull(OutboxError):
    """An append did not fit under ``max_bytes``; nothing of that batch was stored (and no seq was used)."""

    def __init__(self, path: str, events: int, nbytes: int, max_bytes: int):
        self.path, self.events, self.nbytes, self.max_bytes = path, events, nbytes, max_bytes
        super().__init__(f"outbox {path} is full (max_bytes={max_bytes}): {events} events ({nbytes} bytes) "
                         f"not stored; the sinks must catch up so that prune can free space")


class Row(NamedTuple):
    rowid: int
    src: str
    seq: int
    envelope: bytes  # the packed msgpack envelope, ready to publish


class Outbox:
    def __init__(self, path: str, conn: sqlite3.Connection, sinks: tuple[str, ...], retention_s: float,
                 max_bytes: int | None):
        self.path = path
        self._db = conn
        self.sinks = sinks
        self.retention_s = retention_s
        self.max_bytes = max_bytes

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | os.PathLike, *, sinks: Iterable[str] = ("default",), retention_s: float = 0.0,
             max_bytes: int | None = None, check: str = "quick") -> "Outbox":
        """Open (creating on first use) the outbox at ``path``.

        ``check`` is ``"quick"`` (``PRAGMA quick_check``, the default: it reads every page and checks the b-tree
        structure, record format and NOT NULL/UNIQUE-ness of the rows, in time linear in the file) or ``"full"``
        (``PRAGMA integrity_check``, which also verifies that every index matches its table: about twice as slow
        on a large backlog, for start-up after an unclean shutdown of the machine if one wants it).
        """
        path = os.fspath(path)
        sinks = tuple(sinks)
        if check not in ("quick", "full"):
            raise ValueError("check must be 'quick' or 'full'")
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise OutboxConfigError(f"outbox {path} cannot be opened ({exc}); check the path and its permissions")
        try:
            box = cls(path, conn, sinks, retention_s, max_bytes)
            box._setup(check)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise OutboxCorrupt(path, str(exc)) from None
        except BaseException:
            conn.close()
            raise
        return box

    def _pragma(self, name: str) -> Any:
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]

    def _setup(self, check: str) -> None:
        db = self._db
        pragma = "quick_check" if check == "quick" else "integrity_check"
        problems = [r[0] for r in db.execute(f"PRAGMA {pragma}").fetchall()]
        if problems != ["ok"]:
            raise OutboxCorrupt(self.path, "; ".join(problems[:3]))
        mode = self._pragma("journal_mode=WAL")
        if str(mode).lower() != "wal":
            raise OutboxConfigError(f"outbox {self.path}: SQLite kept journal_mode={mode}, not wal "
                                    f"(WAL needs a local file system with shared-memory support)")
        db.execute("PRAGMA synchronous=FULL")
        if self._pragma("synchronous") != 2:
            raise OutboxConfigError(f"outbox {self.path}: synchronous is {self._pragma('synchronous')}, not 2 (FULL)")
        if self.max_bytes is not None:
            page = self._pragma("page_size")
            want = max(1, self.max_bytes // page)
            got = self._pragma(f"max_page_count={want}")
            if got != want:  # SQLite never lowers it below the current size
                raise OutboxConfigError(f"outbox {self.path} already holds {got * page} bytes, more than "
                                        f"max_bytes={self.max_bytes}; raise max_bytes or drain the outbox first")
        db.execute("BEGIN IMMEDIATE")
        try:
            version = self._pragma("user_version")
            if version == 0:
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise OutboxConfigError(f"{self.path} is an SQLite file but not a tillwire outbox; "
                                            f"point the outbox at another path")
                for stmt in (_SCHEMA + _SCHEMA_V2).split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version == 1:  # an outbox from before dead letters: add the table, keep everything
                db.execute(_SCHEMA_V2)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise OutboxConfigError(f"outbox {self.path} has schema version {version}; this tillwire knows "
                                        f"version {SCHEMA_VERSION}")
            db.executemany("INSERT OR IGNORE INTO cursors (sink, acked) VALUES (?, 0)", [(s,) for s in self.sinks])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- capture

    def append(self, events: Iterable[tuple[str, str, dict, int]], *, now: float | None = None
               ) -> list[tuple[str, int]]:
        """Store a batch of ``(src, type, data, ts)`` bodies in one transaction; return their ``(src, seq)`` keys.

        When this returns, every event of the batch is captured (committed and synced). On any error nothing of
        the batch is stored and no seq is used; past ``max_bytes`` the error is ``OutboxFull``.
        """
        events = list(events)
        if not events:
            return []
        captured = time.time_ns() if now is None else int(now * 1e9)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            srcs = {e[0] for e in events}
            last = dict(db.execute(f"SELECT src, last_seq FROM sources WHERE src IN ({','.join('?' * len(srcs))})",
                                   tuple(srcs)).fetchall())
            rows, keys = [], []
            for src, type_, data, ts in events:
                seq = last.get(src, 0) + 1
                last[src] = seq
                rows.append((src, seq, captured, pack(envelope(src, seq, ts, {"type": type_, "data": data}))))
                keys.append((src, seq))
            db.executemany("INSERT INTO events (src, seq, captured, envelope) VALUES (?, ?, ?, ?)", rows)
            db.executemany("INSERT OR REPLACE INTO sources (src, last_seq) VALUES (?, ?)",
                           [(s, last[s]) for s in srcs])
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if db.in_transaction:  # SQLITE_FULL may already have rolled the transaction back
                db.execute("ROLLBACK")
            if _is_full(exc):
                raise OutboxFull(self.path, len(events), sum(len(r[3]) for r in rows) if rows else 0,
                                 self.max_bytes or 0) from None
            raise
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return keys

    def last_seq(self, src: str) -> int:
        """The high-water mark of ``src``: the last seq ever assigned (0 if none), pruned or not."""
        row = self._db.execute("SELECT last_seq FROM sources WHERE src = ?", (src,)).fetchone()
        return row[0] if row else 0

    # ---------------------------------------------------------------- delivery

    def _acked(self, sink: str) -> int:
        row = self._db.execute("SELECT acked FROM cursors WHERE sink = ?", (sink,)).fetchone()
        if row is None or sink not in self.sinks:
            raise KeyError(f"unknown sink {sink!r} (configured: {', '.join(self.sinks)})")
        return row[0]

    def pending(self, sink: str, limit: int = 1000) -> list[Row]:
        """The next rows ``sink`` has not acknowledged, in capture order (so each source in seq order)."""
        acked = self._acked(sink)
        return [Row(*r) for r in self._db.execute(
            "SELECT rowid, src, seq, envelope FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?", (acked, limit))]

    def ack(self, sink: str, upto_rowid: int) -> None:
        """Durably mark every row up to ``upto_rowid`` as delivered to ``sink``; a cursor never moves back."""
        self._acked(sink)
        top = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        if upto_rowid > (top[0] if top else 0):  # would silently skip rows not yet captured
            raise ValueError(f"ack({sink!r}, {upto_rowid}) is past the last captured row {top[0] if top else 0}")
        self._db.execute("UPDATE cursors SET acked = max(acked, ?) WHERE sink = ?", (upto_rowid, sink))

    def depth(self, sink: str) -> int:
        acked = self._acked(sink)
        return self._db.execute("SELECT count(*) FROM events WHERE rowid > ?", (acked,)).fetchone()[0]

    def oldest_age_s(self, sink: str, now: float | None = None) -> float:
        """Seconds since the oldest row ``sink`` has not acknowledged was captured (0.0 when none)."""
        acked = self._acked(sink)
        row = self._db.execute("SELECT captured FROM events WHERE rowid > ? ORDER BY rowid LIMIT 1",
                               (acked,)).fetchone()
        if row is None:
            return 0.0
        now_ns = time.time_ns() if now is None else int(now * 1e9)
        return max(0.0, (now_ns - row[0]) / 1e9)

    def used_bytes(self) -> int:
        """Bytes of the database file in use (pages not on the freelist); what ``max_bytes`` limits."""
        return (self._pragma("page_count") - self._pragma("freelist_count")) * self._pragma("page_size")

    # ---------------------------------------------------------------- pruning

    def prune(self, now: float | None = None) -> int:
        """Delete rows every configured sink has acknowledged and captured at least ``retention_s`` ago."""
        now_ns = time.time_ns() if now is None else int(now * 1e9)
        if self.sinks:
            marks = ",".join("?" * len(self.sinks))
            floor = self._db.execute(f"SELECT min(acked) FROM cursors WHERE sink IN ({marks})",
                                     self.sinks).fetchone()[0]
        else:  # no acknowledging sink (only the embedded feed reads): retention alone decides
            floor = self._db.execute("SELECT max(rowid) FROM events").fetchone()[0]
        cutoff = now_ns - int(self.retention_s * 1e9)
        # in slices, each its own short transaction: after a long outage millions of rows go, and one statement
        # would hold the write lock (sinks' cursor commits, the CLI) for seconds
        deleted = 0
        while True:
            cur = self._db.execute(
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE rowid <= ? AND captured <= ? "
                "ORDER BY rowid LIMIT ?)", (floor or 0, cutoff, PRUNE_SLICE))
            deleted += cur.rowcount
            if cur.rowcount < PRUNE_SLICE:
                return deleted


def _is_full(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == sqlite3.SQLITE_FULL
    return "full" in str(exc)

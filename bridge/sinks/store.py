"""A sink's own view of the outbox: its cursor, its pending rows, its dead letters (docs/bridge/sinks.md §3, §5).

Each ``SinkRunner`` opens one ``SinkStore``: a second SQLite connection to the outbox file, used by that runner's
thread only. The bridge's capture thread stays the only writer of events; a sink store writes only its own cursor
and its own dead letters, each in a short committed transaction (``synchronous=NORMAL``: see ``SinkStore``).
SQLite's WAL lets it read while capture writes; a write waits for capture's at most ``busy_timeout``.

``tillwire outbox`` uses the module-level helpers (``summary``, ``dead_letters``, ``request_redrive``) on a
connection of its own, from another process, while the bridge runs: they read, and ``request_redrive`` only flips
a flag the runner polls.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import NamedTuple

from bridge.outbox import SCHEMA_VERSION, OutboxConfigError
from bridge.sinks.base import Outgoing, Parked

RESPONSE_KEEP = 4096  # bytes of a refused request's response kept with its dead letter
BUSY_TIMEOUT_MS = 10_000


class PendingRow(NamedTuple):
    rowid: int
    src: str
    seq: int
    captured: int  # ns since the epoch
    envelope: bytes


@dataclass(frozen=True)
class DeadLetter:
    id: int
    sink: str
    src: str
    seq: int
    type: str
    ts: int
    envelope: bytes
    parked: int       # ns since the epoch
    status: int | None
    reason: str
    response: bytes
    attempts: int
    redrive: bool

    @property
    def key(self) -> str:
        return f"{self.src}:{self.seq}"


_DL_COLUMNS = "id, sink, src, seq, type, ts, envelope, parked, status, reason, response, attempts, redrive"


def connect(path: str, *, readonly: bool = False, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection to an existing outbox (never creates one) with a busy timeout."""
    uri = f"file:{path}?mode={'ro' if readonly else 'rw'}"
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not readonly:
            db.execute(f"PRAGMA synchronous={synchronous}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise OutboxConfigError(f"outbox {path} cannot be opened ({exc}); is the path right and the bridge's "
                                f"outbox there?") from None
    if version != SCHEMA_VERSION:
        db.close()
        raise OutboxConfigError(f"outbox {path} has schema version {version}; this tillwire knows version "
                                f"{SCHEMA_VERSION} (start the bridge once to upgrade it)")
    return db


class SinkStore:
    def __init__(self, path: str, sink: str, max_bytes: int | None = None):
        self.path, self.sink = path, sink
        # NORMAL, not FULL: in WAL mode a commit then survives a process crash but not always a power cut. For a
        # cursor that is the right trade — a cursor move lost to a power cut only sends those events again
        # (at least once, consumers de-duplicate), and one fsync less per batch is most of the runner's cost.
        # Events themselves are written by the capture thread's own FULL connection.
        self._db = connect(path, synchronous="NORMAL")
        if max_bytes:  # max_page_count is per connection: dead letters must not grow the file past the limit
            page = self._db.execute("PRAGMA page_size").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count={max(1, max_bytes // page)}")
        if self._db.execute("SELECT 1 FROM cursors WHERE sink = ?", (sink,)).fetchone() is None:
            self._db.close()
            raise OutboxConfigError(f"outbox {path} has no cursor for sink {sink!r}; the bridge adds it when the "
                                    f"outbox is opened with that sink configured")

    def close(self) -> None:
        self._db.close()

    # ---------------------------------------------------------------- the cursor

    def acked(self) -> int:
        return self._db.execute("SELECT acked FROM cursors WHERE sink = ?", (self.sink,)).fetchone()[0]

    def top(self) -> int:
        """The last rowid ever captured (0 when none)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return row[0] if row else 0

    def first_rowid(self) -> int | None:
        """The oldest row still in the outbox (None when it is empty)."""
        return self._db.execute("SELECT min(rowid) FROM events").fetchone()[0]

    def pending(self, after: int, limit: int) -> list[PendingRow]:
        return [PendingRow(*r) for r in self._db.execute(
            "SELECT rowid, src, seq, captured, envelope FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, limit))]

    def depth(self, cursor: int) -> int:
        """Rows after ``cursor``. Rowids above every cursor are contiguous (AUTOINCREMENT in committed inserts,
        pruning only below the lowest cursor), so this is a subtraction, not a count over the backlog."""
        return max(0, self.top() - cursor)

    def oldest_captured(self, cursor: int) -> int | None:
        row = self._db.execute("SELECT captured FROM events WHERE rowid > ? ORDER BY rowid LIMIT 1",
                               (cursor,)).fetchone()
        return row[0] if row else None

    def commit(self, upto: int, parked: list[tuple[Outgoing, Parked]] = (), now_ns: int | None = None) -> None:
        """Move the cursor to ``upto`` and store the parked events, in one transaction."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for ev, p in parked:
                db.execute(
                    "INSERT INTO dead_letters (sink, src, seq, type, ts, envelope, parked, status, reason, "
                    "response, attempts, redrive) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0) "
                    "ON CONFLICT (sink, src, seq) DO UPDATE SET parked = excluded.parked, status = excluded.status, "
                    "reason = excluded.reason, response = excluded.response, attempts = attempts + 1, redrive = 0",
                    (self.sink, ev.src, ev.seq, ev.type, ev.ts, ev.envelope, now_ns, p.status, p.reason,
                     bytes(p.response[:RESPONSE_KEEP])))
            db.execute("UPDATE cursors SET acked = max(acked, ?) WHERE sink = ?", (upto, self.sink))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # ---------------------------------------------------------------- dead letters being re-driven

    def redrive_requested(self, limit: int) -> list[DeadLetter]:
        return [DeadLetter(*r[:-1], bool(r[-1])) for r in self._db.execute(
            f"SELECT {_DL_COLUMNS} FROM dead_letters WHERE sink = ? AND redrive = 1 ORDER BY id LIMIT ?",
            (self.sink, limit))]

    def redriven(self, delivered: list[int], parked: list[tuple[int, Parked]], now_ns: int | None = None) -> None:
        """Re-driven dead letters: delete the delivered ones, park the refused ones again with the new response."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in delivered])
            db.executemany(
                "UPDATE dead_letters SET parked = ?, status = ?, reason = ?, response = ?, attempts = attempts + 1, "
                "redrive = 0 WHERE id = ?",
                [(now_ns, p.status, p.reason, bytes(p.response[:RESPONSE_KEEP]), i) for i, p in parked])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def dead_letter_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM dead_letters WHERE sink = ?", (self.sink,)).fetchone()[0]


# ---------------------------------------------------------------- for `tillwire outbox` (another process)

def summary(db: sqlite3.Connection, now_ns: int | None = None) -> dict:
    """Cursors, depth and age per sink, dead letters per sink, sources with their last seq."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    top_row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    top = top_row[0] if top_row else 0
    rows = db.execute("SELECT count(*), min(rowid) FROM events").fetchone()
    sinks = []
    for sink, acked in db.execute("SELECT sink, acked FROM cursors ORDER BY sink"):
        oldest = db.execute("SELECT captured FROM events WHERE rowid > ? ORDER BY rowid LIMIT 1",
                            (acked,)).fetchone()
        dead, redrive = db.execute("SELECT count(*), coalesce(sum(redrive), 0) FROM dead_letters WHERE sink = ?",
                                   (sink,)).fetchone()
        sinks.append({"sink": sink, "acked": acked, "depth": max(0, top - acked),
                      "oldest_age_s": round((now_ns - oldest[0]) / 1e9, 3) if oldest else 0.0,
                      "dead_letters": dead, "redrive_requested": redrive})
    return {
        "events": rows[0], "first_rowid": rows[1] or 0, "last_rowid": top,
        "sinks": sinks,
        "sources": [{"src": s, "last_seq": n} for s, n in db.execute("SELECT src, last_seq FROM sources ORDER BY src")],
    }


def dead_letters(db: sqlite3.Connection, sink: str | None = None, limit: int = 1000) -> list[DeadLetter]:
    where, args = ("WHERE sink = ?", (sink,)) if sink else ("", ())
    return [DeadLetter(*r[:-1], bool(r[-1])) for r in db.execute(
        f"SELECT {_DL_COLUMNS} FROM dead_letters {where} ORDER BY id LIMIT ?", (*args, limit))]


def drop_dead_letters(db: sqlite3.Connection, sink: str, ids: list[int] | None) -> int:
    """Delete dead letters of ``sink`` for good (all of them with ``ids=None``); returns how many."""
    if ids is None:
        return db.execute("DELETE FROM dead_letters WHERE sink = ?", (sink,)).rowcount
    return db.executemany("DELETE FROM dead_letters WHERE sink = ? AND id = ?", [(sink, i) for i in ids]).rowcount


def request_redrive(db: sqlite3.Connection, sink: str, ids: list[int] | None) -> int:
    """Flag dead letters of ``sink`` (all of them with ``ids=None``) for re-delivery; returns how many."""
    if ids is None:
        cur = db.execute("UPDATE dead_letters SET redrive = 1 WHERE sink = ? AND redrive = 0", (sink,))
    else:
        cur = db.executemany("UPDATE dead_letters SET redrive = 1 WHERE sink = ? AND id = ?",
                             [(sink, i) for i in ids])
    return cur.rowcount

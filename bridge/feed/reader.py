"""Read-only access to the outbox for the feed: short read transactions on pooled ``mode=ro`` connections.

Each call opens one read transaction, reads what it needs and ends it before returning, so a waiting long-poll or
stream never holds a snapshot (WAL checkpoints proceed) and never takes a write lock. The schema is the outbox's
(docs/bridge/outbox.md §2): ``events(rowid, src, seq, captured, envelope)``, rowids from AUTOINCREMENT.
"""

from __future__ import annotations

import os
import queue
import sqlite3
from contextlib import contextmanager
from typing import NamedTuple
from urllib.parse import quote

from bridge.feed.config import FeedError
from bridge.feed.protocol import Filter, unpack

SCAN_BUDGET = 50_000  # rows one request may examine past its filters before it answers with what it has
_BATCH = 1000  # rows per SELECT while scanning
_IDLE_CONNECTIONS = 8  # read-only connections kept open between requests


class FeedRow(NamedTuple):
    rowid: int
    src: str
    envelope: bytes  # the packed msgpack envelope, as stored
    event: dict | None  # the unpacked envelope when a filter needed it, else None


class Batch(NamedTuple):
    rows: list[FeedRow]
    cursor: int  # where the next read starts: every row up to here was returned, filtered out or pruned
    gap: int | None  # first available rowid when rows right after ``after`` were pruned, else None
    head: int  # highest rowid ever allocated (sqlite_sequence), 0 for an outbox never written


class OutboxReader:
    def __init__(self, path: str | os.PathLike):
        self.path = os.path.abspath(os.fspath(path))
        self._uri = f"file:{quote(self.path)}?mode=ro"
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False, timeout=5.0)
        except sqlite3.Error as exc:
            raise FeedError(f"feed cannot open the outbox {self.path} read-only ({exc}); check [bridge] outbox "
                            f"and the file's permissions") from None

    @contextmanager
    def _snapshot(self):
        """One read transaction on a pooled connection; ended (and the connection returned) on exit."""
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            db = self._connect()
        ok = False
        try:
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")
            ok = True
        except sqlite3.Error as exc:
            raise FeedError(f"feed cannot read the outbox {self.path} ({' '.join(str(exc).split())})") from None
        finally:
            if ok and self._idle.qsize() < _IDLE_CONNECTIONS:
                self._idle.put(db)
            else:
                db.close()

    def check(self) -> None:
        """Raise ``FeedError`` unless the file is readable and looks like a tillwire outbox."""
        with self._snapshot() as db:
            try:
                db.execute("SELECT rowid, src, seq, envelope FROM events LIMIT 0").fetchall()
            except sqlite3.OperationalError:
                raise FeedError(f"{self.path} is not a tillwire outbox (no events table); point the feed at the "
                                f"bridge's outbox file") from None

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    @staticmethod
    def _bounds(db: sqlite3.Connection) -> tuple[int | None, int]:
        oldest, head = db.execute("SELECT (SELECT min(rowid) FROM events), "
                                  "(SELECT seq FROM sqlite_sequence WHERE name = 'events')").fetchone()
        return oldest, head or 0

    def head(self) -> int:
        with self._snapshot() as db:
            return self._bounds(db)[1]

    def read(self, after: int, limit: int, filt: Filter = Filter(), budget: int = SCAN_BUDGET) -> Batch:
        """The oldest ``limit`` rows after ``after`` that pass ``filt``, examining at most ``budget`` rows."""
        with self._snapshot() as db:
            oldest, head = self._bounds(db)
            gap = None
            if after > 0:
                if oldest is not None and oldest > after + 1:
                    gap = oldest  # rowids are never reused nor skipped: after+1 … oldest-1 were pruned
                elif oldest is None and head > after:
                    gap = head + 1
            rows: list[FeedRow] = []
            cursor = after
            while True:
                step = min(_BATCH, budget) if filt.active else min(limit - len(rows), _BATCH)
                got = db.execute("SELECT rowid, src, envelope FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                 (cursor, step)).fetchall()
                for rowid, src, env in got:
                    cursor = rowid
                    budget -= 1
                    event = unpack(env) if filt.needs_type else None
                    if filt.matches(src, event["type"] if event else None):
                        rows.append(FeedRow(rowid, src, env, event))
                        if len(rows) >= limit:
                            return Batch(rows, cursor, gap, head)
                if len(got) < step:  # reached the end of the table: everything up to head is accounted for
                    return Batch(rows, max(cursor, head), gap, head)
                if budget <= 0:
                    return Batch(rows, cursor, gap, head)

    def read_last(self, after: int, count: int, filt: Filter = Filter(), budget: int = SCAN_BUDGET) -> Batch:
        """The newest ``count`` rows after ``after`` that pass ``filt``, oldest first; the cursor is the head."""
        with self._snapshot() as db:
            _, head = self._bounds(db)
            found: list[FeedRow] = []
            below = head + 1
            while len(found) < count and budget > 0:
                step = min(_BATCH, budget) if filt.active else min(count - len(found), _BATCH)
                got = db.execute("SELECT rowid, src, envelope FROM events WHERE rowid > ? AND rowid < ? "
                                 "ORDER BY rowid DESC LIMIT ?", (after, below, step)).fetchall()
                for rowid, src, env in got:
                    below = rowid
                    budget -= 1
                    event = unpack(env) if filt.needs_type else None
                    if filt.matches(src, event["type"] if event else None):
                        found.append(FeedRow(rowid, src, env, event))
                        if len(found) >= count:
                            break
                if len(got) < step:
                    break
            found.reverse()
            return Batch(found, max(after, head), None, head)

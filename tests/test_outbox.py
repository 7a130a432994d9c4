"""The durable outbox (docs/bridge/outbox.md) against real SQLite files, and real processes killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgpack
import pytest

from bridge.outbox import Outbox, OutboxCorrupt, OutboxFull

ROOT = Path(__file__).resolve().parent.parent
A, B = "pos://s1/t1/printer", "pos://s1/t1/terminal"


def ev(src, n=0, ts=0):
    return (src, "printer.line", {"text": f"line {n}", "align": "left"}, ts)


def unpack(row):
    return msgpack.unpackb(row.envelope, raw=False)


def all_rows(box, sink="default"):
    return box._db.execute("SELECT rowid, src, seq, envelope FROM events ORDER BY rowid").fetchall()


def test_seq_per_source_from_1_and_envelope(tmp_path):
    with Outbox.open(tmp_path / "o.db") as box:
        keys = box.append([ev(A, 0, 5), ev(B, 1), ev(A, 2)])
        assert keys == [(A, 1), (B, 1), (A, 2)]
        rows = box.pending("default", 10)
        assert [unpack(r) for r in rows][0] == {"src": A, "seq": 1, "ts": 5, "type": "printer.line",
                                                "data": {"text": "line 0", "align": "left"}}
        assert [(r.src, r.seq) for r in rows] == keys
        assert box.append([]) == []


def test_seq_persisted_across_reopen_and_never_reused_after_prune(tmp_path):
    path = tmp_path / "o.db"
    with Outbox.open(path, sinks=("nats",)) as box:
        box.append([ev(A, i) for i in range(3)])
        box.ack("nats", box.pending("nats", 10)[-1].rowid)
        assert box.prune(now=time.time()) == 3
        assert box.depth("nats") == 0
    with Outbox.open(path, sinks=("nats",)) as box:
        assert box.last_seq(A) == 3
        assert box.append([ev(A), ev(B)]) == [(A, 4), (B, 1)]
        rowids = [r.rowid for r in box.pending("nats", 10)]
        assert min(rowids) > 3  # rowids are not reused either (AUTOINCREMENT)


def test_cursors_independent_per_sink(tmp_path):
    with Outbox.open(tmp_path / "o.db", sinks=("nats", "mqtt")) as box:
        box.append([ev(A, i) for i in range(5)])
        rows = box.pending("nats", 2)
        box.ack("nats", rows[-1].rowid)
        assert box.depth("nats") == 3 and box.depth("mqtt") == 5
        assert [r.seq for r in box.pending("nats", 10)] == [3, 4, 5]
        assert [r.seq for r in box.pending("mqtt", 2)] == [1, 2]
        with pytest.raises(ValueError):  # acking rows not yet captured would skip them later
            box.ack("nats", 6)
        box.ack("nats", 1)  # a cursor never moves back
        assert box.depth("nats") == 3
        with pytest.raises(KeyError):
            box.pending("kafka", 1)


def test_cursor_survives_reopen(tmp_path):
    path = tmp_path / "o.db"
    with Outbox.open(path, sinks=("nats",)) as box:
        box.append([ev(A, i) for i in range(4)])
        box.ack("nats", box.pending("nats", 3)[-1].rowid)
    with Outbox.open(path, sinks=("nats",)) as box:
        assert [r.seq for r in box.pending("nats", 10)] == [4]


def test_pending_keeps_seq_order_per_source(tmp_path):
    with Outbox.open(tmp_path / "o.db") as box:
        rng = random.Random(3)
        for _ in range(20):
            box.append([ev(rng.choice([A, B])) for _ in range(rng.randrange(1, 6))])
        rows = box.pending("default", 1000)
        for src in (A, B):
            seqs = [r.seq for r in rows if r.src == src]
            assert seqs == list(range(1, len(seqs) + 1))


def test_prune_waits_for_every_sink_and_retention(tmp_path):
    with Outbox.open(tmp_path / "o.db", sinks=("nats", "mqtt"), retention_s=60) as box:
        t0 = 1_000_000.0
        box.append([ev(A, i) for i in range(3)], now=t0)
        box.append([ev(A, i) for i in range(2)], now=t0 + 30)
        last = box.pending("nats", 10)[-1].rowid
        box.ack("nats", last)
        assert box.prune(now=t0 + 1000) == 0  # mqtt has acknowledged nothing
        box.ack("mqtt", box.pending("mqtt", 3)[-1].rowid)
        assert box.prune(now=t0 + 59) == 0  # acknowledged by both, but retention not over
        assert box.prune(now=t0 + 60) == 3
        box.ack("mqtt", last)
        assert box.prune(now=t0 + 89) == 0
        assert box.prune(now=t0 + 90) == 2
        assert box.depth("nats") == box.depth("mqtt") == 0


def test_depth_and_oldest_age(tmp_path):
    with Outbox.open(tmp_path / "o.db") as box:
        assert box.depth("default") == 0 and box.oldest_age_s("default") == 0.0
        box.append([ev(A)], now=100.0)
        box.append([ev(A)], now=110.0)
        assert box.depth("default") == 2
        assert box.oldest_age_s("default", now=125.0) == pytest.approx(25.0)
        box.ack("default", box.pending("default", 1)[0].rowid)
        assert box.oldest_age_s("default", now=125.0) == pytest.approx(15.0)


def test_pragmas_asserted(tmp_path):
    with Outbox.open(tmp_path / "o.db") as box:
        assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert box._db.execute("PRAGMA user_version").fetchone()[0] == 2
    # a second connection sees WAL persisted in the file header
    con = sqlite3.connect(tmp_path / "o.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_foreign_sqlite_file_refused(tmp_path):
    con = sqlite3.connect(tmp_path / "other.db")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(Exception, match="not a tillwire outbox"):
        Outbox.open(tmp_path / "other.db")


@pytest.mark.parametrize("check", ["quick", "full"])
def test_corrupted_file_gives_one_clear_error(tmp_path, check):
    path = tmp_path / "o.db"
    with Outbox.open(path) as box:
        for i in range(50):
            box.append([ev(A, i) for _ in range(20)])
        box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    # scribble over the middle of the second and third pages (b-tree pages of the tables)
    for p in (1, 2):
        data[p * page + 8: p * page + page // 2] = b"\xa5" * (page // 2 - 8)
    path.write_bytes(bytes(data))
    with pytest.raises(OutboxCorrupt) as info:
        Outbox.open(path, check=check)
    msg = str(info.value)
    assert str(path) in msg and "move the file" in msg and "\n" not in msg
    assert "Traceback" not in msg


def test_damaged_leaf_page_reported_by_the_check(tmp_path):
    """Here the check itself returns findings (a page whose cell count overflows it), not an SQLite error."""
    path = tmp_path / "o.db"
    with Outbox.open(path) as box:
        for i in range(50):
            box.append([ev(A, i) for _ in range(20)])
        box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    leaf = len(data) // page - 2
    assert data[leaf * page] == 13  # a table leaf page
    data[leaf * page + 3: leaf * page + 5] = (400).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    with pytest.raises(OutboxCorrupt) as info:
        Outbox.open(path)
    assert f"Page {leaf + 1}" in str(info.value) and "\n" not in str(info.value)


def test_garbage_file_gives_one_clear_error(tmp_path):
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(OutboxCorrupt, match=str(path)):
        Outbox.open(path)


def test_outbox_full_and_recovery(tmp_path):
    path = tmp_path / "o.db"
    with Outbox.open(path, sinks=("nats",), max_bytes=64 * 1024) as box:
        big = ("pos://x", "printer.image", {"bits": b"\x55" * 2000}, 0)
        stored = []
        with pytest.raises(OutboxFull) as info:
            for _ in range(200):
                stored += box.append([big, big])
        full = info.value
        assert full.events == 2 and full.nbytes > 4000 and full.max_bytes == 64 * 1024
        assert "not stored" in str(full)
        n = len(stored)
        assert n > 4
        # nothing committed was lost, no seq was used by the failed batch
        assert box.depth("nats") == n and box.last_seq("pos://x") == n
        with pytest.raises(OutboxFull):
            box.append([big])
        box.ack("nats", box.pending("nats", n)[-1].rowid)
        assert box.prune(now=time.time()) == n
        assert box.append([big, big]) == [("pos://x", n + 1), ("pos://x", n + 2)]
    assert os.path.getsize(path) <= 64 * 1024
    with Outbox.open(path, sinks=("nats",), max_bytes=64 * 1024) as box:
        assert [r.seq for r in box.pending("nats", 10)] == [n + 1, n + 2]


CHILD = textwrap.dedent("""
    import random, sys
    sys.path.insert(0, {root!r})
    from bridge.outbox import Outbox
    box = Outbox.open(sys.argv[1], sinks=("nats",))
    rng = random.Random(int(sys.argv[2]))
    srcs = ["pos://s/t/a", "pos://s/t/b", "pos://s/t/c"]
    print("ready", flush=True)
    while True:
        batch = [(rng.choice(srcs), "printer.line", {{"text": "x" * rng.randrange(80)}}, 0)
                 for _ in range(rng.randrange(1, 60))]
        keys = box.append(batch)
        last = {{}}
        for src, seq in keys:
            last[src] = seq
        sys.stdout.write(" ".join(f"{{s}}={{q}}" for s, q in last.items()) + "\\n")
        sys.stdout.flush()
""")


def test_crash_safety_sigkill(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    path = tmp_path / "crash.db"
    rng = random.Random(2024)
    reported: dict[str, int] = {}
    kills_after_commit = 0
    for cycle in range(24):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(cycle)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.08))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        lines = out.split(b"\n")
        for line in lines[:-1]:  # the last piece may be a line cut by the kill
            for item in line.decode().split():
                src, seq = item.split("=")
                assert int(seq) > reported.get(src, 0)
                reported[src] = int(seq)
                kills_after_commit += 1
        with Outbox.open(path, sinks=("nats",)) as box:
            rows = all_rows(box)
            by_src: dict[str, list[int]] = {}
            for rowid, src, seq, blob in rows:
                env = msgpack.unpackb(blob, raw=False)
                assert (env["src"], env["seq"]) == (src, seq)
                by_src.setdefault(src, []).append(seq)
            for src, seq in reported.items():
                seqs = by_src.get(src, [])
                # every reported commit is there exactly once, with no gap and no reused seq
                assert seqs == list(range(1, len(seqs) + 1))
                assert len(seqs) >= seq
                assert box.last_seq(src) == len(seqs)
    assert kills_after_commit > 0


def test_max_bytes_below_current_size_refused(tmp_path):
    path = tmp_path / "o.db"
    with Outbox.open(path) as box:
        box.append([("pos://x", "printer.image", {"bits": b"\x00" * 4000}, 0) for _ in range(40)])
    with pytest.raises(Exception, match="raise max_bytes or drain"):
        Outbox.open(path, max_bytes=16 * 1024)


def test_schema_created_once_and_reopen_keeps_rows(tmp_path):
    path = tmp_path / "o.db"
    with Outbox.open(path, sinks=("a",)) as box:
        box.append([ev(A)])
    with Outbox.open(path, sinks=("a", "b")) as box:  # a sink added later starts before every retained row
        assert box.depth("a") == 1 and box.depth("b") == 1


def test_without_sinks_retention_alone_prunes(tmp_path):
    # Only the embedded feed reads (no acknowledging sink): rows stay retention_s, then go; seq never restarts.
    with Outbox.open(tmp_path / "o.db", sinks=(), retention_s=60) as box:
        box.append([ev(A, 0), ev(A, 1)], now=1000.0)
        box.append([ev(A, 2)], now=1100.0)
        assert box.prune(now=1059.0) == 0
        assert box.prune(now=1061.0) == 2
        assert [r[2] for r in all_rows(box)] == [3]
        assert box.append([ev(A, 3)], now=1200.0) == [(A, 4)]
        assert box.used_bytes() > 0

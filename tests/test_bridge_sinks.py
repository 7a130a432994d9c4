"""A real `tillwire run` child delivering to sinks: the file sink end to end, `GET /sinks`, `tillwire outbox`,
SIGKILL while delivering (every event in the files, duplicates only of the last batch), dead letters via the CLI.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bridge_helpers import PREFIX, ROOT, free_port, high_water, start_bridge, stop, wait_for, wait_port, write_config

from bridge.outbox import Outbox
from bridge.sinks.base import Outgoing, Parked
from bridge.sinks.store import SinkStore

LABEL = b"]E04006381333931\r"


def scanner_config(tmp_path: Path, port: int, sinks: str, feed: int | bool = False, **bridge) -> Path:
    return write_config(tmp_path, [{"name": "scanner", "protocol": "scanner",
                                    "transport": f"tcp-listen://127.0.0.1:{port}"}], feed=feed, extra_toml=sinks,
                        **bridge)


FILE_SINK = """
[[sinks]]
name = "archive"
kind = "file"
dir = "files"
"""


def file_events(directory: Path) -> list[dict]:
    if not directory.exists():
        return []
    out = []
    for f in sorted(directory.iterdir()):
        for line in f.read_text().splitlines():
            out.append(json.loads(line))
    return out


def tillwire(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_events_reach_the_file_sink_and_sinks_are_observable(tmp_path):
    port, feed_port = free_port(), free_port()
    cfg = scanner_config(tmp_path, port, FILE_SINK, feed=feed_port)
    proc = start_bridge(cfg)
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(LABEL * 20)
            wait_for(lambda: sum(e["type"] == "scanner.data" for e in file_events(tmp_path / "files")) == 20,
                     what="20 scans in the files")
        with urllib.request.urlopen(f"http://127.0.0.1:{feed_port}/sinks", timeout=5) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            (st,) = json.loads(resp.read())["sinks"]
        assert st["name"] == "archive" and st["kind"] == "file" and st["state"] in ("up", "idle")
        assert st["delivered"] >= 21 and st["retries"] == 0 and str(tmp_path / "files") in st["target"]
        status = tillwire("outbox", "--config", str(cfg))
        assert status.returncode == 0, status.stderr
        assert "sink archive" in status.stdout and "file" in status.stdout
    finally:
        rc, out, err = stop(proc)
    assert rc == 0, err
    assert "sink archive" in out and "delivered" in out  # the summary
    events = file_events(tmp_path / "files")
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))          # one source: every seq once, in order
    assert high_water(tmp_path / "outbox.sqlite") == {PREFIX + "scanner": len(seqs)}
    js = json.loads(tillwire("outbox", "--config", str(cfg), "--json").stdout)
    assert js["sinks"][0]["depth"] == 0 and js["sinks"][0]["acked"] == js["last_rowid"]


def test_sigkill_while_delivering_loses_nothing(tmp_path):
    port = free_port()
    cfg = scanner_config(tmp_path, port, FILE_SINK)
    sent = 0
    for cycle in range(4):
        proc = start_bridge(cfg)
        try:
            wait_port(port, proc)
            with socket.create_connection(("127.0.0.1", port)) as s:
                for _ in range(30):
                    s.sendall(LABEL * 5)
                    sent += 5
                    time.sleep(0.002)
                time.sleep(0.05 * cycle)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=15)
    proc = start_bridge(cfg)  # a last clean run delivers what is left
    try:
        wait_port(port, proc)
        stored = high_water(tmp_path / "outbox.sqlite")[PREFIX + "scanner"]
        wait_for(lambda: len({e["seq"] for e in file_events(tmp_path / "files")}) >= stored, timeout=20,
                 what="every stored event in the files")
    finally:
        rc, out, err = stop(proc)
    assert rc == 0, err
    stored = high_water(tmp_path / "outbox.sqlite")[PREFIX + "scanner"]
    events = file_events(tmp_path / "files")
    seqs = [e["seq"] for e in events]
    assert set(seqs) == set(range(1, stored + 1))          # lost: 0
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == sorted(first_seen)                 # out of order: 0
    scans = {e["seq"] for e in events if e["type"] == "scanner.data"}
    assert len(scans) <= sent                               # nothing invented


def test_dead_letters_listed_and_queued_for_redrive_by_the_cli(tmp_path):
    path = tmp_path / "o.sqlite"
    with Outbox.open(path, sinks=("backoffice",)) as box:
        box.append([(PREFIX + "terminal", "payment.result", {"approved": True}, 1)])
        row = box.pending("backoffice", 1)[0]
    store = SinkStore(str(path), "backoffice")
    ev = Outgoing(row.rowid, row.src, row.seq, "payment.result", 1, row.envelope, "realtime")
    store.commit(row.rowid, [(ev, Parked(0, 422, "HTTP 422 Unprocessable Entity", b'{"error": "unknown tid"}'))])
    store.close()
    listing = tillwire("outbox", "--outbox", str(path), "dead-letters")
    assert listing.returncode == 0
    assert f"#1 sink backoffice {PREFIX}terminal:1 payment.result" in listing.stdout
    assert "HTTP 422" in listing.stdout and '{"error": "unknown tid"}' in listing.stdout
    js = [json.loads(line) for line in tillwire("outbox", "--outbox", str(path), "dead-letters", "--json")
          .stdout.splitlines()]
    assert js[0]["status"] == 422 and js[0]["redrive"] is False
    bad = tillwire("outbox", "--outbox", str(path), "redrive", "--sink", "backoffice")
    assert bad.returncode == 2 and "needs --all or one or more --id" in bad.stderr
    missing = tillwire("outbox", "--outbox", str(path), "redrive", "--sink", "backoffice", "--id", "9")
    assert missing.returncode == 2 and "no dead letter #9" in missing.stderr and "nothing changed" in missing.stderr
    ok = tillwire("outbox", "--outbox", str(path), "redrive", "--sink", "backoffice", "--id", "1")
    assert ok.returncode == 0 and "1 dead letter(s) of sink backoffice queued" in ok.stdout
    assert "[redrive queued]" in tillwire("outbox", "--outbox", str(path), "dead-letters").stdout
    status = tillwire("outbox", "--outbox", str(path)).stdout
    assert "1 dead letters (1 queued for redrive)" in status


def test_outbox_command_mistakes_are_one_line(tmp_path):
    r = tillwire("outbox")
    assert r.returncode == 2 and "give --config FILE" in r.stderr and r.stderr.count("\n") == 1
    r = tillwire("outbox", "--outbox", str(tmp_path / "none.sqlite"))
    assert r.returncode == 2 and "no outbox at" in r.stderr
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all, clearly" * 10)
    r = tillwire("outbox", "--outbox", str(tmp_path / "junk.sqlite"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_a_failing_sink_raises_sink_down_and_clears_it_when_it_delivers(tmp_path):
    port = free_port()
    blocker = tmp_path / "files"
    blocker.write_text("a file where the sink wants its directory")
    cfg = scanner_config(tmp_path, port, FILE_SINK + "backoff_cap_s = 0.2\n", sink_alert_s=0.5)
    proc = start_bridge(cfg)
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(LABEL * 3)

            def alerts():
                from bridge_helpers import rows
                return [env["data"] for _, _, _, env in rows(tmp_path / "outbox.sqlite")
                        if env["type"] == "bridge.alert" and env["data"]["kind"] == "sink_down"]

            raised = wait_for(lambda: alerts(), what="a sink_down alert")[0]
            assert raised["active"] is True and raised["sink"] == "archive" and raised["depth"] >= 3
            assert "sink archive" in raised["message"] and "has not delivered" in raised["message"]
            blocker.unlink()
            wait_for(lambda: any(a["active"] is False for a in alerts()), what="the alert cleared")
            wait_for(lambda: any(e["type"] == "bridge.alert" and e["data"]["data"]["active"] is False
                                 for e in file_events(tmp_path / "files")), what="the cleared alert delivered")
    finally:
        rc, out, err = stop(proc)
    assert rc == 0, err
    assert "sink archive" in err  # the failure and the recovery are on stderr
    scans = [e for e in file_events(tmp_path / "files") if e["type"] == "scanner.data"]
    assert len(scans) == 3


def test_dead_letters_can_be_dropped(tmp_path):
    path = tmp_path / "o.sqlite"
    with Outbox.open(path, sinks=("backoffice",)) as box:
        box.append([(PREFIX + "terminal", "payment.result", {"approved": True}, i) for i in range(3)])
        rows_ = box.pending("backoffice", 3)
    store = SinkStore(str(path), "backoffice")
    evs = [Outgoing(r.rowid, r.src, r.seq, "payment.result", 1, r.envelope, "realtime") for r in rows_]
    store.commit(rows_[-1].rowid, [(ev, Parked(0, 422, "HTTP 422", b"")) for ev in evs])
    store.close()
    one = tillwire("outbox", "--outbox", str(path), "drop", "--sink", "backoffice", "--id", "2")
    assert one.returncode == 0 and "1 dead letter(s) of sink backoffice deleted" in one.stdout
    listing = tillwire("outbox", "--outbox", str(path), "dead-letters").stdout
    assert "#1 " in listing and "#2 " not in listing and "#3 " in listing
    rest = tillwire("outbox", "--outbox", str(path), "drop", "--sink", "backoffice", "--all")
    assert "2 dead letter(s) of sink backoffice deleted" in rest.stdout
    assert tillwire("outbox", "--outbox", str(path), "dead-letters").stdout == "no dead letters\n"

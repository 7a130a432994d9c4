"""`tillwire run` as a real process: a till prints over TCP, events land in the outbox; SIGTERM drains; SIGKILL
at random moments loses no committed event; seq continues across restarts and is never reused."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict

from bridge_helpers import PREFIX, ROOT, free_port, high_water, rows, start_bridge, stop, wait_for, wait_port, \
    write_config

PRINTER = PREFIX + "printer"


def printer_config(tmp_path, port, **bridge):
    return write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                    "transport": f"tcp-listen://127.0.0.1:{port}"}], **bridge)


def lines_of(outbox, src=PRINTER):
    return [env["data"]["text"] for _, s, _, env in rows(outbox) if s == src and env["type"] == "printer.line"]


def test_a_till_prints_over_tcp_and_sigterm_drains(tmp_path):
    port = free_port()
    cfg = printer_config(tmp_path, port)
    proc = start_bridge(cfg)
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as till:
            till.sendall(b"\x1b@" + b"".join(b"item %d\n" % i for i in range(20)) + b"TOTAL 12.50")
            # Everything up to the last LF is an event as soon as it is read; "TOTAL 12.50" has no LF yet:
            # the decoder holds it until the stream ends.
            wait_for(lambda: len(lines_of(tmp_path / "outbox.sqlite")) == 20, what="20 stored lines")
            code, out, err = stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    assert "Traceback" not in err
    texts = lines_of(tmp_path / "outbox.sqlite")
    assert texts == [f"item {i}" for i in range(20)] + ["TOTAL 12.50"]  # the drain flushed the held line
    events = [env for _, s, _, env in rows(tmp_path / "outbox.sqlite") if s == PRINTER]
    states = [e["data"]["state"] for e in events if e["type"] == "device.status"]
    assert states[0] == "open" and states[-1] == "closed"
    assert all(e["ts"] > 0 for e in events)
    assert "summary" in out and "stored" in out


def test_the_feed_serves_what_the_bridge_stores(tmp_path):
    port, feed_port = free_port(), free_port()
    cfg = printer_config(tmp_path, port)
    cfg.write_text(cfg.read_text().replace("enabled = false", f'enabled = true\nlisten = "127.0.0.1:{feed_port}"'))
    proc = start_bridge(cfg, "--quiet")
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as till:
            till.sendall(b"\x1b@Thank you\n")
            wait_for(lambda: "Thank you" in lines_of(tmp_path / "outbox.sqlite"), what="the line stored")
        tail = subprocess.run([sys.executable, "-m", "bridge.cli", "tail", "--url", f"http://127.0.0.1:{feed_port}",
                               "--format", "jsonl", "--type", "printer.*", "-n", "10"],
                              capture_output=True, timeout=30, cwd=ROOT)
        code, out, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    assert f"http://127.0.0.1:{feed_port}" in out  # the start-up line names the feed
    assert tail.returncode == 0, tail.stderr
    events = [json.loads(line) for line in tail.stdout.decode().splitlines()]
    assert [(e["src"], e["type"]) for e in events] == [(PRINTER, "printer.init"), (PRINTER, "printer.line")]
    assert events[1]["data"]["text"] == "Thank you" and events[1]["seq"] > 0


def test_seq_continues_across_restarts(tmp_path):
    port = free_port()
    cfg = printer_config(tmp_path, port)
    for run in range(2):
        proc = start_bridge(cfg, "--quiet")
        try:
            wait_port(port, proc)
            with socket.create_connection(("127.0.0.1", port)) as till:
                till.sendall(b"run %d\n" % run)
                wait_for(lambda: f"run {run}" in lines_of(tmp_path / "outbox.sqlite"), what="the line")
            code, _, err = stop(proc)
            assert code == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
    seqs = [q for _, s, q, _ in rows(tmp_path / "outbox.sqlite") if s == PRINTER]
    assert seqs == list(range(1, len(seqs) + 1))
    assert high_water(tmp_path / "outbox.sqlite")[PRINTER] == len(seqs)


def _stream(port: int, cycle: int, stop_event: threading.Event) -> None:
    """A till printing ~5,000 lines/s (a busy device, far above a real printer), until the bridge dies."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as till:
            i = 0
            while not stop_event.is_set():
                till.sendall(b"c%d l%d\n" % (cycle, i))
                i += 1
                if i % 5 == 0:
                    time.sleep(0.001)
    except OSError:
        pass  # the bridge was killed


def test_sigkill_at_random_moments_loses_no_committed_event(tmp_path):
    """Kill -9 while a device streams, again and again on the same outbox. After each kill every event seen
    committed before is still there, unchanged and exactly once; each source's seqs are 1..n without a gap, and
    the lines of each run are in the order they were sent."""
    cycles = int(os.environ.get("TILLWIRE_CRASH_CYCLES", "20"))
    rng = random.Random(int(os.environ.get("TILLWIRE_CRASH_SEED", "5")))
    port = free_port()
    cfg = printer_config(tmp_path, port)
    outbox = tmp_path / "outbox.sqlite"
    seen: dict[tuple[str, int], dict] = {}
    for cycle in range(cycles):
        proc = start_bridge(cfg, "--quiet")
        stop_event = threading.Event()
        try:
            wait_port(port, proc)
            streamer = threading.Thread(target=_stream, args=(port, cycle, stop_event))
            streamer.start()
            time.sleep(rng.uniform(0.05, 0.5))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            stop_event.set()
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        streamer.join(5)
        stored = rows(outbox)
        now = {(s, q): env for _, s, q, env in stored}
        for key, env in seen.items():
            assert now.get(key) == env, f"cycle {cycle}: committed event {key} changed or vanished"
        by_src = defaultdict(list)
        for _, s, q, _ in stored:
            by_src[s].append(q)
        marks = high_water(outbox)
        for src, seqs in by_src.items():
            assert seqs == list(range(1, len(seqs) + 1)), f"cycle {cycle}: gap or reuse in {src}"
            assert marks[src] == len(seqs)
        per_cycle = defaultdict(list)
        for text in (env["data"]["text"] for _, s, _, env in stored if env["type"] == "printer.line"):
            c, _, n = text.partition(" l")
            per_cycle[c].append(int(n))
        for c, numbers in per_cycle.items():
            assert numbers == sorted(numbers), f"lines of {c} out of order"
        seen = now
    assert len(lines_of(outbox)) > 10 * cycles  # the kills did not all land before any capture


def test_a_feed_port_in_use_is_one_line_and_exit_2(tmp_path):
    port = free_port()
    cfg = printer_config(tmp_path, port)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = busy.getsockname()[1]
        cfg.write_text(cfg.read_text().replace("enabled = false", f'enabled = true\nlisten = "127.0.0.1:{taken}"'))
        proc = start_bridge(cfg)
        code, err = proc.wait(20), proc.stderr.read().decode()
    assert code == 2
    assert err.count("\n") == 1 and str(taken) in err and "Traceback" not in err


def test_a_damaged_outbox_is_one_line_and_exit_2(tmp_path):
    port = free_port()
    cfg = printer_config(tmp_path, port)
    (tmp_path / "outbox.sqlite").write_bytes(b"this is not a database" * 100)
    proc = start_bridge(cfg)
    code, out, err = proc.wait(20), proc.stdout.read().decode(), proc.stderr.read().decode()
    assert code == 2
    assert err.count("\n") == 1 and "outbox.sqlite" in err and "Traceback" not in err

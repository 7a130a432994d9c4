"""`tillwire run` with a ``kind = "nats"`` sink, end to end: device bytes in, every stored event in the stream
once, in seq order per source — also when the broker is down while the bridge starts and captures."""

from __future__ import annotations

import signal
import socket
from collections import defaultdict

from bridge_helpers import PREFIX, free_port, rows, start_bridge, stop, wait_for, wait_port, write_config
from nats_fixture import NatsServer, nats_server, read_stream  # noqa: F401

import nats_fixture


def nats_config(tmp_path, port: int, url: str):
    sink = f"""
[[sinks]]
name = "bus"
kind = "nats"
url = "{url}"
batch_max_age_s = 0
connect_timeout_s = 1
backoff_base_s = 0.05
backoff_cap_s = 0.2
"""
    return write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                    "transport": f"tcp-listen://127.0.0.1:{port}"}], extra_toml=sink)


def stream_by_source(url: str) -> dict[str, list[int]]:
    out = defaultdict(list)
    for m in read_stream(url, "TILLWIRE"):
        out[m.headers["ce-source"]].append(int(m.headers["ce-seq"]))
    return dict(out)


def outbox_by_source(outbox) -> dict[str, list[int]]:
    out = defaultdict(list)
    for _, src, seq, _ in rows(outbox):
        out[src].append(seq)
    return {src: sorted(seqs) for src, seqs in out.items()}


def stream_count(url: str) -> int:
    try:
        return nats_fixture.stream_config(url, "TILLWIRE").state.messages
    except Exception:  # the stream is not there yet
        return 0


def print_lines(port: int, n: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as till:
        till.sendall(b"\x1b@" + b"".join(b"item %d\n" % i for i in range(n)))


def test_device_bytes_reach_the_stream_once_each_in_seq_order(tmp_path, nats_server):
    port = free_port()
    proc = start_bridge(nats_config(tmp_path, port, nats_server.url), "--quiet")
    try:
        wait_port(port, proc)
        print_lines(port, 50)
        wait_for(lambda: stream_count(nats_server.url) >= 51, timeout=20, what="the lines in the stream")
        code, _, err = stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 0 and "Traceback" not in err, err
    stored = outbox_by_source(tmp_path / "outbox.sqlite")
    assert stream_by_source(nats_server.url) == stored, "every stored event once, in seq order per source"
    lines = [m for m in read_stream(nats_server.url, "TILLWIRE") if m.subject.endswith(".printer.line")]
    assert len(lines) == 50 and lines[0].subject == "tillwire.test-store.till-1.printer.line"
    assert lines[0].headers["Nats-Msg-Id"].startswith(PREFIX + "printer:")


def test_a_broker_down_at_start_up_gets_everything_later(tmp_path):
    server = NatsServer()   # its port is chosen, nothing listens yet
    port = free_port()
    proc = start_bridge(nats_config(tmp_path, port, server.url), "--quiet")
    try:
        wait_port(port, proc)
        print_lines(port, 20)
        wait_for(lambda: sum(1 for r in rows(tmp_path / "outbox.sqlite") if r[3]["type"] == "printer.line") == 20,
                 what="the lines captured while the broker is down")
        server.start()
        wait_for(lambda: stream_count(server.url) >= 21, timeout=20, what="the lines delivered after the broker came")
        code, _, err = stop(proc, signal.SIGTERM)
        assert code == 0 and "Traceback" not in err, err
        assert stream_by_source(server.url) == outbox_by_source(tmp_path / "outbox.sqlite")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        server.cleanup()


def test_a_wrong_password_shows_in_sinks_and_the_log_without_the_password(tmp_path):
    import json
    import subprocess
    import sys
    import urllib.request

    from bridge_helpers import ROOT

    (tmp_path / "pw").write_text("wr0ng-pw-123\n")
    with NatsServer(extra_config='authorization { user: "till", password: "s3cret-pw-456" }') as server:
        port, feed = free_port(), free_port()
        cfg = write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                       "transport": f"tcp-listen://127.0.0.1:{port}"}], feed=feed, sink_drain_s=0,
                           extra_toml=f"""
[[sinks]]
name = "bus"
kind = "nats"
url = "{server.url}"
user = "till"
password_file = "pw"
connect_timeout_s = 1
backoff_base_s = 0.05
backoff_cap_s = 0.2
""")
        proc = start_bridge(cfg)
        try:
            wait_port(feed, proc)

            def sink_error():
                with urllib.request.urlopen(f"http://127.0.0.1:{feed}/sinks", timeout=2) as r:
                    sinks = json.loads(r.read())["sinks"]   # empty until the runners have started
                return sinks[0]["last_error"] if sinks else None
            error = wait_for(sink_error, timeout=15, what="the sink's error in /sinks")
            code, out, err = stop(proc, signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        outbox = subprocess.run([sys.executable, "-m", "bridge.cli", "outbox", "--config", str(cfg)],
                                capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert error == (f"{server.url} refused the credentials (user and password): authorization violation; "
                     f"check them against the server's accounts")
    assert "refused the credentials" in err
    for text in (error, out, err, outbox.stdout, outbox.stderr):
        assert "wr0ng-pw-123" not in text and "s3cret-pw-456" not in text

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

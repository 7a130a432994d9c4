"""The bridge's capture path (bridge issue targets, medians):

- capture throughput: chunks handed to the capture queue exactly as a transport hands them, decoded, enveloped
  and committed into the outbox at synchronous=FULL — target >= 50,000 events/s sustained;
- byte-in to committed latency at a till-like 200 events/s over a real TCP connection — target p99 <= 20 ms;
- resident memory of a `tillwire run` process serving 8 devices (taps and listeners, feed on) while they
  stream — target <= 80 MB.
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bridge.config import load  # noqa: E402
from bridge.service import Bridge  # noqa: E402
from protocols import Decoder  # noqa: E402
from bridge_helpers import free_port, start_bridge, stop, wait_for, wait_port, write_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECEIPT = (ROOT / "sessions/escpos/grocery-card.bin").read_bytes()


def _bridge(tmp_path, devices, **keys):
    cfg = write_config(tmp_path, devices, **keys)
    bridge = Bridge(load(cfg), log=lambda m: None)
    bridge.start()
    return bridge


def test_capture_into_outbox(measure, results, tmp_path):
    """Receipts from four printers go through queue → decoder → outbox, as fast as the bridge commits them."""
    names = [f"printer{i}" for i in range(4)]
    devices = [{"name": n, "protocol": "escpos", "transport": f"tcp-listen://127.0.0.1:{free_port()}"}
               for n in names]
    bridge = _bridge(tmp_path, devices)
    per_receipt = len(Decoder("escpos").events(RECEIPT))
    copies = 25 if results.quick else 400
    chunks = [RECEIPT[i:i + 512] for i in range(0, len(RECEIPT), 512)]
    nevents = per_receipt * copies * len(names)

    def run():
        start = bridge.totals.stored
        for _ in range(copies):
            for name in names:
                for c in chunks:
                    bridge.queue.chunk(time.time_ns(), name, "to_device", c)
        wait_for(lambda: bridge.totals.stored - start >= nevents, timeout=120, what="every event stored")

    try:
        fig = measure("bridge capture: queue → decode → outbox (FULL)", run, len(RECEIPT) * copies * len(names),
                      nevents, rounds=5)
        commits = bridge.totals.commits
        results.notes.append(f"bridge capture: {fig.events_s:,.0f} events/s (target >= 50,000), "
                             f"{bridge.totals.stored / max(commits, 1):.0f} events per commit on average")
    finally:
        bridge.close()
    assert bridge.totals.dropped_events == 0 and bridge.totals.queue_dropped_bytes == 0


def test_latency_at_till_rate(results, tmp_path):
    """A till sends one line every 5 ms (200 events/s); latency = committed time − the time the till sent it."""
    port = free_port()
    latencies: list[float] = []

    def stored(bodies, keys):
        now = time.time_ns()
        for _, kind, data, _ in bodies:
            sec, dot, frac = data.get("text", "").partition(".") if kind == "printer.line" else ("", "", "")
            if dot and sec.isdigit() and frac.isdigit():
                latencies.append((now - (int(sec) * 10**9 + int(frac))) / 1e6)

    cfg = write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                   "transport": f"tcp-listen://127.0.0.1:{port}"}])
    bridge = Bridge(load(cfg), log=lambda m: None, on_stored=stored)
    bridge.start()
    n = 200 if results.quick else 2000
    try:
        wait_port(port)
        with socket.create_connection(("127.0.0.1", port)) as till:
            till.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            next_at = time.monotonic()
            for _ in range(n):
                # seconds.nanoseconds: two short digit runs (a 13+ digit run would be masked as a card number)
                till.sendall(b"%d.%09d\n" % divmod(time.time_ns(), 10**9))
                next_at += 0.005
                time.sleep(max(0.0, next_at - time.monotonic()))
            wait_for(lambda: len(latencies) >= n, timeout=30, what="every line committed")
    finally:
        bridge.close()
    q = statistics.quantiles(latencies, n=100)
    results.notes.append(f"bridge byte-in → committed at 200 events/s: p50 {statistics.median(latencies):.2f} ms, "
                         f"p99 {q[98]:.2f} ms, max {max(latencies):.2f} ms over {n} events (target p99 <= 20 ms)")


class _Sink:
    """An upstream device that swallows what it is sent."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn):
        with conn:
            while conn.recv(65536):
                pass


def _rss_kb(pid: int) -> tuple[int, int]:
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def test_rss_of_a_bridge_serving_8_devices(results, tmp_path):
    """`tillwire run` with 4 TCP taps and 4 listeners (feed on) while every device streams receipts."""
    sink = _Sink()
    devices, ports = [], []
    for i in range(8):
        port = free_port()
        ports.append(port)
        if i < 4:
            url = f"tap+tcp://127.0.0.1:{port}?upstream=127.0.0.1:{sink.port}"
        else:
            url = f"tcp-listen://127.0.0.1:{port}"
        devices.append({"name": f"dev{i}", "protocol": "escpos", "transport": url})
    cfg = write_config(tmp_path, devices, feed=True)
    proc = start_bridge(cfg, "--quiet")
    seconds = 2 if results.quick else 10
    try:
        for port in ports:
            wait_port(port, proc)
        tills = [socket.create_connection(("127.0.0.1", p)) for p in ports]
        deadline = time.monotonic() + seconds
        samples = []
        while time.monotonic() < deadline:
            for till in tills:
                till.sendall(RECEIPT)
            samples.append(_rss_kb(proc.pid)[0])
            time.sleep(0.05)
        rss, hwm = _rss_kb(proc.pid)
        for till in tills:
            till.close()
    finally:
        code, _, err = stop(proc)
        sink.sock.close()
    assert code == 0, err
    results.notes.append(f"bridge RSS serving 8 devices: {statistics.median(samples) / 1024:.1f} MB median, "
                         f"peak {hwm / 1024:.1f} MB (target <= 80 MB)")

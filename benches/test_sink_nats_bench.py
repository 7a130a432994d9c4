"""The NATS JetStream sink (issue 6 targets; docs/bridge/sinks-nats.md), against a real local nats-server:

- sustained delivery outbox → JetStream with every PubAck checked, through the real ``SinkRunner``: events/s,
  median (target >= 20,000), with the server at ``sync_interval: always`` (fsync before every PubAck) and at its
  default (fsync every 2 minutes);
- drain of a backlog (1,000,000 events; with ``--quick`` 50,000, or 10,000 at ``sync_interval: always``) as after
  an outage: seconds from the runner's start until the last event is acknowledged (``TILLWIRE_NATS_BACKLOG``
  overrides the full size);
- latency from device byte to JetStream: a till writes one scanner line every 50 ms (20 events/s) to a
  ``tcp-listen://`` device of a ``tillwire run`` child; latency = the time a JetStream consumer received the
  stored event − the time the line was written; p50 and p99 (target p99 <= 50 ms).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bridge.config import load  # noqa: E402
from bridge.outbox import Outbox  # noqa: E402
from bridge.sinks.nats import NatsSink  # noqa: E402
from bridge.sinks.runner import SinkRunner  # noqa: E402
from bridge.sinks.settings import context_for  # noqa: E402
from bridge_helpers import free_port, start_bridge, stop, wait_port, write_config  # noqa: E402
from nats_fixture import NatsServer  # noqa: E402
from protocols.events import envelope, pack  # noqa: E402

SUSTAINED_FULL, SUSTAINED_QUICK = 20_000, 5_000
BACKLOG_FULL = 1_000_000
BACKLOG_QUICK = {"sync_default": 50_000, "sync_always": 10_000}   # fsync per message: ~5,000/s here
LATENCY_EVENTS_FULL, LATENCY_EVENTS_QUICK = 400, 60
TILL_INTERVAL_S = 0.05   # 20 events/s
APPEND_BATCH = 5_000
SOURCES = [f"pos://store-1/till-3/{d}" for d in ("printer", "terminal", "scanner")]


def fill_outbox(path: Path, n: int, sinks: tuple[str, ...]) -> int:
    """``n`` till-like events (printer lines, scans, payment statuses) in the outbox; returns their packed bytes."""
    box = Outbox.open(path, sinks=sinks)
    nbytes = 0
    try:
        for start in range(0, n, APPEND_BATCH):
            batch = []
            for i in range(start, min(n, start + APPEND_BATCH)):
                src = SOURCES[i % 3]
                if i % 3 == 0:
                    body = ("printer.line", {"text": f"1 x ARTICLE {i:07d}        {i % 997 / 10:8.2f}", "align": "left",
                                             "spans": []})
                elif i % 3 == 1:
                    body = ("payment.status", {"code": i % 256, "text": "Bitte warten"})
                else:
                    body = ("scanner.data", {"label": f"A{i:09d}", "symbology": "Code128", "aim": "]C0"})
                batch.append((src, body[0], body[1], 1_790_000_000_000_000_000 + i))
                nbytes += len(pack(envelope(src, i + 1, 1_790_000_000_000_000_000 + i,
                                            {"type": body[0], "data": body[1]})))
            box.append(batch)
    finally:
        box.close()
    return nbytes


def runner_for(tmp_path: Path, outbox: Path, name: str, url: str, stream: str) -> SinkRunner:
    """A runner built the way the bridge builds it, from a [[sinks]] table."""
    cfg_path = tmp_path / f"{name}.toml"
    cfg_path.write_text(f"""
[bridge]
source_prefix = "pos://store-1/till-3/"
outbox = "{outbox}"

[[devices]]
name = "scanner"
protocol = "scanner"
transport = "tcp-listen://127.0.0.1:0"

[[sinks]]
name = "{name}"
kind = "nats"
url = "{url}"
stream = "{stream}"
subject_prefix = "{name}"
max_batch = 2000
batch_max_age_s = 0
connect_timeout_s = 5
""")
    cfg = load(cfg_path)
    (s,) = cfg.sinks
    sink = NatsSink(s.name, s.options, context_for(cfg.site, cfg.till, cfg.source_prefix, s.options))
    return SinkRunner(str(outbox), s, sink, cfg.delivery, log=lambda line: None)


def deliver_all(runner: SinkRunner, n: int, timeout_s: float) -> float:
    """Start the runner, wait until ``n`` events are acknowledged; the seconds it took."""
    started = time.perf_counter()
    runner.start()
    deadline = time.monotonic() + timeout_s
    try:
        while runner.stats()["delivered"] < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"delivered {runner.stats()['delivered']} of {n} in {timeout_s} s: "
                                     f"{runner.stats()['last_error']}")
            time.sleep(0.002)
        return time.perf_counter() - started
    finally:
        runner.stop(0)
        runner.join(10)
        runner.sink.close()


@pytest.fixture(params=["sync_always", "sync_default"])
def server(request):
    with NatsServer(sync_always=request.param == "sync_always") as srv:
        srv.mode = request.param
        yield srv


def test_sustained_delivery_outbox_to_jetstream(measure, results, server, tmp_path):
    rounds = 1 if results.quick else 7
    n = SUSTAINED_QUICK if results.quick else SUSTAINED_FULL
    names = tuple(f"r{i}" for i in range(rounds + 1))    # a fresh cursor, stream and subjects per round (+1 warm-up)
    outbox = tmp_path / "outbox.sqlite"
    nbytes = fill_outbox(outbox, n, names)
    todo = list(names)

    def one_round():
        name = todo.pop(0)
        runner = runner_for(tmp_path, outbox, name, server.url, f"TW_{name}")
        deliver_all(runner, n, 120)
        stats = runner.stats()
        assert (stats["delivered"], stats["duplicates"], stats["parked"]) == (n, 0, 0)

    fig = measure(f"nats sink outbox → JetStream ({server.mode})", one_round, nbytes, n, rounds=rounds)
    results.notes.append(f"nats sink outbox → JetStream, acks checked, {server.mode}: {fig.events_s:,.0f} events/s "
                         f"median over {fig.rounds} round(s) of {n:,} (target >= 20,000)")


def test_drain_of_a_backlog_after_an_outage(results, server, tmp_path):
    n = BACKLOG_QUICK[server.mode] if results.quick else int(os.environ.get("TILLWIRE_NATS_BACKLOG", BACKLOG_FULL))
    outbox = tmp_path / "outbox.sqlite"
    fill_outbox(outbox, n, ("drain",))
    runner = runner_for(tmp_path, outbox, "drain", server.url, "TILLWIRE")
    seconds = deliver_all(runner, n, 3600)
    results.notes.append(f"nats sink drain of a {n:,}-event backlog ({server.mode}): {seconds:.1f} s "
                         f"({n / seconds:,.0f} events/s)")


def test_latency_device_byte_to_jetstream(results, tmp_path):
    """A till writes a scanner line every 50 ms; a JetStream consumer notes when each stored event arrives."""
    import nats

    n = LATENCY_EVENTS_QUICK if results.quick else LATENCY_EVENTS_FULL
    with NatsServer() as server:
        port = free_port()
        cfg = write_config(tmp_path, [{"name": "scanner", "protocol": "scanner",
                                       "transport": f"tcp-listen://127.0.0.1:{port}",
                                       "options": {"suffix": "crlf"}}],
                           extra_toml=f'[[sinks]]\nname = "bus"\nkind = "nats"\nurl = "{server.url}"\n')
        proc = start_bridge(cfg, "--quiet")
        received: list[float] = []
        ready, done = threading.Event(), threading.Event()
        loop = asyncio.new_event_loop()

        async def consume():
            nc = await nats.connect(server.url, connect_timeout=5)
            js = nc.jetstream()
            deadline = time.monotonic() + 20
            while True:   # the sink creates the stream when it connects
                try:
                    await js.stream_info("TILLWIRE")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)

            async def on_msg(msg):
                if msg.subject.endswith(".scanner.data"):
                    received.append(time.perf_counter())
                    if len(received) >= n:
                        done.set()
            sub = await js.subscribe("tillwire.>", cb=on_msg, ordered_consumer=True)
            ready.set()
            while not done.is_set():
                await asyncio.sleep(0.05)
            await sub.unsubscribe()
            await nc.close()

        consumer = threading.Thread(target=lambda: loop.run_until_complete(consume()), daemon=True)
        try:
            wait_port(port, proc)
            consumer.start()
            with socket.create_connection(("127.0.0.1", port), timeout=5) as till:
                till.sendall(b"WARMUP\r\n")
                assert ready.wait(20), "the consumer did not start"
                while not received:
                    time.sleep(0.01)
                received.clear()
                sent = []
                next_at = time.perf_counter()
                for i in range(n):
                    next_at += TILL_INTERVAL_S
                    time.sleep(max(0.0, next_at - time.perf_counter()))
                    sent.append(time.perf_counter())
                    till.sendall(b"ITEM%06d\r\n" % i)
                assert done.wait(30), f"received {len(received)} of {n}"
            stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            done.set()
            consumer.join(10)
            loop.close()
    latencies = [(r - s) * 1000 for s, r in zip(sent, received)]
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    results.notes.append(f"nats sink device byte → JetStream consumer (sync_interval always) at 20 events/s: "
                         f"p50 {statistics.median(latencies):.2f} ms, p99 {q[98]:.2f} ms, max {max(latencies):.2f} ms "
                         f"over {n} events (target p99 <= 50 ms)")

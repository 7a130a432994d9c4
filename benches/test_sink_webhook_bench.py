"""Webhook sink throughput (docs/bridge/sinks-webhook.md): ``send`` against the test receiver on loopback
(``tests/webhook_receiver.py``, a Python ThreadingHTTPServer: it, not the sink, is most of the cost), over one
kept-alive connection, every request answered 200 before the next goes out. Single mode is one request per
event; batch mode ``max_batch`` (100) events per request. Bytes are the request bodies. The round-trip time of
one single-event request (p50/p99) is reported as a note. Not a target of the issue; a figure to watch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from bridge.config import _Table
from bridge.sinks.base import REALTIME, Outgoing
from bridge.sinks.cloudevents import batch_json, batch_msgpack, structured_json
from bridge.sinks.settings import context_for, parse_sink
from bridge.sinks.webhook import WebhookSink
from protocols.events import envelope, pack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from webhook_receiver import WebhookReceiver  # noqa: E402

SRC = "pos://store-1/till-1/scanner"
BATCH = 100


def make_events(n: int) -> list[Outgoing]:
    out = []
    for seq in range(1, n + 1):
        ts = 1_795_000_000_000_000_000 + seq
        body = {"type": "scanner.data", "data": {"label": f"400{seq:010d}", "symbology": "EAN13", "aim": "]E0"}}
        out.append(Outgoing(seq, SRC, seq, "scanner.data", ts, pack(envelope(SRC, seq, ts, body)), REALTIME))
    return out


@pytest.fixture(scope="module")
def receiver():
    with WebhookReceiver() as rx:
        yield rx


def webhook(tmp_path, url: str, **keys) -> WebhookSink:
    t = _Table(tmp_path / "bench.toml", "sinks[0]", {"name": "hook", "kind": "webhook", "url": url, **keys})
    settings = parse_sink(t, tmp_path, {})
    sink = WebhookSink("hook", settings.options, context_for("store-1", "till-1", "pos://store-1/till-1/",
                                                              settings.options))
    sink.connect(5)
    return sink


@pytest.mark.parametrize("mode, fmt", [("single", "json"), ("batch", "json"), ("batch", "msgpack")])
def test_webhook_send(measure, results, receiver, tmp_path, mode, fmt):
    n = (100 if results.quick else 1000) if mode == "single" else (1000 if results.quick else 20_000)
    evs = make_events(n)
    batches = [evs[i:i + BATCH] for i in range(0, n, BATCH)]
    if mode == "single":
        nbytes = sum(len(structured_json(ev)) for ev in evs)
    else:
        encode = batch_json if fmt == "json" else batch_msgpack
        nbytes = sum(len(encode(b)) for b in batches)
    sink = webhook(tmp_path, receiver.url, mode=mode, format=fmt)

    def run():
        for b in batches:
            assert sink.send(b).done == len(b)

    try:
        measure(f"webhook {mode} {fmt}, loopback receiver", run, nbytes, n, rounds=5)
    finally:
        sink.close()


def test_webhook_single_request_round_trip(results, receiver, tmp_path):
    sink = webhook(tmp_path, receiver.url)
    evs = make_events(100 if results.quick else 2000)
    times = []
    try:
        for ev in evs:
            t0 = time.perf_counter()
            assert sink.send([ev]).done == 1
            times.append(time.perf_counter() - t0)
    finally:
        sink.close()
    times.sort()
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
    results.notes.append(f"webhook single-event request round trip on loopback: p50 {p50 * 1e3:.2f} ms, "
                         f"p99 {p99 * 1e3:.2f} ms ({len(times)} requests)")

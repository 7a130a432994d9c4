"""Outbox capture throughput (docs/bridge/outbox.md): realistic printer/terminal/scanner event bodies appended in
batches of BATCH events, one commit (and WAL fsync, synchronous=FULL) per batch, into a real file under pytest's
tmp_path. Target (bridge issue): >= 50,000 events/s sustained. The figure includes msgpack packing of the
envelope, seq assignment and the per-source high-water update; bytes are the packed envelopes stored."""

from __future__ import annotations

import random

import pytest

from bridge.outbox import Outbox
from protocols.events import envelope, pack

BATCH = 500       # what a capture loop gathers in ~10 ms at peak store load (several tills, printers, scanners)
EVENTS = 20_000   # per round: 40 commits at BATCH, 400 at 50 (a quiet loop's batch, for comparison)


def make_events() -> list[tuple]:
    rng = random.Random(5)
    srcs = [f"pos://store-1/till-{t}/{d}" for t in range(1, 5) for d in ("printer", "terminal", "scanner")]
    out = []
    for i in range(EVENTS):
        kind = rng.randrange(3)
        if kind == 0:
            out.append((rng.choice(srcs), "printer.line",
                        {"text": f"{rng.randrange(1, 9)} x ARTICLE {i:06d}      {rng.randrange(100, 9999) / 100:8.2f}",
                         "align": "left", "spans": []}, 1_700_000_000_000_000_000 + i))
        elif kind == 1:
            out.append((rng.choice(srcs), "scanner.data", {"label": f"400{i:010d}", "symbology": "EAN13", "aim": "]E0"},
                        1_700_000_000_000_000_000 + i))
        else:
            out.append((rng.choice(srcs), "payment.status", {"code": rng.randrange(256), "text": "Bitte warten"},
                        1_700_000_000_000_000_000 + i))
    return out


@pytest.fixture(scope="module")
def events():
    return make_events()


@pytest.mark.parametrize("batch", [50, BATCH])
def test_outbox_capture_full_sync(measure, events, tmp_path, batch):
    nbytes = sum(len(pack(envelope(s, 1, ts, {"type": t, "data": d}))) for s, t, d, ts in events)
    box = Outbox.open(tmp_path / "bench.db", sinks=("nats",))
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2

    def run():
        for i in range(0, len(events), batch):
            box.append(events[i:i + batch])

    try:
        measure(f"outbox capture, synchronous=FULL, batches of {batch}", run, nbytes, len(events), rounds=9)
        assert box.depth("nats") >= len(events)
    finally:
        box.close()

"""Sustained delivery from the outbox to a local Mosquitto with QoS 1, through the real ``SinkRunner``
(docs/bridge/sinks-mqtt.md). Target (issue 6): >= 10,000 events/s with every PUBACK checked.

Each round is a fresh sink (its own cursor from 0) draining the same outbox file of EVENTS realistic events:
the runner reads rows, builds batches, the sink publishes them in order (MQTT 5 binary mode: CloudEvents user
properties, the stored envelope as body) and the runner commits the PUBACKed prefix to the cursor (fsynced).
The time runs from the runner's start (connect included) to its durable cursor reaching the last row.
Also measured: MQTT 3.1.1 (structured JSON bodies, built per event).
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from mqtt_fixture import MqttBroker, mqtt_sink, sink_settings  # noqa: E402

from bridge.outbox import Outbox  # noqa: E402
from bridge.sinks.classes import DeliveryClasses  # noqa: E402
from bridge.sinks.runner import SinkRunner  # noqa: E402

EVENTS = 20_000
QUICK_EVENTS = 2_000
SINK_NAMES = [f"bus{i}" for i in range(40)]
_names = itertools.count()


def make_events(n: int) -> list[tuple]:
    rng = random.Random(7)
    srcs = [f"pos://store-1/till-{t}/{d}" for t in range(1, 4) for d in ("printer", "terminal", "scanner")]
    out = []
    for i in range(n):
        kind = rng.randrange(3)
        ts = 1_795_000_000_000_000_000 + i * 1000
        if kind == 0:
            out.append((rng.choice(srcs), "printer.line",
                        {"text": f"{rng.randrange(1, 9)} x ARTICLE {i:06d}      {rng.randrange(100, 9999) / 100:8.2f}",
                         "align": "left", "spans": []}, ts))
        elif kind == 1:
            out.append((rng.choice(srcs), "scanner.data", {"label": f"400{i:010d}", "symbology": "EAN13",
                                                           "aim": "]E0"}, ts))
        else:
            out.append((rng.choice(srcs), "payment.status", {"code": rng.randrange(256), "text": "Bitte warten"},
                        ts))
    return out


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = MqttBroker(tmp_path_factory.mktemp("mosquitto"), "mosquitto").start()
    yield b
    b.close()


@pytest.fixture(scope="module")
def outbox(tmp_path_factory, results):
    n = QUICK_EVENTS if results.quick else EVENTS
    path = tmp_path_factory.mktemp("outbox") / "outbox.sqlite"
    events = make_events(n)
    with Outbox.open(path, sinks=SINK_NAMES) as box:
        for i in range(0, n, 1000):
            box.append(events[i:i + 1000])
        top = box._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0]
        nbytes = box._db.execute("SELECT sum(length(envelope)) FROM events").fetchone()[0]
    return path, n, top, nbytes


def drain(broker, path: Path, top: int, protocol: str) -> None:
    """One fresh sink drains the outbox; returns when its durable cursor reached ``top``."""
    name = SINK_NAMES[next(_names)]
    keys = {"url": broker.url, "protocol": protocol, "batch_max_age_s": 0}
    st = sink_settings(keys, name=name)
    sink = mqtt_sink(broker, name=name, protocol=protocol, batch_max_age_s=0)
    runner = SinkRunner(str(path), st, sink, DeliveryClasses(), log=lambda line: None)
    runner.start()
    deadline = time.monotonic() + 300
    try:
        while runner.stats()["cursor"] < top:
            if time.monotonic() > deadline or not runner.alive:
                raise AssertionError(f"the runner did not drain the outbox: {runner.stats()}")
            time.sleep(0.002)
    finally:
        runner.stop(0)
        runner.join(10)
    st = runner.stats()
    assert st["delivered"] == top and st["retries"] == 0, st


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_outbox_to_mosquitto_qos1(benchmark, measure, results, broker, outbox, protocol):
    path, n, top, nbytes = outbox
    fig = measure(f"sink.mqtt{protocol} outbox->mosquitto QoS1", lambda: drain(broker, path, top, protocol),
                  nbytes, n, rounds=5)
    if protocol == "5":
        results.notes.append(f"mqtt sink: {fig.events_s:,.0f} events/s outbox -> Mosquitto QoS 1 (MQTT 5, "
                             f"{n} events per round, median; target >= 10,000)")

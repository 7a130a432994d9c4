"""SIGKILL the bridge again and again while the till sells: nothing lost, nothing twice after the ledger, in order.

Each cycle lets the bridge capture and publish for a moment, then kills it without warning (no flush, no goodbye)
and starts it again; the sink resumes from its durable cursor and re-sends what was not acknowledged."""

from __future__ import annotations

import time

import pytest

from reliability.harness import LONG, MqttConsumer, NatsConsumer, Run, sink_toml

CYCLES = 40 if LONG else 5


def kill_cycles(run: Run, cycles: int) -> None:
    run.start_bridge()
    run.feeder.start()
    for _ in range(cycles):
        before = run.produced_count()
        run.wait_capturing(more_than=before + 50)
        run.kill_bridge()
        run.start_bridge()


def test_sigkill_while_publishing_to_nats(nats_broker):
    with Run(("127.0.0.1", nats_broker.port), sink_toml("nats", "nats://{proxy}", ack_timeout_s=1)) as run:
        run.consumer = NatsConsumer(nats_broker.url, run.ledger).start()
        kill_cycles(run, CYCLES)
        report = run.finish(f"sigkill x{CYCLES} nats")
    assert report.ok, report.line()
    assert report.produced >= CYCLES * 50


def test_sigkill_while_publishing_to_mqtt(mqtt_broker):
    with Run(("127.0.0.1", mqtt_broker.port),
             sink_toml("mqtt", "mqtt://{proxy}", protocol=mqtt_broker.protocols[0], ack_timeout_s=1)) as run:
        run.consumer = MqttConsumer(mqtt_broker, run.ledger).start()
        kill_cycles(run, CYCLES)
        report = run.finish(f"sigkill x{CYCLES} mqtt")
    assert report.ok, report.line()
    assert report.produced >= CYCLES * 50

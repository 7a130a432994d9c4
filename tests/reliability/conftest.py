"""The reliability suite's fixtures (real brokers behind a ``Bus``) and its summary: one line per scenario."""

from __future__ import annotations

import pytest

from mqtt_fixture import MqttBroker
from nats_fixture import NatsServer
from reliability.harness import REPORTS, MqttBus, NatsBus, WebhookBus
from webhook_receiver import WebhookReceiver


@pytest.fixture
def nats_bus():
    server = NatsServer()
    try:
        yield NatsBus(server.start())
    finally:
        server.cleanup()


@pytest.fixture
def mqtt_bus(tmp_path):
    broker = MqttBroker(tmp_path / "mqtt")
    try:
        yield MqttBus(broker.start())
    finally:
        broker.close()


@pytest.fixture
def mqtt311_bus(tmp_path):
    """MQTT 3.1.1 (structured JSON payloads) on the same broker kind."""
    broker = MqttBroker(tmp_path / "mqtt311")
    try:
        yield MqttBus(broker.start(), protocol="3.1.1")
    finally:
        broker.close()


@pytest.fixture
def webhook_bus():
    with WebhookReceiver() as receiver:
        yield WebhookBus(receiver)


@pytest.fixture(params=["nats", "mqtt"])
def bus(request):
    """Each scenario that takes ``bus`` runs against JetStream and against MQTT."""
    return request.getfixturevalue(f"{request.param}_bus")


def pytest_terminal_summary(terminalreporter):
    if REPORTS:
        terminalreporter.section("reliability: one line per scenario (lost, dup_after_dedup, out_of_order must be 0)")
        for name, report in REPORTS:
            terminalreporter.write_line(report.line(name))

"""The reliability suite's fixtures (real brokers) and its summary: one accounting line per scenario."""

from __future__ import annotations

import pytest

from mqtt_fixture import make_mqtt_broker, mqtt_broker  # noqa: F401
from nats_fixture import NatsServer
from reliability.harness import REPORTS


@pytest.fixture
def nats_broker():
    server = NatsServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


def pytest_terminal_summary(terminalreporter):
    if REPORTS:
        terminalreporter.section("reliability: one line per scenario (lost, dup_after_dedup, out_of_order must be 0)")
        for name, report in REPORTS:
            terminalreporter.write_line(report.line(name))

"""The harness itself: it sees a bus that loses events, and MQTT 3.1.1 (structured JSON) goes through it too."""

from __future__ import annotations

import pytest

from reliability.harness import Run


def test_the_accounting_sees_events_that_never_arrive(nats_bus):
    """A negative control: a sink that takes only device.status events leaves every scan undelivered; the run
    must fail, naming what is missing, instead of passing."""
    with Run(nats_bus, types=["device.*"]) as run:
        run.start()
        run.wait_capturing(more_than=50)
        with pytest.raises(AssertionError, match=r"events not delivered after 2.0 s, e\.g\. \[\('pos://"):
            run.finish("negative control", timeout=2.0)
        run.consumer.accounting.produced(run.produced())
        report = run.consumer.accounting.report()
    # every scan is lost; only the few device.status events (open, connection) arrive
    assert report.lost >= 45 and report.delivered == report.produced - report.lost and not report.ok


def test_mqtt311_structured_json_through_a_sigkill(mqtt311_bus):
    with Run(mqtt311_bus, rate=1000, burst=10) as run:
        run.start()
        run.wait_flowing()
        run.wait_capturing(more_than=run.produced_count() + 300)
        run.kill_bridge()
        run.start_bridge()
        report = run.finish("sigkill x1 mqtt 3.1.1")
    assert report.ok, report.line()

"""Faults between the bridge and the bus while the till sells; each scenario ends with one accounting line.

Every scenario runs against JetStream and MQTT (the ``bus`` fixture) unless it is about one of them. The NATS
stream's duplicate window is set to **1 s** here (``duplicate_window_s = 1``) so that "longer than the window"
takes seconds, not minutes: re-sends that come later than that are stored again by the broker, and only the
consumer's ledger keeps them from being processed twice.
"""

from __future__ import annotations

import time

from bridge_helpers import wait_for
from reliability.harness import LONG, Run

WINDOW_S = 1            # the NATS duplicate window in these tests
OUTAGE_S = 8.0 if LONG else 3.0
ROUNDS = 10 if LONG else 1   # rounds of network faults
DROP_S = 3.0          # acks swallowed this long: well past the window, so the broker stores some re-sends again


def test_broker_stopped_longer_than_the_duplicate_window(bus):
    with Run(bus, duplicate_window_s=WINDOW_S) as run:
        run.start()
        run.wait_flowing()
        bus.stop()
        stopped = run.produced_count()
        time.sleep(OUTAGE_S)                  # the outage itself: sales go on, nothing can be delivered
        assert run.produced_count() > stopped + 100, "the bridge kept capturing while the broker was down"
        if not bus.keeps_sessions:   # amqtt forgot the subscription: keep the bridge away until it is back
            run.proxy.down()
        bus.start()
        if not bus.keeps_sessions:
            run.consumer.wait_subscribed()
            run.proxy.up()
        up, backlog = time.monotonic(), run.produced()
        report = run.finish(f"broker stopped {OUTAGE_S:g}s > window {WINDOW_S}s {bus.kind}",
                            recovered_from=up, backlog=backlog)
    assert report.ok, report.line()


def test_acks_dropped_after_the_broker_stored(bus):
    """The proxy forwards the publishes but swallows the acks, then cuts: the bridge must send them again."""
    with Run(bus, duplicate_window_s=WINDOW_S, rate=2000, burst=20) as run:
        run.start()
        run.wait_flowing()
        run.proxy.drop_acks(after_s=DROP_S)
        wait_for(lambda: run.proxy.stats().swallowed_down > 0, timeout=10, what="an ack to be swallowed")
        wait_for(lambda: "drop_acks" not in run.proxy.faults(), timeout=10, what="the proxy to cut the connections")
        up, backlog = time.monotonic(), run.produced()
        report = run.finish(f"acks dropped {DROP_S:g}s {bus.kind}", recovered_from=up, backlog=backlog)
        stored = bus.stored() if bus.kind == "nats" else None
    assert report.ok, report.line()
    # The re-sends come after the 1 s window: JetStream stores them again, an MQTT broker always does; each one
    # reaches the consumer, whose ledger drops it.
    assert report.raw_duplicates > 0
    if bus.kind == "nats":
        assert report.raw_duplicates == stored - report.produced


def test_network_faults_during_publishing(bus):
    """Latency, a cut mid-frame, a reset, a blackhole and a vanished host, one after the other (the reset waits
    for delivery to resume after the cuts, so that the RST hits a live connection)."""
    with Run(bus, rate=500, burst=5) as run:
        run.start()
        proxy = run.proxy
        run.wait_flowing()
        for _ in range(ROUNDS):
            proxy.latency(60, jitter_ms=30)
            run.wait_capturing(more_than=run.produced_count() + 200)
            proxy.clear()

            cuts = proxy.stats().resets
            proxy.limit_data(1500)                # each connection dies inside a frame after 1500 bytes
            wait_for(lambda: proxy.stats().resets >= cuts + 2, timeout=15, what="two connections cut mid-frame")
            proxy.clear()

            run.wait_flowing(run.consumer.accounting.report().delivered + 100)   # reconnected after the cuts
            resets = proxy.stats().resets
            proxy.reset_peer()                    # RST on the live connection
            assert proxy.stats().resets > resets

            proxy.blackhole()
            run.wait_capturing(more_than=run.produced_count() + 300)
            proxy.clear()

            proxy.down()
            run.wait_capturing(more_than=run.produced_count() + 300)
            proxy.up()
        up, backlog = time.monotonic(), run.produced()
        report = run.finish(f"latency+cut+rst+blackhole+down x{ROUNDS} {bus.kind}", recovered_from=up, backlog=backlog)
    assert report.ok, report.line()


def test_broker_down_at_start_up(bus):
    """The bridge starts while the bus cannot be reached, captures, and delivers everything once it can."""
    with Run(bus) as run:
        run.proxy.down()
        run.start()
        run.wait_capturing(more_than=200)
        assert run.consumer.accounting.report().delivered == 0
        run.proxy.up()
        up, backlog = time.monotonic(), run.produced()
        report = run.finish(f"broker down at start-up {bus.kind}", recovered_from=up, backlog=backlog)
    assert report.ok, report.line()

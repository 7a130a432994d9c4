"""Faults between the bridge and the bus while the till sells; each scenario ends with one accounting line.

Every scenario runs against JetStream and MQTT (the ``bus`` fixture) unless it is about one of them. The NATS
stream's duplicate window is set to **1 s** here (``duplicate_window_s = 1``) so that "longer than the window"
takes seconds, not minutes: re-sends that come later than that are stored again by the broker, and only the
consumer's ledger keeps them from being processed twice.

Each fault is held until the sink has noticed it (it opened a new connection through the proxy: for a blackhole
that means it timed out waiting for an ack; a vanished host is held for 2 × the sink's timeouts), and each test
asserts that the fault had an effect (bytes swallowed, connections reset, re-sends stored again); a fault that
ends before the sink notices proves nothing.
"""

from __future__ import annotations

import time

from bridge_helpers import wait_for
from reliability.harness import ACK_TIMEOUT_S, LONG, Run

WINDOW_S = 1            # the NATS duplicate window in these tests
OUTAGE_S = 8.0 if LONG else 3.0
ROUNDS = 10 if LONG else 1   # rounds of network faults
DROP_S = 3.0          # acks swallowed this long: well past the window, so the broker stores some re-sends again
NOTICE_S = 15.0       # a sink that has not noticed a fault by then fails the test


def retries(run: Run) -> int:
    return run.sink_stats()["retries"]


def wait_reconnected(run: Run, connections: int, what: str) -> None:
    """The sink noticed a fault once it opened a new connection through the proxy (after ``connections``)."""
    wait_for(lambda: run.proxy.stats().connections > connections, timeout=NOTICE_S,
             what=f"the sink to notice {what} and connect again")


def test_broker_stopped_longer_than_the_duplicate_window(bus):
    """The last acks before the outage are lost (the broker stored those events, the bridge cannot know), the
    broker stops for longer than the duplicate window, then comes back: the bridge re-sends what it could not
    prove, the broker stores it again (the window is over), and only the consumer's ledger keeps it from being
    processed twice."""
    with Run(bus, duplicate_window_s=WINDOW_S) as run:
        run.start()
        run.wait_flowing()
        swallowed = run.proxy.stats().swallowed_down
        run.proxy.drop_acks(after_s=60)        # ended by clear() below, after the broker is back
        wait_for(lambda: run.proxy.stats().swallowed_down >= swallowed + 3 * bus.ack_bytes, timeout=10,
                 what="a few acks to be swallowed")
        bus.stop()
        stopped = run.produced_count()
        time.sleep(OUTAGE_S)                  # the outage itself: sales go on, nothing can be delivered
        assert run.produced_count() > stopped + 100, "the bridge kept capturing while the broker was down"
        if not bus.keeps_sessions:   # amqtt forgot the subscription: keep the bridge away until it is back
            run.proxy.down()
        bus.start()
        if not bus.keeps_sessions:
            run.consumer.wait_subscribed()
        run.proxy.clear()
        up, backlog = time.monotonic(), run.produced()
        report = run.finish(f"broker stopped {OUTAGE_S:g}s > window {WINDOW_S}s {bus.kind}",
                            recovered_from=up, backlog=backlog)
        stored = bus.stored() if bus.kind == "nats" else None
    assert report.ok, report.line()
    # the events whose acks were lost arrived twice: stored again after the window (NATS), or never
    # de-duplicated (MQTT); the ledger let each through once (dup_after_dedup = 0 above)
    assert report.raw_duplicates > 0, report.line()
    if bus.kind == "nats":
        assert report.raw_duplicates == stored - report.produced, (report.line(), stored)


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
    """Latency, a cut mid-frame, a reset, a blackhole and a vanished host, one after the other, each held until the
    sink noticed it and checked to have hit something."""
    with Run(bus, rate=500, burst=5) as run:
        run.start()
        proxy = run.proxy
        run.wait_flowing()
        for _ in range(ROUNDS):
            proxy.latency(60, jitter_ms=30)
            run.wait_capturing(more_than=run.produced_count() + 200)
            run.wait_flowing(run.delivered() + 50)            # delivery goes on, slower
            proxy.clear()

            cuts = proxy.stats().resets
            proxy.limit_data(1500)                # each connection dies inside a frame after 1500 bytes
            wait_for(lambda: proxy.stats().resets >= cuts + 2, timeout=15, what="two connections cut mid-frame")
            proxy.clear()                         # (the second cut was of a connection the sink opened again)

            run.wait_flowing(run.delivered() + 100)   # reconnected after the cuts
            # RST on a live connection: the sink's link may be between two lives at this instant; try until one
            # was hit (reset_peer says how many)
            connections = proxy.stats().connections
            wait_for(lambda: proxy.stats().live > 0 and proxy.reset_peer() > 0, timeout=15,
                     what="a live connection to reset")
            wait_reconnected(run, connections, "the reset")

            run.wait_flowing(run.delivered() + 100)   # publishing on a live connection again: the blackhole hits it
            before = proxy.stats()
            proxy.blackhole()
            # held until the live connection swallowed publishes, the sink timed out (no ack within ack_timeout_s)
            # and connected again, into the blackhole too
            wait_for(lambda: proxy.stats().swallowed_up > before.swallowed_up, timeout=NOTICE_S,
                     what="publishes to be swallowed by the blackhole")
            wait_reconnected(run, before.connections, "the blackhole (no ack within ack_timeout_s)")
            proxy.clear()

            run.wait_flowing(run.delivered() + 100)   # delivering again, on a live connection
            wait_for(lambda: proxy.stats().live > 0, timeout=15, what="a live connection")
            resets = proxy.stats().resets
            proxy.down()
            assert proxy.stats().resets > resets, "down() aborted the live connection"
            # the host stays gone for 2 × the sink's timeouts: it notices, and its reconnects are refused meanwhile;
            # from a second in (what was in flight has settled) its cursor stands still while the till sells on
            down_at = time.monotonic()
            wait_for(lambda: time.monotonic() >= down_at + ACK_TIMEOUT_S, timeout=10, what="the outage")
            cursor, captured = run.sink_stats()["cursor"], run.produced_count()
            wait_for(lambda: time.monotonic() >= down_at + 2 * ACK_TIMEOUT_S, timeout=10, what="the outage")
            assert run.sink_stats()["cursor"] == cursor and run.produced_count() > captured, \
                "while the host was gone nothing was acknowledged, and the bridge kept capturing"
            connections = proxy.stats().connections
            proxy.up()
            wait_reconnected(run, connections, "the host back")
        up, backlog = time.monotonic(), run.produced()
        report = run.finish(f"latency+cut+rst+blackhole+down x{ROUNDS} {bus.kind}", recovered_from=up, backlog=backlog)
        stats = proxy.stats()
    assert report.ok, report.line()
    assert stats.swallowed_up > 0 and stats.resets >= 4 * ROUNDS, stats


def test_broker_down_at_start_up(bus):
    """The bridge starts while the bus cannot be reached, captures, and delivers everything once it can."""
    with Run(bus) as run:
        run.proxy.down()
        run.start()
        run.wait_capturing(more_than=200)
        assert run.delivered() == 0
        assert retries(run) > 0, "the sink tried and failed while the bus was unreachable"
        run.proxy.up()
        up, backlog = time.monotonic(), run.produced()
        report = run.finish(f"broker down at start-up {bus.kind}", recovered_from=up, backlog=backlog)
    assert report.ok, report.line()

"""A 429 storm with Retry-After against the webhook receiver while the till sells.

The receiver answers a run of 429 and 503 responses, each with a Retry-After; the bridge must not send a single
request before the time it was told has elapsed, and afterwards deliver everything, once each after the ledger,
in order."""

from __future__ import annotations

import time

from bridge_helpers import wait_for
from reliability.harness import LONG, Run
from webhook_receiver import Reply

STORM = [Reply.retry_after(429, 1), Reply.retry_after(429, 1), Reply.retry_after(503, 1),
         Reply.retry_after(429, 2)] * (4 if LONG else 1)
REFUSING = (429, 503)


def retry_after_s(reply: Reply) -> float:
    return float(dict(reply.headers)["Retry-After"])


def test_429_storm_honours_retry_after(webhook_bus):
    receiver = webhook_bus.broker
    with Run(webhook_bus, rate=300, burst=3, mode="batch", format="json") as run:
        run.start()
        wait_for(lambda: len(receiver.requests) >= 3, timeout=15, what="the first deliveries")
        receiver.script(*STORM)
        wait_for(lambda: sum(1 for r in receiver.requests if r.reply and r.reply.status in REFUSING) == len(STORM),
                 timeout=30, what="the storm to be answered")
        last = [r for r in receiver.requests if r.reply and r.reply.status in REFUSING][-1]
        wait_for(lambda: last.answered_t is not None, timeout=5, what="the last refusal to go out")
        over = last.answered_t + retry_after_s(last.reply)
        wait_for(lambda: time.monotonic() >= over, timeout=5, what="the last Retry-After to elapse")
        backlog = run.produced()
        report = run.finish(f"429/503 storm x{len(STORM)} webhook", recovered_from=over, backlog=backlog)
        requests = receiver.requests
    assert report.ok, report.line()
    refused = 0
    for answered, following in zip(requests, requests[1:]):
        if answered.reply is not None and answered.reply.status in REFUSING:
            refused += 1
            waited = following.t - answered.answered_t
            assert waited >= retry_after_s(answered.reply), (
                f"request {requests.index(following)} came {waited:.3f} s after a Retry-After of "
                f"{retry_after_s(answered.reply):g} s")
    assert refused == len(STORM)

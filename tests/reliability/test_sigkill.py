"""SIGKILL the bridge again and again while the till sells: nothing lost, nothing twice after the ledger, in order.

Each cycle waits until the freshly started bridge is really publishing (a new connection through the proxy and a
few KB sent up it: its sink connected and is past the handshake), lets it capture and publish for a random moment
more, then kills it without warning (no flush, no goodbye) and starts it again; the sink resumes from its durable
cursor and re-sends what was not acknowledged. Every kill must hit a bridge that published in that life: a kill
before the sink's first publish would test only a restart."""

from __future__ import annotations

import os
import random
import time

from reliability.harness import LONG, PUBLISHING_BYTES, Run

CYCLES = int(os.environ.get("TILLWIRE_RELIABILITY_CYCLES", 40 if LONG else 5))


def test_sigkill_while_publishing(bus):
    pick = random.Random(f"sigkill-{bus.kind}")
    with Run(bus, rate=2000, burst=20) as run:
        run.start()
        run.wait_flowing()
        for _ in range(CYCLES):
            run.wait_publishing()
            run.wait_capturing(more_than=run.produced_count() + pick.randrange(50, 600))
            run.kill_bridge()
            run.start_bridge()
        up, backlog = time.monotonic(), run.produced()   # recovery: the last restart until its backlog arrived
        report = run.finish(f"sigkill x{CYCLES} {bus.kind}", recovered_from=up, backlog=backlog)
    assert report.ok, report.line()
    assert run.kills == CYCLES and report.produced >= CYCLES * 50
    # every life that was killed had published through the proxy (bytes sent up its own connections)
    assert min(run.lives) >= PUBLISHING_BYTES, f"bytes published per killed bridge: {run.lives}"

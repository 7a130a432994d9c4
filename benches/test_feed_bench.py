"""Embedded feed read throughput (docs/bridge/feed.md): a consumer catching up on a backlog of EVENTS realistic
events in a real outbox file, over real HTTP on loopback, from cursor 0 to the head: long-poll pages of 1000 as
msgpack (the envelopes as stored, no re-encoding) and as JSON lines (unpacked and re-encoded per event), and the SSE
stream. Bytes are the stored envelopes delivered. Client and server share the machine (and the GIL for the
server's threads), so the figures are what one consumer gets from one bridge process."""

from __future__ import annotations

import http.client

import pytest

from bridge.feed import FeedServer
from bridge.outbox import Outbox

EVENTS = 20_000
PAGE = 1000


def make_events() -> list[tuple]:
    srcs = [f"pos://store-1/till-{t}/{d}" for t in range(1, 5) for d in ("printer", "terminal", "scanner")]
    out = []
    for i in range(EVENTS):
        src = srcs[i % len(srcs)]
        if src.endswith("printer"):
            out.append((src, "printer.line", {"text": f"2 x ARTICLE {i:06d}      {i % 977 / 10:8.2f}",
                                              "align": "left", "spans": []}, 1_700_000_000_000_000_000 + i))
        elif src.endswith("scanner"):
            out.append((src, "scanner.data", {"label": f"400{i:010d}", "symbology": "EAN13", "aim": "]E0"},
                        1_700_000_000_000_000_000 + i))
        else:
            out.append((src, "payment.status", {"code": i % 256, "text": "Bitte warten", "raw": b"\x04\x0f\x02"},
                        1_700_000_000_000_000_000 + i))
    return out


@pytest.fixture(scope="module")
def backlog(tmp_path_factory):
    path = tmp_path_factory.mktemp("feed-bench") / "outbox.db"
    box = Outbox.open(path)
    events = make_events()
    for i in range(0, len(events), 500):
        box.append(events[i:i + 500])
    nbytes = box._db.execute("SELECT sum(length(envelope)) FROM events").fetchone()[0]
    feed = FeedServer(path, port=0).start()
    yield feed, nbytes
    feed.stop()
    box.close()


def _catch_up(port: int, accept: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    cursor, received = 0, 0
    while True:
        conn.request("GET", f"/events?after={cursor}&limit={PAGE}", headers={"Accept": accept})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()  # the feed answers HTTP/1.0: one request per connection
        if not body:
            return received
        received += len(body)
        cursor = int(resp.getheader("Tillwire-Cursor"))


@pytest.mark.parametrize("accept", ["application/msgpack", "application/x-ndjson"])
def test_feed_long_poll_catch_up(measure, backlog, accept):
    feed, nbytes = backlog
    assert _catch_up(feed.port, accept) > 0
    measure(f"feed /events catch-up, {accept.split('/')[1]}", lambda: _catch_up(feed.port, accept), nbytes, EVENTS,
            rounds=5)


def test_feed_sse_catch_up(measure, backlog):
    feed, nbytes = backlog

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", feed.port, timeout=30)
        conn.request("GET", "/events/stream")
        resp = conn.getresponse()
        seen = 0
        while seen < EVENTS:
            line = resp.fp.readline()
            assert line, "stream ended early"
            if line.startswith(b"id: "):
                seen += 1
        conn.close()

    measure("feed /events/stream catch-up (SSE)", run, nbytes, EVENTS, rounds=5)

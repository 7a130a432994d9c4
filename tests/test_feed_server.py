"""The embedded feed (docs/bridge/feed.md) over real HTTP on loopback, reading real outbox files.

Every test writes its outbox with ``bridge.outbox.Outbox`` (the bridge's own writer, a separate SQLite connection
from the feed's read-only ones) and talks to a ``FeedServer`` on a free port with ``http.client``.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
import time

import msgpack
import pytest

from bridge.feed import FeedConfigError, FeedError, FeedServer
from bridge.outbox import Outbox
from protocols.events import to_json_view

TIMEOUT = 5.0  # every client call; a test that should not wait fails in seconds instead of hanging

PRINTER = "pos://store-1/till-3/printer"
TERMINAL = "pos://store-1/till-3/terminal"
SCANNER = "pos://store-1/till-4/scanner"


# ---------------------------------------------------------------------------------------------------- helpers


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def cursor(self) -> int:
        return int(self.headers["tillwire-cursor"])

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.body.decode().splitlines()]


def get(feed: FeedServer, target: str, headers: dict | None = None, method: str = "GET",
        timeout: float = TIMEOUT) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", feed.port, timeout=timeout)
    try:
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


class SSE:
    """A minimal server-sent-events reader over a real connection (what an EventSource does, by hand)."""

    def __init__(self, feed: FeedServer, target: str = "/events/stream", headers: dict | None = None,
                 timeout: float = TIMEOUT):
        self.conn = http.client.HTTPConnection("127.0.0.1", feed.port, timeout=timeout)
        self.conn.request("GET", target, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.content_type = self.resp.getheader("Content-Type")

    def next_block(self) -> list[bytes] | None:
        """The lines of the next block (up to a blank line); None at end of stream."""
        lines = []
        while True:
            line = self.resp.fp.readline()
            if not line:
                return None
            line = line.rstrip(b"\r\n")
            if not line:
                if lines:
                    return lines
                continue
            lines.append(line)

    def next_event(self, skip_comments: bool = True) -> dict | None:
        """The next block as {"id", "event", "data", "comment"}; id-only blocks are returned too."""
        while True:
            block = self.next_block()
            if block is None:
                return None
            ev: dict = {}
            for line in block:
                if line.startswith(b":"):
                    ev["comment"] = line[1:].strip().decode()
                    continue
                key, _, value = line.decode().partition(":")
                ev[key] = value[1:] if value.startswith(" ") else value
            if "retry" in ev and len(ev) == 1:
                continue
            if skip_comments and set(ev) == {"comment"}:
                continue
            return ev

    def events(self, n: int) -> list[dict]:
        out = []
        while len(out) < n:
            ev = self.next_event()
            assert ev is not None, f"stream ended after {len(out)} of {n} events"
            if "data" in ev:
                out.append(ev)
        return out

    def close(self) -> None:
        self.conn.close()


def wait_until(predicate, timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def body(n: int) -> dict:
    return {"text": f"line {n}", "spans": [], "align": "left", "raw": bytes([n % 256, 0x0A])}


def append(box: Outbox, count: int, src: str = PRINTER, type_: str = "printer.line") -> None:
    box.append([(src, type_, body(i), 1_700_000_000_000_000_000 + i) for i in range(count)])


def stored(path) -> list[tuple[int, bytes]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT rowid, envelope FROM events ORDER BY rowid").fetchall()


# ---------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def outbox_path(tmp_path):
    return tmp_path / "outbox.db"


@pytest.fixture
def box(outbox_path):
    b = Outbox.open(outbox_path)
    yield b
    b.close()


@pytest.fixture
def make_feed(box, outbox_path):
    servers = []

    def make(**kwargs) -> FeedServer:
        kwargs.setdefault("port", 0)
        server = FeedServer(outbox_path, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def feed(make_feed):
    return make_feed()


# ---------------------------------------------------------------------------------------------------- long-poll


def test_long_poll_returns_at_once_when_rows_exist(box, feed, outbox_path):
    append(box, 3)
    # wait=60 but the client gives up after 5 s: the answer must not wait for new rows.
    resp = get(feed, "/events?wait=60")
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/x-ndjson"
    assert [e["seq"] for e in resp.json_lines()] == [1, 2, 3]
    assert resp.cursor == 3 and resp.header("Tillwire-Head") == "3"
    assert resp.header("Tillwire-Gap") is None


def test_each_json_line_is_the_json_view_of_the_stored_envelope(box, feed, outbox_path):
    append(box, 2)
    lines = get(feed, "/events").json_lines()
    assert lines == [to_json_view(msgpack.unpackb(env)) for _, env in stored(outbox_path)]
    assert lines[0]["data"]["raw"] == "000a"  # bytes as lowercase hex
    assert "cursor" not in lines[0]  # the envelope is not altered


def _long_poll_in_thread(feed, target):
    result = {}

    def run():
        result["resp"] = get(feed, target, timeout=10)

    t = threading.Thread(target=run)
    t.start()
    wait_until(lambda: feed.waiting >= 1, what="the long-poll to be waiting")
    return t, result


def test_long_poll_wakes_on_notify(box, make_feed):
    # The watcher polls only every 30 s here: the answer within the client's timeout comes from notify().
    feed = make_feed(poll_s=30)
    append(box, 1)
    t, result = _long_poll_in_thread(feed, "/events?after=1&wait=30")
    append(box, 1, src=TERMINAL, type_="payment.result")
    feed.notify(2)
    t.join(timeout=10)
    resp = result["resp"]
    assert resp.status == 200 and resp.cursor == 2
    assert [(e["src"], e["seq"]) for e in resp.json_lines()] == [(TERMINAL, 1)]


def test_long_poll_wakes_without_notify_when_another_process_writes(box, make_feed):
    feed = make_feed(poll_s=0.05)
    t, result = _long_poll_in_thread(feed, "/events?wait=30")
    append(box, 2)  # no notify: the feed notices the commit by polling the file
    t.join(timeout=10)
    assert [e["seq"] for e in result["resp"].json_lines()] == [1, 2]


def test_wait_expires_with_an_empty_200(box, feed):
    append(box, 4)
    resp = get(feed, "/events?after=4&wait=0.2")
    assert resp.status == 200 and resp.body == b""
    assert resp.cursor == 4  # the request's own cursor: nothing was skipped


def test_a_cursor_above_the_head_answers_at_once(box, feed):
    append(box, 3)
    resp = get(feed, "/events?after=900&wait=60")  # e.g. kept from an outbox that was moved aside
    assert resp.status == 200 and resp.body == b"" and resp.cursor == 900 and resp.header("Tillwire-Head") == "3"


def test_an_empty_outbox_answers_cursor_0(feed):
    resp = get(feed, "/events")
    assert resp.status == 200 and resp.body == b"" and resp.cursor == 0 and resp.header("Tillwire-Head") == "0"


def test_limit_and_last(box, feed):
    append(box, 10)
    first = get(feed, "/events?limit=4")
    assert [e["seq"] for e in first.json_lines()] == [1, 2, 3, 4] and first.cursor == 4
    newest = get(feed, "/events?last=3")
    assert [e["seq"] for e in newest.json_lines()] == [8, 9, 10] and newest.cursor == 10
    none = get(feed, "/events?last=0")
    assert none.body == b"" and none.cursor == 10  # where "only new ones from now" starts


def test_cursor_resumption_gives_every_event_once_in_order_while_a_writer_appends(box, feed, outbox_path):
    sources = [PRINTER, TERMINAL, SCANNER]
    total = 600
    done = threading.Event()

    def writer():
        n = 0
        while n < total:
            batch = [(sources[(n + k) % 3], "printer.line", body(n + k), n + k) for k in range(min(7, total - n))]
            box.append(batch)
            feed.notify()
            n += len(batch)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    got, cursor = [], 0
    deadline = time.monotonic() + 30
    while len(got) < total and time.monotonic() < deadline:
        resp = get(feed, f"/events?after={cursor}&wait=2&limit=13", headers={"Accept": "application/msgpack"})
        assert resp.status == 200
        got.extend(_unpack(resp.body))
        cursor = resp.cursor
    t.join(timeout=10)
    assert done.is_set()
    assert get(feed, f"/events?after={cursor}").body == b""  # nothing left over
    keys = [(e["src"], e["seq"]) for e in got]
    assert len(keys) == len(set(keys)) == total
    for src in sources:
        assert [seq for s, seq in keys if s == src] == list(range(1, total // 3 + 1))
    assert [msgpack.packb(e, use_bin_type=True) for e in got] == [env for _, env in stored(outbox_path)]


def _unpack(blob: bytes) -> list[dict]:
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(blob)
    return list(unpacker)


# ---------------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("accept", ["application/msgpack", "application/x-msgpack",
                                    "text/plain;q=0.1, application/msgpack;q=0.9"])
def test_msgpack_by_accept_is_the_concatenated_stored_envelopes(box, feed, outbox_path, accept):
    append(box, 3)
    resp = get(feed, "/events", headers={"Accept": accept})
    assert resp.header("Content-Type") == "application/msgpack"
    assert resp.body == b"".join(env for _, env in stored(outbox_path))


@pytest.mark.parametrize("accept", ["application/x-ndjson", "*/*", "application/json",
                                    "application/msgpack;q=0.2, application/x-ndjson"])
def test_json_lines_by_accept(box, feed, accept):
    append(box, 1)
    resp = get(feed, "/events", headers={"Accept": accept})
    assert resp.header("Content-Type") == "application/x-ndjson"
    assert len(resp.json_lines()) == 1


def test_an_accept_header_the_feed_cannot_meet_is_406(feed):
    resp = get(feed, "/events", headers={"Accept": "text/html"})
    assert resp.status == 406 and resp.body.count(b"\n") == 1


# ---------------------------------------------------------------------------------------------------- filters


def _mixed(box):
    box.append([
        (PRINTER, "printer.line", body(1), 1),
        (TERMINAL, "payment.request", {"amount": 100}, 2),
        (SCANNER, "scanner.data", {"label": "4006381333931"}, 3),
        (TERMINAL, "payment.result", {"approved": True}, 4),
        (PRINTER, "printer.cut", {"partial": False}, 5),
    ])


@pytest.mark.parametrize("query, expected", [
    ("type=payment.*", [("payment.request", 2), ("payment.result", 4)]),
    ("type=printer.cut&type=scanner.*", [("scanner.data", 3), ("printer.cut", 5)]),
    ("src=pos://store-1/till-4/*", [("scanner.data", 3)]),
    ("src=*/printer&type=*.line", [("printer.line", 1)]),
    ("type=Payment.*", []),  # case-sensitive, like the types themselves
])
def test_type_and_src_globs_filter_on_the_server(box, feed, query, expected):
    _mixed(box)
    resp = get(feed, f"/events?{query}")
    assert [(e["type"], e["ts"]) for e in resp.json_lines()] == expected
    assert resp.cursor == 5  # the filtered-out rows were looked at: the consumer need not read them again


def test_a_filtered_long_poll_waits_for_a_matching_row(box, make_feed):
    feed = make_feed(poll_s=30)
    _mixed(box)
    t, result = _long_poll_in_thread(feed, "/events?after=0&type=drawer.*&wait=30")
    box.append([(PRINTER, "printer.line", body(9), 6)])
    feed.notify()
    wait_until(lambda: feed.waiting >= 1, what="the long-poll to wait again after a non-matching row")
    box.append([(PRINTER, "drawer.kick", {"pin": 2, "on_ms": 100}, 7)])
    feed.notify()
    t.join(timeout=10)
    resp = result["resp"]
    assert [e["type"] for e in resp.json_lines()] == ["drawer.kick"] and resp.cursor == 7


# ---------------------------------------------------------------------------------------------------- SSE


def test_sse_sends_every_event_with_its_cursor_as_id(box, feed, outbox_path):
    append(box, 3)
    stream = SSE(feed)
    try:
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        events = stream.events(3)
        assert [int(e["id"]) for e in events] == [1, 2, 3]
        assert all("event" not in e for e in events)  # default "message": EventSource.onmessage sees them all
        assert [json.loads(e["data"]) for e in events] == [to_json_view(msgpack.unpackb(env))
                                                           for _, env in stored(outbox_path)]
        append(box, 1, src=TERMINAL, type_="payment.result")
        feed.notify()
        (live,) = stream.events(1)
        assert live["id"] == "4" and json.loads(live["data"])["src"] == TERMINAL
    finally:
        stream.close()


def test_sse_resumes_from_last_event_id_over_the_url_cursor(box, feed):
    append(box, 3)
    first = SSE(feed, "/events/stream?after=0")
    seen = first.events(2)
    first.close()
    append(box, 2)
    # A reconnecting EventSource repeats its first URL (after=0) and sends the last id it saw.
    again = SSE(feed, "/events/stream?after=0", headers={"Last-Event-ID": seen[-1]["id"]})
    try:
        assert [int(e["id"]) for e in again.events(3)] == [3, 4, 5]
    finally:
        again.close()


def test_sse_after_in_the_url(box, feed):
    append(box, 5)
    stream = SSE(feed, "/events/stream?after=3")
    try:
        assert [int(e["id"]) for e in stream.events(2)] == [4, 5]
    finally:
        stream.close()


def test_sse_filters_and_moves_the_id_past_rows_it_filtered_out(box, feed):
    _mixed(box)
    stream = SSE(feed, "/events/stream?type=payment.*")
    try:
        blocks = [stream.next_event() for _ in range(3)]
        assert [(b.get("id"), json.loads(b["data"])["type"] if "data" in b else None) for b in blocks] == [
            ("2", "payment.request"), ("4", "payment.result"), ("5", None)]
    finally:
        stream.close()


def test_sse_heartbeat_is_a_comment(box, make_feed):
    feed = make_feed(heartbeat_s=0.05)
    stream = SSE(feed)
    try:
        assert stream.next_event(skip_comments=False) == {"comment": "keep-alive"}
    finally:
        stream.close()


# ---------------------------------------------------------------------------------------------------- gaps


def _prune_through(box, rowid: int) -> None:
    box.ack("default", rowid)
    box.prune()


def test_a_pruned_cursor_is_answered_with_the_gap(box, feed):
    append(box, 10)
    _prune_through(box, 6)
    resp = get(feed, "/events?after=2")
    assert resp.status == 200
    assert resp.header("Tillwire-Gap") == "7"  # the first cursor still available; 3..6 are gone
    assert [e["seq"] for e in resp.json_lines()] == [7, 8, 9, 10]
    assert get(feed, "/events?after=6").header("Tillwire-Gap") is None  # read up to the pruned edge: no gap
    assert get(feed, "/events?after=0").header("Tillwire-Gap") is None  # 0 means "the oldest retained"


def test_a_gap_with_nothing_left_returns_at_once_and_moves_the_cursor(box, feed):
    append(box, 5)
    _prune_through(box, 5)
    resp = get(feed, "/events?after=2&wait=60")  # the client gives up after 5 s: the gap must not wait
    assert resp.header("Tillwire-Gap") == "6" and resp.body == b"" and resp.cursor == 5


def test_sse_signals_the_gap_as_an_event(box, feed):
    append(box, 10)
    _prune_through(box, 6)
    stream = SSE(feed, "/events/stream", headers={"Last-Event-ID": "2"})
    try:
        gap = stream.next_event()
        assert gap["event"] == "gap" and json.loads(gap["data"]) == {"after": 2, "first": 7} and "id" not in gap
        assert [int(e["id"]) for e in stream.events(4)] == [7, 8, 9, 10]
    finally:
        stream.close()


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("query", [
    "after=-1", "after=x", "after=1.5", "wait=61", "wait=-1", "wait=nan", "wait=soon", "limit=0", "limit=10001",
    "last=10001", "limit=5&last=5", "after=1&after=2", "cursor=3", "type=", "src=" + "x" * 300, "after=%C2%B2",
    "after=" + "9" * 20,
])
def test_bad_parameters_are_a_400_with_one_line(feed, query):
    resp = get(feed, f"/events?{query}")
    assert resp.status == 400
    assert resp.body.endswith(b"\n") and resp.body.count(b"\n") == 1 and len(resp.body) < 200


@pytest.mark.parametrize("target, headers", [("/events/stream?after=x", {}),
                                             ("/events/stream?wait=5", {}),
                                             ("/events/stream", {"Last-Event-ID": "abc"})])
def test_bad_stream_parameters_are_a_400(feed, target, headers):
    resp = get(feed, target, headers=headers)
    assert resp.status == 400 and resp.body.count(b"\n") == 1


def test_unknown_paths_are_404_and_other_methods_405(feed):
    assert get(feed, "/nope").status == 404
    assert get(feed, "/events/").status == 404
    post = get(feed, "/events", method="POST")
    assert post.status == 405 and post.header("Allow") == "GET"
    assert get(feed, "/events/stream", method="DELETE").status == 405


def test_routes_are_a_table_more_can_be_added(box, outbox_path):
    def livez(req):
        req.respond(200, b"ok\n")

    feed = FeedServer(outbox_path, port=0)
    feed.add_route("/livez", livez)
    with feed:
        assert get(feed, "/livez").body == b"ok\n"


# ---------------------------------------------------------------------------------------------------- auth


def test_a_non_loopback_bind_without_a_token_is_refused():
    with pytest.raises(FeedConfigError, match="not a loopback address.*token"):
        FeedServer("/nonexistent/outbox.db", host="0.0.0.0", port=0)


def test_with_a_token_every_request_needs_it(box, make_feed):
    feed = make_feed(token="s3cret-token")
    append(box, 1)
    missing = get(feed, "/events")
    wrong = get(feed, "/events", headers={"Authorization": "Bearer s3cret-tokeN"})
    basic = get(feed, "/events", headers={"Authorization": "Basic s3cret-token"})
    for resp in (missing, wrong, basic):
        assert resp.status == 401
        assert resp.body == b"unauthorized\n"  # nothing about why
        assert resp.header("WWW-Authenticate") == "Bearer"
    assert get(feed, "/nope").status == 401  # before routing: unknown paths tell nothing either
    ok = get(feed, "/events", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status == 200 and len(ok.json_lines()) == 1
    stream = SSE(feed, headers={"Authorization": "Bearer wrong"})
    assert stream.status == 401
    stream.close()


def test_a_non_loopback_bind_with_a_token(box, outbox_path):
    append(box, 1)
    feed = FeedServer(outbox_path, host="0.0.0.0", port=0, token="t0k3n", token_source="$FEED_TOKEN").start()
    try:
        assert get(feed, "/events").status == 401
        assert get(feed, "/events", headers={"Authorization": "Bearer t0k3n"}).status == 200
        line = feed.startup_message()
        assert "0.0.0.0" in line and "Bearer" in line and "$FEED_TOKEN" in line and "t0k3n" not in line
    finally:
        feed.stop()


def test_startup_message(feed, make_feed):
    line = feed.startup_message()
    assert f"http://127.0.0.1:{feed.port}/events" in line and "no token" in line and "\n" not in line
    guarded = make_feed(token="abc123", token_source="[feed] token")
    line = guarded.startup_message()
    assert "Bearer" in line and "[feed] token" in line and "abc123" not in line


# ---------------------------------------------------------------------------------------------------- robustness


def test_stop_ends_open_streams_and_long_polls_and_joins_its_threads(box, make_feed):
    feed = make_feed()
    append(box, 1)
    stream = SSE(feed)
    stream.events(1)
    t, result = _long_poll_in_thread(feed, "/events?after=1&wait=60")
    wait_until(lambda: feed.waiting >= 2, what="the stream and the long-poll to wait")
    feed.stop()
    assert stream.next_event() is None  # the stream ended (EOF), within the client's timeout
    t.join(timeout=10)
    assert result["resp"].status == 200 and result["resp"].body == b""
    assert not [th for th in threading.enumerate()
                if th.name.startswith("feed-") or "process_request_thread" in th.name]
    with pytest.raises(OSError):
        get(feed, "/events", timeout=1)
    stream.close()


def test_stop_cuts_off_a_client_that_never_sends_its_request(make_feed):
    feed = make_feed(write_timeout_s=60)
    idle = socket.create_connection(("127.0.0.1", feed.port), timeout=TIMEOUT)
    try:
        wait_until(lambda: feed._open_count() == 1, what="the idle connection to be accepted")
        feed.stop()  # must not wait the 60 s read timeout
        assert idle.recv(1) == b""
    finally:
        idle.close()


def test_many_concurrent_long_polls_all_wake(box, make_feed):
    feed = make_feed(poll_s=30)
    results: list[Response] = []
    lock = threading.Lock()

    def poll():
        resp = get(feed, "/events?wait=30", timeout=10)
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=poll) for _ in range(20)]
    for t in threads:
        t.start()
    wait_until(lambda: feed.waiting == 20, what="20 waiting long-polls")
    append(box, 1)
    feed.notify()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 20 and all(len(r.json_lines()) == 1 for r in results)


def test_a_client_that_does_not_read_blocks_no_one_and_is_dropped(box, make_feed):
    feed = make_feed(write_timeout_s=0.5)
    big = "x" * 10_000
    box.append([(PRINTER, "printer.line", {"text": big, "n": i}, i) for i in range(3000)])  # ~30 MB as JSON
    sleeper = socket.create_connection(("127.0.0.1", feed.port), timeout=TIMEOUT)
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sleeper.sendall(b"GET /events/stream HTTP/1.0\r\n\r\n")  # and never read
        wait_until(lambda: feed._open_count() == 1, what="the stream to be open")
        resp = get(feed, "/events?limit=1")  # others are served meanwhile
        assert resp.status == 200 and resp.cursor == 1
        wait_until(lambda: feed._open_count() == 0, timeout=10, what="the stalled stream to be dropped")
    finally:
        sleeper.close()


def test_too_many_clients_get_503(box, make_feed):
    feed = make_feed(max_clients=1)
    stream = SSE(feed)
    try:
        wait_until(lambda: feed._open_count() == 1, what="the stream to be open")
        resp = get(feed, "/events")
        assert resp.status == 503 and resp.header("Retry-After") == "1"
    finally:
        stream.close()


def test_waiting_requests_hold_no_read_transaction(box, make_feed, outbox_path):
    feed = make_feed(poll_s=0.01)
    append(box, 50)
    stream = SSE(feed)
    stream.events(50)
    t, result = _long_poll_in_thread(feed, "/events?after=50&wait=30")
    try:
        wait_until(lambda: feed.waiting >= 2, what="both to wait")
        # A checkpoint that must copy every WAL frame and reset the log fails (busy=1) while any reader holds a
        # snapshot; the feed's reads are short, so every one of these succeeds.
        writer = sqlite3.connect(outbox_path, timeout=1.0)  # the busy handler waits out the watcher's short reads
        try:
            outcomes = [writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] for _ in range(20)]
        finally:
            writer.close()
        assert outcomes == [0] * 20
    finally:
        append(box, 1)
        feed.notify()
        t.join(timeout=10)
        stream.close()


def test_start_refuses_a_file_that_is_not_an_outbox(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(FeedError, match="not a tillwire outbox"):
        FeedServer(other, port=0).start()
    with pytest.raises(FeedError, match="cannot open the outbox"):
        FeedServer(tmp_path / "missing.db", port=0).start()


def test_a_port_in_use_is_one_line(box, feed, outbox_path):
    with pytest.raises(FeedError, match=f"cannot listen on 127.0.0.1:{feed.port}") as info:
        FeedServer(outbox_path, port=feed.port).start()
    assert "\n" not in str(info.value)


def test_the_feed_reads_through_read_only_connections(box, outbox_path):
    from bridge.feed.reader import OutboxReader

    append(box, 3)
    reader = OutboxReader(outbox_path)
    try:
        with pytest.raises(FeedError, match="readonly"):
            with reader._snapshot() as db:
                db.execute("DELETE FROM events")
        assert [r.rowid for r in reader.read(0, 10).rows] == [1, 2, 3]
    finally:
        reader.close()
    assert len(stored(outbox_path)) == 3

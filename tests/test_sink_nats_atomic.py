"""The NATS sink's ``publish = "atomic"`` (JetStream atomic batch publish, ADR-50) against a real nats-server 2.15.1
with ``sync_interval: always`` (docs/bridge/sinks-nats.md §7).

What it promises: events go in atomic batches of 32 to 1,000 (fewer go pipelined), one after the other; a
batch's commit PubAck (``stream``, ``seq``, ``batch``, ``count``) is checked and means every message of the
batch is stored, in order, or none is; a batch the stream refuses because it already holds some of its
``Nats-Msg-Id`` (sent again after a lost PubAck) is sent again pipelined, so the duplicates are counted and not
stored; the stream is created with ``allow_atomic`` or validated for it.
"""

from __future__ import annotations

import time

import pytest

from bridge.sinks.base import Outgoing
from bridge.sinks.nats import ATOMIC_BATCH_LIMIT, ATOMIC_MIN_EVENTS, StreamMismatch
from nats_fixture import nats_server, read_stream, stream_config  # noqa: F401
from test_sink_nats import PREFIX, config_error, events, keys_of, load_sink, make_stream, send_and_kill

SUBJECT = "tillwire.store-1.till-3"
ATOMIC = 'publish = "atomic"'


@pytest.fixture
def atomic_sink(tmp_path, nats_server):
    sinks = []

    def make(keys: str = "", connect: bool = True):
        sink = load_sink(tmp_path, f'url = "{nats_server.url}"\n{ATOMIC}\n{keys}')
        sinks.append(sink)
        if connect:
            sink.connect(5)
        return sink
    yield make
    for s in sinks:
        s.close()


def interleaved(n: int) -> list[Outgoing]:
    """``n`` events of three sources taking turns, each source in seq order (as the outbox hands them over)."""
    devices = [("scanner", "scanner.scan"), ("terminal", "payment.status"), ("scale", "scale.weight")]
    out = []
    for i in range(n):
        device, type_ = devices[i % 3]
        (ev,) = events(1, start=i // 3 + 1, device=device, type_=type_)
        out.append(Outgoing(i + 1, ev.src, ev.seq, ev.type, ev.ts, ev.envelope, ev.cls))
    return out


def wait_for_messages(url: str, stream: str, n: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while stream_config(url, stream).state.messages < n:
        assert time.monotonic() < deadline, f"the stream did not reach {n} messages in {timeout_s} s"
        time.sleep(0.01)


# ---------------------------------------------------------------- config and the stream


def test_publish_is_pipelined_unless_atomic_is_asked_for(tmp_path):
    assert load_sink(tmp_path, 'url = "nats://10.0.0.2:4222"').options.publish == "pipelined"
    assert load_sink(tmp_path, f'url = "nats://10.0.0.2:4222"\n{ATOMIC}').options.publish == "atomic"
    message = config_error(tmp_path, 'url = "nats://10.0.0.2:4222"\npublish = "batched"')
    assert "publish" in message and 'must be "pipelined" or "atomic"' in message and "'batched'" in message


def test_the_created_stream_allows_atomic_publish_only_when_asked_to(tmp_path, nats_server, atomic_sink):
    atomic_sink()
    assert stream_config(nats_server.url, "TILLWIRE").config.allow_atomic is True
    plain = load_sink(tmp_path, f'url = "{nats_server.url}"\nstream = "PLAIN"\nsubject_prefix = "plain"')
    try:
        plain.connect(5)
        assert not stream_config(nats_server.url, "PLAIN").config.allow_atomic
    finally:
        plain.close()


def test_an_existing_stream_without_allow_atomic_is_a_one_line_error_saying_what_to_change(nats_server, atomic_sink):
    make_stream(nats_server.url, name="TILLWIRE", subjects=[f"{SUBJECT}.>"], storage="file", duplicate_window=120)
    sink = atomic_sink(connect=False)
    with pytest.raises(StreamMismatch) as exc:
        sink.connect(5)
    assert str(exc.value) == ('stream TILLWIRE does not allow atomic batch publishes; set allow_atomic: true in its '
                              'configuration (nats-server 2.12 or later) or set publish = "pipelined"')


def test_an_existing_stream_with_allow_atomic_is_used_as_it_is(nats_server, atomic_sink):
    make_stream(nats_server.url, name="TILLWIRE", subjects=["tillwire.>"], storage="file", duplicate_window=600,
                allow_atomic=True)
    sink = atomic_sink()
    assert sink.send(events(40)).done == 40
    assert read_stream(nats_server.url, "TILLWIRE")[-1].headers["Nats-Batch-Commit"] == "1"
    assert stream_config(nats_server.url, "TILLWIRE").config.subjects == ["tillwire.>"]


# ---------------------------------------------------------------- publishing


def test_a_large_batch_goes_as_atomic_batches_of_at_most_1000_and_stays_in_order(nats_server, atomic_sink):
    sink = atomic_sink()
    batch = interleaved(2 * ATOMIC_BATCH_LIMIT + 500)
    outcome = sink.send(batch)
    assert (outcome.done, outcome.duplicates, outcome.parked, outcome.retry) == (2500, 0, (), None)
    msgs = read_stream(nats_server.url, "TILLWIRE")
    assert keys_of(msgs) == [ev.key for ev in batch]
    assert [m.stream_seq for m in msgs] == list(range(1, 2501))
    assert [m.data for m in msgs] == [ev.envelope for ev in batch]
    assert [m.headers["Nats-Batch-Sequence"] for m in msgs[:2]] == ["1", "2"]
    commits = [m.stream_seq for m in msgs if m.headers.get("Nats-Batch-Commit") == "1"]
    assert commits == [1000, 2000, 2500], "three batches: 1000 + 1000 + 500, each ending in its commit"
    assert len({m.headers["Nats-Batch-Id"] for m in msgs}) == 3
    first = msgs[0].headers
    assert (first["ce-source"], first["ce-id"], first["Nats-Msg-Id"]) == (
        f"{PREFIX}scanner", "1", f"{PREFIX}scanner:1")
    assert sink.atomic_fallbacks == 0


def test_fewer_than_32_events_go_pipelined_because_that_is_quicker(nats_server, atomic_sink):
    sink = atomic_sink()
    assert ATOMIC_MIN_EVENTS == 32
    assert sink.send(events(31)).done == 31
    assert sink.send(events(32, start=32)).done == 32
    msgs = read_stream(nats_server.url, "TILLWIRE")
    assert ["Nats-Batch-Id" in m.headers for m in msgs] == [False] * 31 + [True] * 32
    assert msgs[-1].headers["Nats-Batch-Sequence"] == "32" and msgs[-1].headers["Nats-Batch-Commit"] == "1"


def test_an_event_over_max_payload_is_parked_in_its_place_and_the_batch_goes_on(nats_server, atomic_sink):
    sink = atomic_sink()
    big = events(1, start=41)[0]
    huge = Outgoing(big.rowid, big.src, big.seq, big.type, big.ts, big.envelope.ljust(2 * 1024 * 1024, b"\0"),
                    big.cls)
    outcome = sink.send(events(40) + [huge] + events(40, start=42))
    assert outcome.done == 81 and outcome.retry is None
    (parked,) = outcome.parked
    assert parked.index == 40 and "exceeds the server's max_payload" in parked.reason
    msgs = read_stream(nats_server.url, "TILLWIRE")
    assert keys_of(msgs) == [f"{PREFIX}scanner:{s}" for s in range(1, 82) if s != 41]
    assert len({m.headers["Nats-Batch-Id"] for m in msgs}) == 1, "the parked event is left out of the one batch"


def test_a_batch_sent_again_is_refused_whole_by_the_server_and_each_event_comes_back_a_duplicate(
        nats_server, atomic_sink):
    sink = atomic_sink()
    batch = events(50)
    assert sink.send(batch).duplicates == 0
    again = sink.send(batch)
    assert (again.done, again.duplicates, again.retry) == (50, 50, None)
    assert sink.atomic_fallbacks == 1, "nats-server refused the atomic batch (10201); it went again pipelined"
    assert keys_of(read_stream(nats_server.url, "TILLWIRE")) == [ev.key for ev in batch]


def test_a_batch_that_overlaps_what_the_stream_has_stores_only_the_new_events_in_order(nats_server, atomic_sink):
    sink = atomic_sink()
    batch = interleaved(1000)
    assert sink.send(batch[:300]).done == 300
    outcome = sink.send(batch)
    assert (outcome.done, outcome.duplicates, outcome.retry) == (1000, 300, None)
    msgs = read_stream(nats_server.url, "TILLWIRE")
    assert keys_of(msgs) == [ev.key for ev in batch]
    assert [m.stream_seq for m in msgs] == list(range(1, 1001))


@pytest.mark.parametrize("publish", ["atomic", "pipelined"])
def test_a_lost_puback_then_the_batch_again_stores_nothing_twice(tmp_path, nats_server, publish):
    """The server stores the batch but its PubAck never reaches the sink (it gave up waiting); the runner
    reconnects and sends the batch again: every event comes back a duplicate, none is stored twice."""
    sink = load_sink(tmp_path, f'url = "{nats_server.url}"\npublish = "{publish}"\nack_timeout_s = 0.5')
    sink.connect(5)
    batch = interleaved(200)   # fewer than max_inflight: the pipelined sink sends them all before it waits
    try:
        nats_server.pause()
        try:
            lost = sink.send(batch)
        finally:
            nats_server.resume()
        assert lost.done == 0 and lost.retry.reconnect and "no PubAck for " in lost.retry.reason
        wait_for_messages(nats_server.url, "TILLWIRE", 200)   # the server took the batch after all
        sink.close()
        sink.connect(5)
        again = sink.send(batch)
        assert (again.done, again.duplicates, again.retry) == (200, 200, None)
    finally:
        sink.close()
    msgs = read_stream(nats_server.url, "TILLWIRE")
    assert keys_of(msgs) == [ev.key for ev in batch]


def test_a_server_killed_mid_batch_keeps_whole_batches_and_the_rest_follows_in_order(tmp_path, nats_server):
    sink = load_sink(tmp_path, f'url = "{nats_server.url}"\n{ATOMIC}\nack_timeout_s = 2')
    sink.connect(5)
    batch = interleaved(12 * ATOMIC_BATCH_LIMIT)
    outcome = send_and_kill(sink, batch, nats_server, stored=1000)
    # done may be 0 even though a batch is stored: the kill can come between the commit and its PubAck
    assert outcome.done < len(batch) and outcome.done % ATOMIC_BATCH_LIMIT == 0
    assert outcome.retry is not None and outcome.retry.reconnect
    nats_server.start()
    stored = keys_of(read_stream(nats_server.url, "TILLWIRE"))
    assert len(stored) >= outcome.done, "every acknowledged batch survived the kill"
    assert len(stored) % ATOMIC_BATCH_LIMIT == 0, "whole batches or nothing of them"
    assert stored == [ev.key for ev in batch[:len(stored)]], "what the server stored is a prefix of what was sent"

    sink.close()
    sink.connect(5)
    rest = sink.send(batch[outcome.done:])
    assert (rest.done, rest.retry) == (len(batch) - outcome.done, None)
    assert rest.duplicates == len(stored) - outcome.done, "a stored-but-unacked batch comes back as duplicates"
    assert keys_of(read_stream(nats_server.url, "TILLWIRE")) == [ev.key for ev in batch]
    sink.close()


def test_a_stalled_server_ends_the_batch_after_ack_timeout_s(nats_server, atomic_sink):
    sink = atomic_sink("ack_timeout_s = 0.3")
    nats_server.pause()
    try:
        started = time.monotonic()
        outcome = sink.send(events(40))
        elapsed = time.monotonic() - started
    finally:
        nats_server.resume()
    assert elapsed < 3
    assert outcome.done == 0 and outcome.retry.reconnect
    assert outcome.retry.reason == (f"no PubAck for the atomic batch {PREFIX}scanner:1 … {PREFIX}scanner:40 "
                                    f"within 0.3 s")


def test_a_connection_lost_between_batches_asks_for_a_reconnect(nats_server, atomic_sink):
    sink = atomic_sink()
    assert sink.send(events(40)).done == 40
    nats_server.stop()
    deadline = time.monotonic() + 10
    while True:
        outcome = sink.send(events(40, start=41))
        if outcome.retry is not None or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert outcome.done == 0 and outcome.retry.reconnect

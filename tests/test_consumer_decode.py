"""The consumer's decoders: every form a sink sends (bridge/sinks/cloudevents.py) comes back as the envelope."""

from __future__ import annotations

import io
import json

import msgpack
import pytest

from bridge.consumer import (NotAnEvent, from_file_line, from_json, from_mqtt, from_nats, from_webhook,
                             iter_jsonl, iter_msgpack_file, key)
from bridge.sinks import cloudevents
from bridge.sinks.base import Outgoing
from protocols.events import pack, to_json_view

SRC = "pos://store-1/till-3/payment"


def event(seq: int) -> Outgoing:
    env = {"src": SRC, "seq": seq, "ts": 1_795_000_000_123_456_789 + seq, "type": "payment.result",
           "data": {"approved": True, "amount_minor": 1299, "raw": b"\x01\xab"}}
    return Outgoing(rowid=seq, src=SRC, seq=seq, type="payment.result", ts=env["ts"], envelope=pack(env),
                    cls="realtime")


def exact(ev: Outgoing) -> dict:
    return ev.event()


def json_view(ev: Outgoing) -> dict:
    """Structured JSON carries the envelope's JSON view: bytes become lowercase hex."""
    return to_json_view(ev.event())


def test_nats_binary_mode():
    ev = event(7)
    headers = {**cloudevents.headers(ev), "Nats-Msg-Id": ev.key}
    env = from_nats(headers, ev.envelope)
    assert env == exact(ev) and key(env) == (SRC, 7)


def test_nats_headers_that_contradict_the_body_are_refused():
    ev = event(7)
    with pytest.raises(NotAnEvent, match="Nats-Msg-Id"):
        from_nats({"Nats-Msg-Id": f"{SRC}:8"}, ev.envelope)
    with pytest.raises(NotAnEvent, match="attribute id"):
        from_nats({**cloudevents.headers(event(8))}, ev.envelope)


def test_mqtt5_binary_mode_with_user_properties():
    ev = event(3)
    attrs = cloudevents.attributes(ev)
    attrs.pop("datacontenttype")
    assert from_mqtt(ev.envelope, list(attrs.items())) == exact(ev)
    assert from_mqtt(ev.envelope, {"ce-id": "3", "ce-source": SRC}) == exact(ev)
    with pytest.raises(NotAnEvent, match="source"):
        from_mqtt(ev.envelope, [("source", "pos://elsewhere")])


def test_mqtt311_structured_json():
    ev = event(4)
    assert from_mqtt(cloudevents.structured_json(ev)) == json_view(ev)


@pytest.mark.parametrize("content_type, encode, view", [
    (cloudevents.CE_JSON, lambda evs: cloudevents.structured_json(evs[0]), json_view),
    (cloudevents.CE_JSON_BATCH, cloudevents.batch_json, json_view),
    (cloudevents.CE_MSGPACK, lambda evs: cloudevents.structured_msgpack(evs[0]), exact),
    (cloudevents.CE_MSGPACK_BATCH, cloudevents.batch_msgpack, exact),
])
def test_webhook_bodies_by_content_type(content_type, encode, view):
    evs = [event(1), event(2), event(3)]
    batch = content_type.startswith("application/cloudevents-batch")
    sent = evs if batch else evs[:1]
    got = from_webhook(encode(sent), content_type + "; charset=utf-8")
    assert got == [view(ev) for ev in sent]


def test_webhook_binary_mode_and_its_idempotency_key():
    ev = event(9)
    headers = {**cloudevents.headers(ev), "Idempotency-Key": ev.key}
    assert from_webhook(ev.envelope, "application/msgpack", headers) == [exact(ev)]
    with pytest.raises(NotAnEvent, match="Idempotency-Key"):
        from_webhook(ev.envelope, "application/msgpack", {"Idempotency-Key": f"{SRC}:1"})


def test_file_lines_and_files():
    evs = [event(1), event(2)]
    lines = b"".join(cloudevents.structured_json(ev) + b"\n" for ev in evs) + b"\n"
    assert list(iter_jsonl(io.BytesIO(lines))) == [json_view(ev) for ev in evs]
    assert from_file_line(cloudevents.structured_json(evs[0]).decode()) == json_view(evs[0])
    packed = b"".join(cloudevents.structured_msgpack(ev) for ev in evs) + evs[0].envelope
    assert list(iter_msgpack_file(io.BytesIO(packed))) == [exact(evs[0]), exact(evs[1]), exact(evs[0])]


def test_a_bare_envelope_json_view_is_accepted():
    ev = event(5)
    assert from_json(json.dumps(json_view(ev))) == [json_view(ev)]


@pytest.mark.parametrize("body, content_type", [
    (b"not json", "application/json"),
    (b'{"specversion": "1.0", "data": {"seq": 1}}', "application/cloudevents+json"),
    (msgpack.packb({"seq": 1}), "application/msgpack"),
    (b"\xc1", "application/msgpack"),
    (b"{}", "text/plain"),
])
def test_what_is_not_an_event_is_one_line_without_the_body(body, content_type):
    with pytest.raises(NotAnEvent) as info:
        from_webhook(body, content_type)
    message = str(info.value)
    assert "\n" not in message and (len(body) < 3 or body.decode(errors="replace") not in message)


def test_a_torn_last_line_is_reported():
    ev = event(1)
    torn = cloudevents.structured_json(ev) + b"\n" + cloudevents.structured_json(ev)[:20]
    with pytest.raises(NotAnEvent, match="line 2"):
        list(iter_jsonl(io.BytesIO(torn)))

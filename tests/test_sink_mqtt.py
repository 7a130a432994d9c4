"""The MQTT sink against real brokers: Mosquitto for MQTT 5 (and 3.1.1), amqtt for 3.1.1.

What a consumer sees (topics, CloudEvents properties or structured JSON, QoS 1), what counts as delivered (a
PUBACK, nothing less), what happens when the broker is down, dies mid-batch, or withholds acks, and how
credentials are read and never shown.
"""

from __future__ import annotations

import json
import threading
import time

import msgpack
import pytest

from bridge.config import ConfigError
from bridge.sinks import cloudevents
from bridge.sinks.base import SinkUnavailable
from bridge.sinks.mqtt import MqttSink, PublishProperties, default_client_id
from mqtt_fixture import (SITE, SOURCE, TILL, AckGate, Subscriber, free_port, make_mqtt_broker,  # noqa: F401
                          mqtt_broker, mqtt_sink, outgoing)

TOPIC = f"tillwire/{SITE}/{TILL}"


def seqs(messages) -> list[int]:
    return [msgpack.unpackb(m.payload)["seq"] if m.content_type else json.loads(m.payload)["seq"]
            for m in messages]


@pytest.fixture
def closing():
    """Sinks, subscribers and gates registered here are closed at the end, whatever happens."""
    things = []
    yield things.append
    for thing in reversed(things):
        thing.close()


# --- what arrives ----------------------------------------------------------------------------------------------

def test_mqtt5_carries_cloudevents_attributes_as_user_properties_and_the_envelope_as_body(make_mqtt_broker,
                                                                                           closing):
    broker = make_mqtt_broker("mosquitto")
    sub = Subscriber(broker, protocol="5").connect()
    closing(sub)
    sink = mqtt_sink(broker, protocol="5")
    closing(sink)
    batch = outgoing(2) + outgoing(1, start=3, src=SOURCE + "scanner", type_="scanner.data")

    sink.connect(5)
    outcome = sink.send(batch)

    assert outcome.done == 3 and outcome.retry is None and outcome.parked == ()
    got = sub.wait_for(3)
    assert [m.topic for m in got] == [f"{TOPIC}/payment.result"] * 2 + [f"{TOPIC}/scanner.data"]
    for ev, m in zip(batch, got):
        assert m.qos == 1
        assert m.payload == ev.envelope                      # the envelope exactly as stored
        assert m.content_type == "application/msgpack"       # datacontenttype → Content Type
        assert m.user_properties == {"specversion": "1.0", "id": str(ev.seq), "source": ev.src,
                                     "type": ev.type, "time": cloudevents.rfc3339(ev.ts), "seq": str(ev.seq)}


@pytest.mark.parametrize("kind", ["amqtt", "mosquitto"])
def test_mqtt311_sends_structured_json_cloudevents(make_mqtt_broker, closing, kind):
    broker = make_mqtt_broker(kind)
    sub = Subscriber(broker, protocol="3.1.1").connect()
    closing(sub)
    sink = mqtt_sink(broker, protocol="3.1.1")
    closing(sink)
    batch = outgoing(5)

    sink.connect(5)
    assert sink.send(batch).done == 5

    got = sub.wait_for(5)
    assert [json.loads(m.payload) for m in got] == [cloudevents.structured_json_obj(ev) for ev in batch]
    first = json.loads(got[0].payload)
    assert first["datacontenttype"] == "application/json" and first["data"]["data"]["raw"] == "01ab"
    assert {m.topic for m in got} == {f"{TOPIC}/payment.result"} and {m.qos for m in got} == {1}
    assert got[0].user_properties == {} and got[0].content_type is None


def test_topics_use_the_prefix_and_safe_levels(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    sub = Subscriber(broker).connect()
    closing(sub)
    sink = mqtt_sink(broker, topic_prefix="acme/pos")
    closing(sink)
    sink.connect(5)
    sink.send(outgoing(1, type_="odd/type+#"))
    assert sub.wait_for(1)[0].topic == f"acme/pos/{SITE}/{TILL}/odd_type__"


def test_the_default_client_id_is_stable_and_names_site_till_and_sink(mqtt_broker):
    sink = mqtt_sink(mqtt_broker, name="backoffice")
    assert sink.client_id == f"tillwire-{SITE}-{TILL}-backoffice" == default_client_id(SITE, TILL, "backoffice")
    assert mqtt_sink(mqtt_broker, name="backoffice").client_id == sink.client_id
    assert default_client_id("store 1", "till/3", "x") == "tillwire-store_1-till_3-x"
    assert mqtt_sink(mqtt_broker, client_id="pos-17").client_id == "pos-17"
    assert "pos-17" in mqtt_sink(mqtt_broker, client_id="pos-17").describe()


def test_publish_properties_pack_like_the_mqtt5_spec():
    props = PublishProperties("a/b", [("k", "v")])
    # 0x03 + "a/b" (2-byte length + 3) is 6 bytes, 0x26 + "k" + "v" is 7: the section is 13 bytes long
    assert props.pack() == bytes([13, 0x03, 0, 3]) + b"a/b" + bytes([0x26, 0, 1]) + b"k" + bytes([0, 1]) + b"v"
    long = PublishProperties("x", [("k", "v" * 200)])  # 4 + 1 + 3 + 202 = 210 bytes
    assert long.pack()[:2] == bytes([0x80 | (210 % 128), 210 // 128])  # a two-byte variable byte integer
    assert len(long.pack()) == 2 + 210


# --- what counts as delivered ----------------------------------------------------------------------------------

def test_only_pubacked_events_count_and_the_rest_is_retried_on_a_new_connection(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    sub = Subscriber(broker).connect()
    closing(sub)
    gate = AckGate(broker, allow=4, mode="swallow")  # the broker stores all 10; only 4 PUBACKs come back
    closing(gate)
    sink = mqtt_sink(broker, url=gate.url, ack_timeout_s=0.5)
    closing(sink)
    batch = outgoing(10)

    sink.connect(5)
    outcome = sink.send(batch)

    assert outcome.done == 4
    assert outcome.retry is not None and outcome.retry.reconnect
    assert outcome.retry.reason == "no PUBACK within 0.5 s"
    assert seqs(sub.wait_for(10)) == list(range(1, 11))  # written and stored is not acknowledged

    # the runner sends the rest again on a new connection: the consumer sees 5..10 twice and de-duplicates
    sink.close()
    direct = mqtt_sink(broker)
    closing(direct)
    direct.connect(5)
    assert direct.send(batch[4:]).done == 6
    assert seqs(sub.wait_for(16)) == list(range(1, 11)) + list(range(5, 11))


def test_a_connection_cut_after_some_pubacks_gives_the_acked_prefix(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    gate = AckGate(broker, allow=7, mode="cut")
    closing(gate)
    sink = mqtt_sink(broker, url=gate.url, ack_timeout_s=10)
    closing(sink)
    sink.connect(5)
    outcome = sink.send(outgoing(50))
    assert outcome.done == 7
    assert outcome.retry.reconnect and outcome.retry.reason == "connection lost (closed)"


def test_the_broker_receive_maximum_bounds_what_is_in_flight(make_mqtt_broker, closing):
    broker = make_mqtt_broker("mosquitto", max_inflight_messages=5)  # CONNACK Receive Maximum 5
    sub = Subscriber(broker).connect()
    closing(sub)
    sink = mqtt_sink(broker, protocol="5", max_inflight=100)
    closing(sink)
    sink.connect(5)
    assert sink.window == 5
    assert sink.send(outgoing(200)).done == 200
    assert 1 <= sink.peak_inflight <= 5
    assert seqs(sub.wait_for(200)) == list(range(1, 201))


def test_max_inflight_bounds_the_window_when_the_broker_allows_more(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    sink = mqtt_sink(broker, max_inflight=3)
    closing(sink)
    sink.connect(5)
    assert sink.send(outgoing(100)).done == 100
    assert sink.window == 3 and sink.peak_inflight <= 3


def test_an_acl_refusal_backs_off_in_order_instead_of_parking(make_mqtt_broker, closing, tmp_path):
    """PUBACK 0x87: the broker refuses *our client* that topic, for every event of the type alike. Parking would
    dead-letter the day out of order; the sink stops at the refused event and the runner backs off (sink_down)."""
    acl = tmp_path / "acl"
    acl.write_text(f"user till\ntopic write {TOPIC}/payment.result\ntopic read #\n")
    broker = make_mqtt_broker("mosquitto", users={"till": "s3cret-pw"}, extra_config=(f"acl_file {acl}",))
    (tmp_path / "pw").write_text("s3cret-pw\n")
    sink = mqtt_sink(broker, protocol="5", username="till", password_file="pw", base=tmp_path)
    closing(sink)
    batch = outgoing(2) + outgoing(1, start=3, type_="scanner.data") + outgoing(2, start=4)

    sink.connect(5)
    outcome = sink.send(batch)

    assert outcome.done == 2 and outcome.parked == ()
    assert outcome.retry.reason == f"PUBACK 0x87 Not authorized for {TOPIC}/scanner.data"
    assert outcome.retry.reconnect and "s3cret-pw" not in outcome.retry.reason


def mixed(types: dict[int, str], n: int) -> list:
    """Events 1..n of one source, ``payment.result`` unless ``types`` names another type for that seq."""
    return [outgoing(1, start=seq, src=SOURCE + "pos", type_=types.get(seq, "payment.result"))[0]
            for seq in range(1, n + 1)]


def publish_marker(broker, username: str, password: str, topic: str) -> None:
    """One QoS 1 message from another client, PUBACKed before this returns. Mosquitto handles messages one at a
    time, so a subscriber that has the marker has everything the sink had PUBACKed (or refused) before it."""
    import paho.mqtt.publish as publish
    from paho.mqtt.client import MQTTv5

    publish.single(topic, b"marker", qos=1, hostname=broker.host, port=broker.port, protocol=MQTTv5,
                   auth={"username": username, "password": password})


def test_an_acl_refused_event_is_retried_alone_and_the_events_after_it_are_not_flooded(make_mqtt_broker, closing,
                                                                                       tmp_path):
    """The reviewer's case: the ACL refuses one type (0x87) while the other is accepted, interleaved. The events
    after the refused one that were already in flight are accepted and delivered before it (MQTT cannot take them
    back); every retry then sends the refused event alone, so they are not delivered again and again; once the ACL
    is fixed it arrives, and the events the broker had already accepted are not sent a second time."""
    acl = tmp_path / "acl"
    allowed = f"user till\ntopic write {TOPIC}/payment.result\ntopic write marker\nuser reader\ntopic read #\n"
    acl.write_text(allowed)
    users = {"till": "till-pw", "reader": "reader-pw"}
    broker = make_mqtt_broker("mosquitto", users=users, extra_config=(f"acl_file {acl}",))
    sub = Subscriber(broker, protocol="5", username="reader", password="reader-pw").connect()
    closing(sub)
    sink = mqtt_sink(broker, protocol="5", username="till", password_env="PW", env={"PW": "till-pw"})
    closing(sink)
    batch = mixed({3: "scanner.data", 8: "scanner.data"}, 12)  # 3 and 8 are refused, the rest accepted
    refused = f"PUBACK 0x87 Not authorized for {TOPIC}/scanner.data"

    # the first attempt: the whole window goes out; 3 is refused, 4..7 and 9..12 are accepted all the same
    sink.connect(5)
    outcome = sink.send(batch)
    assert (outcome.done, outcome.parked, outcome.retry.reason) == (2, (), refused)
    assert sink.published == 12

    # the runner keeps batch[2:] and tries again on a new connection: 3 goes alone, refused each time
    current = batch[outcome.done:]
    for _ in range(3):
        sink.close()
        before = sink.published
        outcome = sink.send(current)
        assert (outcome.done, outcome.retry.reason) == (0, refused)
        assert sink.published - before == 1  # only the refused event, not the window after it
    publish_marker(broker, "till", "till-pw", "marker")
    got = sub.wait_for(11)
    assert got[-1].topic == "marker"
    assert seqs(got[:-1]) == [1, 2, 4, 5, 6, 7, 9, 10, 11, 12]  # once each, whatever the number of retries

    # the ACL is fixed: 3 goes through alone, then the full window is back for what is left: 8 (4..7 and 9..12
    # were PUBACKed on the first attempt and count as delivered without being sent again)
    acl.write_text(allowed + f"user till\ntopic write {TOPIC}/scanner.data\n")
    broker.reload()
    deadline = time.monotonic() + 10
    while True:
        sink.close()
        before = sink.published
        outcome = sink.send(current)
        if outcome.retry is None:
            break
        assert outcome.retry.reason == refused and sink.published - before == 1
        assert time.monotonic() < deadline, "Mosquitto did not take the new ACL within 10 s"
        time.sleep(0.05)  # the runner's backoff
    assert (outcome.done, outcome.parked) == (10, ())
    assert sink.published - before == 2  # 3, then 8
    publish_marker(broker, "till", "till-pw", "marker")
    got = sub.wait_for(14)
    assert got[-1].topic == "marker"
    assert seqs(got[11:-1]) == [3, 8]
    # no event twice; 3 and 8 came after events with a higher seq, which bridge.consumer's gap detection shows
    # as missing until they arrive
    assert sorted(seqs(got[:10] + got[11:-1])) == list(range(1, 13))

    # and the next batch has the full window again
    sink.peak_inflight = 0
    assert sink.send(mixed({}, 200)[12:]).done == 188
    assert sink.peak_inflight == 188


def test_a_refused_event_sent_alone_keeps_that_rule_across_a_lost_connection(make_mqtt_broker, closing, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text(f"user till\ntopic write {TOPIC}/payment.result\n")
    broker = make_mqtt_broker("mosquitto", users={"till": "pw"}, extra_config=(f"acl_file {acl}",))
    sink = mqtt_sink(broker, protocol="5", username="till", password_env="PW", env={"PW": "pw"}, ack_timeout_s=1)
    closing(sink)
    batch = mixed({1: "scanner.data"}, 5)
    sink.connect(5)
    assert sink.send(batch).retry.reason.startswith("PUBACK 0x87")
    assert sink.published == 5

    broker.stop()  # the next attempt finds no broker: the runner's batch is unchanged
    with pytest.raises(SinkUnavailable):
        sink.connect(1)
    broker.start()
    sink.close()
    assert sink.send(batch).done == 0 and sink.published == 6  # still alone

    # a batch that starts elsewhere (a re-drive, another runner) is sent as usual
    other = mixed({}, 8)[5:]
    assert sink.send(other).done == 3 and sink.published == 9


@pytest.mark.parametrize("code, name", [(0x99, "Payload format invalid"), (0x90, "Topic Name invalid")])
def test_a_message_the_broker_refuses_for_good_is_parked_and_the_next_goes_out(make_mqtt_broker, closing,
                                                                               code, name):
    broker = make_mqtt_broker("mosquitto")
    gate = AckGate(broker, allow=2, mode="refuse", reason_code=code)  # the 3rd PUBACK says "never"
    closing(gate)
    sink = mqtt_sink(broker, url=gate.url, protocol="5")
    closing(sink)
    sink.connect(5)
    outcome = sink.send(outgoing(5))
    assert outcome.done == 5 and outcome.retry is None
    assert [(p.index, p.status, p.reason) for p in outcome.parked] == [(2, None, f"MQTT PUBACK 0x{code:02X} {name}")]


def test_a_passing_refusal_such_as_quota_exceeded_is_retried(make_mqtt_broker, closing):
    broker = make_mqtt_broker("mosquitto")
    gate = AckGate(broker, allow=3, mode="refuse", reason_code=0x97)
    closing(gate)
    sink = mqtt_sink(broker, url=gate.url, protocol="5")
    closing(sink)
    sink.connect(5)
    batch = outgoing(6)
    outcome = sink.send(batch)
    assert outcome.done == 3 and outcome.parked == ()
    assert outcome.retry.reason == f"PUBACK 0x97 Quota exceeded for {TOPIC}/payment.result"
    assert sink.published == 6

    # the retry sends 4 alone; the gate lets its PUBACK through this time; 5 and 6 were PUBACKed on the first
    # attempt, so they are done without being sent again
    sink.close()
    outcome = sink.send(batch[3:])
    assert outcome.done == 3 and outcome.retry is None and sink.published == 7


def test_on_mqtt311_a_refused_publish_cannot_be_seen(make_mqtt_broker, closing, tmp_path):
    """Why the docs say: use MQTT 5 where ACLs matter. 3.1.1's PUBACK has no reason code; Mosquitto acks and drops."""
    acl = tmp_path / "acl"
    acl.write_text(f"user till\ntopic write {TOPIC}/payment.result\n")
    broker = make_mqtt_broker("mosquitto", users={"till": "pw-311"}, extra_config=(f"acl_file {acl}",))
    sink = mqtt_sink(broker, protocol="3.1.1", username="till", password_env="PW", env={"PW": "pw-311"})
    closing(sink)
    sink.connect(5)
    outcome = sink.send(outgoing(1, type_="scanner.data"))
    assert outcome.done == 1 and outcome.parked == () and outcome.retry is None


# --- the broker away -------------------------------------------------------------------------------------------

def test_a_broker_that_is_down_is_one_line_sink_unavailable():
    port = free_port()
    sink = mqtt_sink(url=f"mqtt://127.0.0.1:{port}")
    with pytest.raises(SinkUnavailable) as err:
        sink.connect(2)
    assert str(err.value) == f"cannot connect to mqtt://127.0.0.1:{port}: Connection refused"
    sink.close()


def test_no_connack_within_the_timeout_is_sink_unavailable(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    gate = AckGate(broker, allow=0, mode="silent")  # even the CONNACK is swallowed
    closing(gate)
    sink = mqtt_sink(broker, url=gate.url)
    closing(sink)
    with pytest.raises(SinkUnavailable, match=r"^cannot connect to .*: no CONNACK within 0.3 s$"):
        sink.connect(0.3)


def test_broker_killed_mid_batch_gives_the_prefix_then_the_rest_arrives_in_order(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    sub = Subscriber(broker).connect()
    gate = AckGate(broker, allow=300, mode="swallow")  # holds the batch open after 300 PUBACKs
    closing(gate)
    sink = mqtt_sink(broker, url=gate.url, ack_timeout_s=30)
    closing(sink)
    batch = outgoing(1000)

    def kill_when_stored():
        sub.wait_for(1000, timeout=20)  # the broker has every message; the sink has 300 PUBACKs
        broker.kill()

    killer = threading.Thread(target=kill_when_stored)
    sink.connect(5)
    killer.start()
    outcome = sink.send(batch)
    killer.join(20)
    sub.close()

    assert outcome.done == 300
    assert outcome.retry.reconnect and outcome.retry.reason.startswith("connection lost")
    with pytest.raises(SinkUnavailable):  # the broker is still down
        sink.connect(1)

    broker.start()  # same port
    after = Subscriber(broker, client_id="after-restart").connect()
    closing(after)
    direct = mqtt_sink(broker)
    closing(direct)
    direct.connect(5)
    assert direct.send(batch[outcome.done:]).done == 700
    assert seqs(after.wait_for(700)) == list(range(301, 1001))


def test_a_connection_dropped_while_idle_is_made_again_at_the_next_send(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    sink = mqtt_sink(broker)
    closing(sink)
    sink.connect(5)
    assert sink.send(outgoing(1)).done == 1
    broker.stop()
    broker.start()
    sub = Subscriber(broker).connect()
    closing(sub)
    assert sink.send(outgoing(3, start=2)).done == 3
    assert seqs(sub.wait_for(3)) == [2, 3, 4]


def test_interrupt_cuts_a_wait_for_pubacks_short(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    gate = AckGate(broker, allow=0, mode="swallow")  # the CONNACK passes, no PUBACK does
    closing(gate)
    sink = mqtt_sink(broker, url=gate.url, ack_timeout_s=60)
    closing(sink)
    sink.connect(5)
    timer = threading.Timer(0.3, sink.interrupt)
    timer.start()
    t0 = time.monotonic()
    outcome = sink.send(outgoing(5))
    timer.join()
    assert outcome.done == 0 and outcome.retry.reason == "the bridge is stopping"
    assert time.monotonic() - t0 < 30  # not the 60 s ack timeout
    with pytest.raises(SinkUnavailable, match="stopping"):
        sink.connect(5)


# --- sessions ----------------------------------------------------------------------------------------------------

def test_a_subscriber_offline_while_publishing_receives_after_reconnecting(make_mqtt_broker, closing):
    broker = make_mqtt_broker()
    Subscriber(broker, client_id="backoffice").connect().disconnect()  # its session stays on the broker
    sink = mqtt_sink(broker)
    closing(sink)
    sink.connect(5)
    assert sink.send(outgoing(50)).done == 50
    sub = Subscriber(broker, client_id="backoffice").connect()
    closing(sub)
    assert seqs(sub.wait_for(50)) == list(range(1, 51))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_the_sink_keeps_a_persistent_session(make_mqtt_broker, closing, protocol):
    broker = make_mqtt_broker("mosquitto")
    sink = mqtt_sink(broker, protocol=protocol)
    closing(sink)
    sink.connect(5)
    assert not sink.session_present  # the first time
    sink.close()
    sink.connect(5)
    assert sink.session_present      # clean start 0 / clean session 0: the broker kept it


# --- credentials ---------------------------------------------------------------------------------------------------

PASSWORD = "pa55-w0rd-not-to-be-shown"


@pytest.mark.parametrize("source", ["file", "env"])
def test_username_and_password_from_a_file_or_the_environment(make_mqtt_broker, closing, tmp_path, source):
    broker = make_mqtt_broker("mosquitto", users={"till": PASSWORD})
    sub = Subscriber(broker, username="till", password=PASSWORD).connect()
    closing(sub)
    if source == "file":
        (tmp_path / "mqtt.pw").write_text(PASSWORD + "\n")
        sink = mqtt_sink(broker, username="till", password_file="mqtt.pw", base=tmp_path)
    else:
        sink = mqtt_sink(broker, username="till", password_env="TILL_MQTT_PW", env={"TILL_MQTT_PW": PASSWORD})
    closing(sink)
    sink.connect(5)
    assert sink.send(outgoing(2)).done == 2
    assert seqs(sub.wait_for(2)) == [1, 2]
    assert PASSWORD not in sink.describe() and PASSWORD not in repr(sink.options)
    assert PASSWORD in sink.context.secrets  # so the runner masks it in any text it shows


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_wrong_password_is_one_line_without_the_password(make_mqtt_broker, closing, protocol):
    broker = make_mqtt_broker("mosquitto", users={"till": "the-right-one"})
    sink = mqtt_sink(broker, protocol=protocol, username="till", password_env="PW", env={"PW": PASSWORD})
    closing(sink)
    with pytest.raises(SinkUnavailable) as err:
        sink.connect(5)
    message = str(err.value)
    assert message.startswith(f"{broker.url} refused the connection: ")
    assert message.endswith("Not authorized")  # Mosquitto's CONNACK reason on both protocols
    assert "\n" not in message and PASSWORD not in message
    assert err.value.__cause__ is None and err.value.__context__ is None  # no chained traceback to log


# --- TLS ------------------------------------------------------------------------------------------------------------

def test_mqtts_verifies_the_broker_certificate(make_mqtt_broker, closing):
    broker = make_mqtt_broker("mosquitto", tls=True)
    assert broker.url.startswith("mqtts://")
    trusted = mqtt_sink(broker, tls_ca_file=str(broker.ca_file))
    closing(trusted)
    trusted.connect(5)
    assert trusted.send(outgoing(3)).done == 3

    untrusted = mqtt_sink(broker)  # the system CAs do not know a self-signed certificate
    closing(untrusted)
    with pytest.raises(SinkUnavailable) as err:
        untrusted.connect(5)
    assert str(err.value) == (f"cannot connect to {broker.url}: TLS certificate check failed "
                              f"(self-signed certificate)")

    unchecked = mqtt_sink(broker, tls_verify=False)  # possible, and said out loud in the config
    closing(unchecked)
    unchecked.connect(5)
    assert unchecked.send(outgoing(1)).done == 1


# --- config --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keys, message", [
    ({"url": "http://broker"}, "sinks[0].url: must start with mqtt:// or mqtts://"),
    ({"url": "mqtt://u:p@broker"}, "sinks[0].url: must not carry user:password@"),
    ({"url": "mqtt://broker/topic"}, "sinks[0].url: must be mqtt://host[:port] or mqtts://host[:port]"),
    ({"protocol": "4"}, "sinks[0].protocol: must be \"5\" or \"3.1.1\", not '4'"),
    ({"password": "x", "username": "u"}, "sinks[0].password: a secret never goes into the config file"),
    ({"password_file": "nope", "username": "u"}, "sinks[0].password_file: no such file"),
    ({"password_env": "UNSET_VAR_FOR_TEST", "username": "u"},
     "sinks[0].password_env: environment variable UNSET_VAR_FOR_TEST is not set"),
    ({"password_env": "PW"}, "sinks[0].password_env: needs username too"),
    ({"tls_verify": False}, "sinks[0].tls_verify: TLS settings need an mqtts:// url"),
    ({"protocol": "3.1.1", "session_expiry_s": 60}, "sinks[0].session_expiry_s: applies to protocol \"5\" only"),
    ({"topic_prefix": "a/#"}, "sinks[0].topic_prefix: must be topic levels"),
    ({"topic_prefix": "/a"}, "sinks[0].topic_prefix: must be topic levels"),
    ({"max_inflight": 0}, "sinks[0].max_inflight: must be between 1 and 65535"),
    ({"tls_ca_file": "missing.pem", "url": "mqtts://broker"}, "sinks[0].tls_ca_file: no such file"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_config_mistakes_are_one_line_naming_the_key(tmp_path, keys, message):
    from mqtt_fixture import sink_settings

    keys = {"url": "mqtt://broker", **keys}
    with pytest.raises(ConfigError) as err:
        sink_settings(keys, base=tmp_path, env={"PW": "x"})
    text = str(err.value)
    assert message in text and "\n" not in text
    assert "p@broker" not in text


def test_config_defaults_and_mqtts(tmp_path):
    from mqtt_fixture import sink_settings

    plain = sink_settings({"url": "mqtt://broker"}, base=tmp_path).options
    assert (plain.port, plain.protocol, plain.topic_prefix, plain.session_expiry_s, plain.keepalive_s,
            plain.max_inflight, plain.tls) == (1883, "5", "tillwire", 86_400, 60, 1000, None)
    secure = sink_settings({"url": "mqtts://broker"}, base=tmp_path).options
    assert secure.port == 8883 and secure.tls is not None and secure.tls.verify
    assert MqttSink.default_max_batch >= plain.max_inflight  # a batch can fill the window

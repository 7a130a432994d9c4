"""The MQTT test broker itself: both kinds run, deliver QoS 1 with properties, and keep sessions across restarts."""

from __future__ import annotations

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqtt_fixture import Subscriber, make_mqtt_broker, mqtt_broker  # noqa: F401  (fixtures)


def publish(broker, protocol: str, messages: list[tuple[str, bytes]], *, user: dict | None = None) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fixture-publisher",
                         protocol=paho.MQTTv5 if protocol == "5" else paho.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        props = None
        if user:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = list(user.items())
        infos = [client.publish(topic, body, qos=1, properties=props) for topic, body in messages]
        for info in infos:
            info.wait_for_publish(timeout=5)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_each_broker_kind_delivers_qos1_in_order(make_mqtt_broker, kind):
    broker = make_mqtt_broker(kind)
    assert broker.kind == kind and broker.url == f"mqtt://127.0.0.1:{broker.port}"
    sub = Subscriber(broker, topic="t/#").connect()
    try:
        publish(broker, broker.protocols[0], [(f"t/{i}", b"m%d" % i) for i in range(20)])
        got = sub.wait_for(20)
        assert [m.payload for m in got] == [b"m%d" % i for i in range(20)]
        assert {m.qos for m in got} == {1}
    finally:
        sub.close()


def test_mosquitto_carries_mqtt5_user_properties(make_mqtt_broker):
    broker = make_mqtt_broker("mosquitto")
    sub = Subscriber(broker, protocol="5").connect()
    try:
        publish(broker, "5", [("x", b"body")], user={"ce_id": "7"})
        assert sub.wait_for(1)[0].user_properties == {"ce_id": "7"}
    finally:
        sub.close()


def test_a_persistent_session_outlives_the_subscriber_and_a_broker_restart(make_mqtt_broker):
    broker = make_mqtt_broker("mosquitto")
    Subscriber(broker, client_id="offline-reader").connect().disconnect()
    publish(broker, "5", [("q", b"one"), ("q", b"two")])
    broker.stop()   # SIGTERM: Mosquitto writes its persistence file
    broker.start()  # same port, same directory
    sub = Subscriber(broker, client_id="offline-reader").connect()
    try:
        assert [m.payload for m in sub.wait_for(2)] == [b"one", b"two"]
    finally:
        sub.close()


def test_a_started_broker_is_stopped_and_killed_for_good(make_mqtt_broker):
    broker = make_mqtt_broker()
    broker.kill()
    assert not broker.running
    broker.start()
    assert broker.running
    broker.stop()
    assert not broker.running


def test_mosquitto_durability_caveat_a_puback_is_not_on_disk(make_mqtt_broker):
    """docs/bridge/sinks-mqtt.md §5: what Mosquitto acknowledged but had not autosaved dies with a SIGKILL."""
    broker = make_mqtt_broker("mosquitto")
    Subscriber(broker, client_id="offline").connect().disconnect()
    publish(broker, "5", [("q", b"acked")])  # PUBACKed, queued for the offline subscriber, in memory only
    broker.kill()
    broker.start()
    sub = Subscriber(broker, client_id="offline").connect()
    try:
        assert not sub.session_present  # the session and its queued message are gone
    finally:
        sub.close()


def test_without_mosquitto_the_default_is_amqtt_and_asking_for_mosquitto_fails_naming_the_script(
        monkeypatch, tmp_path):
    import mqtt_fixture

    monkeypatch.setattr(mqtt_fixture, "mosquitto_binary", lambda: None)
    assert mqtt_fixture.MqttBroker(tmp_path / "a").kind == "amqtt"
    with pytest.raises(pytest.fail.Exception) as err:
        mqtt_fixture.MqttBroker(tmp_path / "m", "mosquitto")
    assert str(err.value) == ("a mosquitto broker needs Mosquitto, which is not installed: run "
                              "tools/ensure-mosquitto (make test does)")

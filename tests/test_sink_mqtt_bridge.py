"""A real `tillwire run` child delivering to a real MQTT broker through a `[[sinks]] kind = "mqtt"` entry."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

import msgpack

from bridge_helpers import PREFIX, ROOT, free_port, high_water, start_bridge, stop, wait_for, wait_port, write_config
from mqtt_fixture import Subscriber, make_mqtt_broker  # noqa: F401  (fixture)

LABEL = b"]E04006381333931\r"
PASSWORD = "br1dge-pw-never-shown"


def mqtt_config(tmp_path, scanner_port: int, url: str, feed_port: int | bool = False, **keys) -> object:
    extra = "\n".join(f"{k} = {json.dumps(v)}" for k, v in keys.items())
    sinks = f"""
[[sinks]]
name = "bus"
kind = "mqtt"
url = "{url}"
{extra}
"""
    return write_config(tmp_path, [{"name": "scanner", "protocol": "scanner",
                                    "transport": f"tcp-listen://127.0.0.1:{scanner_port}"}],
                        feed=feed_port, extra_toml=sinks)


def scans(sub: Subscriber) -> list[dict]:
    return [msgpack.unpackb(m.payload) for m in list(sub.messages)]


def tillwire(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_the_bridge_delivers_captured_events_to_mqtt_in_order(make_mqtt_broker, tmp_path):
    broker = make_mqtt_broker("mosquitto", users={"till": PASSWORD})
    sub = Subscriber(broker, topic="tillwire/#", username="till", password=PASSWORD).connect()
    port, feed_port = free_port(), free_port()
    cfg = mqtt_config(tmp_path, port, broker.url, feed_port, username="till", password_env="TILL_MQTT_PASSWORD")
    proc = start_bridge(cfg, env={"TILL_MQTT_PASSWORD": PASSWORD})
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(LABEL * 25)
            wait_for(lambda: sum(e["type"] == "scanner.data" for e in scans(sub)) == 25, timeout=15,
                     what="25 scans at the subscriber")
        with urllib.request.urlopen(f"http://127.0.0.1:{feed_port}/sinks", timeout=5) as resp:
            (st,) = json.loads(resp.read())["sinks"]
        assert st["kind"] == "mqtt" and st["state"] in ("up", "idle") and st["retries"] == 0
        assert broker.url in st["target"] and PASSWORD not in json.dumps(st)
        status = tillwire("outbox", "--config", str(cfg), env={"TILL_MQTT_PASSWORD": PASSWORD})
        assert status.returncode == 0 and "sink bus" in status.stdout and PASSWORD not in status.stdout
    finally:
        rc, out, err = stop(proc)
        sub.close()
    assert rc == 0, err
    assert PASSWORD not in out + err
    events = scans(sub)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # every event once, in order
    assert high_water(tmp_path / "outbox.sqlite") == {PREFIX + "scanner": len(events)}
    topics = {m.topic for m in sub.messages}
    assert "tillwire/test-store/till-1/scanner.data" in topics
    assert {m.user_properties["source"] for m in sub.messages} == {PREFIX + "scanner"}


def test_broker_down_at_start_the_bridge_captures_and_delivers_later(make_mqtt_broker, tmp_path):
    broker = make_mqtt_broker("mosquitto")
    Subscriber(broker, topic="tillwire/#", client_id="backoffice").connect().disconnect()  # a persistent session
    broker.stop()  # SIGTERM: Mosquitto saves the session
    port = free_port()
    cfg = mqtt_config(tmp_path, port, broker.url, backoff_base_s=0.05, backoff_cap_s=0.2, connect_timeout_s=1)
    proc = start_bridge(cfg)
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(LABEL * 10)
        wait_for(lambda: high_water(tmp_path / "outbox.sqlite").get(PREFIX + "scanner", 0) >= 10,
                 what="10 scans captured while the broker is down")
        broker.start()
        sub = Subscriber(broker, topic="tillwire/#", client_id="backoffice").connect()
        try:
            stored = high_water(tmp_path / "outbox.sqlite")[PREFIX + "scanner"]
            wait_for(lambda: len(scans(sub)) >= stored, timeout=15, what="the backlog at the subscriber")
            assert [e["seq"] for e in scans(sub)] == list(range(1, stored + 1))
        finally:
            sub.close()
    finally:
        rc, out, err = stop(proc)
    assert rc == 0, err


def test_a_missing_password_variable_stops_the_bridge_with_one_line(tmp_path):
    cfg = mqtt_config(tmp_path, free_port(), "mqtt://127.0.0.1:1", username="till",
                      password_env="TILLWIRE_TEST_UNSET_PASSWORD")
    proc = start_bridge(cfg, env={"TILLWIRE_TEST_UNSET_PASSWORD": ""})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.decode().count("\n") == 1 and "Traceback" not in err.decode()
    assert "sinks[0].password_env: environment variable TILLWIRE_TEST_UNSET_PASSWORD is not set" in err.decode()

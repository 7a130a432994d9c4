"""A real MQTT broker for tests, and a subscriber that collects what it delivers.

``MqttBroker`` runs **Mosquitto** (MQTT 5 and 3.1.1; on this project's machines ``tools/ensure-mosquitto`` unpacks
Debian's package into ``.venv/opt/mosquitto``) or, when Mosquitto is not there, the **amqtt** Python broker
(MQTT 3.1.1 only) in a child process. Each broker listens on a free loopback port, keeps its persistence file in
its own directory, and can be stopped (SIGTERM: Mosquitto writes its persistence file), killed (SIGKILL: what
was not autosaved is gone) and started again on the same port and directory.

Fixtures (import them into a test module: ``from mqtt_fixture import mqtt_broker, make_mqtt_broker``):

- ``mqtt_broker``: a started broker of whatever kind is available (Mosquitto preferred).
- ``make_mqtt_broker(kind=None, **options)``: a factory for brokers of a **named** kind (``"mosquitto"`` or
  ``"amqtt"``), so the MQTT 5 path is tested against Mosquitto and the 3.1.1 path against amqtt in every run.
  Asking for Mosquitto where it cannot run fails with one line naming ``tools/ensure-mosquitto``.

``Subscriber`` is a paho client with a persistent session and QoS 1 that keeps every message with its
properties (``Received``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("mosquitto", "amqtt")
ENSURE = "tools/ensure-mosquitto"

AMQTT_SCRIPT = r'''
import asyncio, logging, signal, sys
from amqtt.broker import Broker

async def main(port):
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await broker.shutdown()

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
asyncio.run(main(int(sys.argv[1])))
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str | None:
    """Mosquitto on PATH, in /usr/sbin, or unpacked by tools/ensure-mosquitto next to this Python."""
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto",
                      str(Path(sys.prefix) / "bin" / "mosquitto"), str(ROOT / ".venv" / "bin" / "mosquitto")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def mosquitto_passwd_binary() -> str | None:
    for candidate in (shutil.which("mosquitto_passwd"), "/usr/bin/mosquitto_passwd",
                      str(Path(sys.prefix) / "bin" / "mosquitto_passwd"),
                      str(ROOT / ".venv" / "bin" / "mosquitto_passwd")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def default_kind() -> str:
    return "mosquitto" if mosquitto_binary() else "amqtt"


def require_mosquitto(what: str = "this test") -> str:
    binary = mosquitto_binary()
    if binary is None:
        pytest.fail(f"{what} needs Mosquitto, which is not installed: run {ENSURE} (make test does)", pytrace=False)
    return binary


class MqttBroker:
    """One broker process on a fixed free loopback port; ``start``/``stop``/``kill``/``start`` keep port and data."""

    def __init__(self, workdir: Path, kind: str | None = None, *, users: dict[str, str] | None = None,
                 autosave_interval: int | None = None, max_queued_messages: int = 1_000_000,
                 max_inflight_messages: int = 0, tls: bool = False, extra_config: tuple[str, ...] = ()):
        kind = kind or default_kind()
        if kind not in KINDS:
            raise ValueError(f"unknown broker kind {kind!r}")
        if kind == "amqtt" and (users or extra_config or tls):
            raise ValueError("users, tls and extra_config are Mosquitto features here")
        self.kind = kind
        self.binary = require_mosquitto(f"a {kind} broker") if kind == "mosquitto" else sys.executable
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persistence_dir = self.workdir / "persistence"
        self.persistence_dir.mkdir(exist_ok=True)
        self.log_path = self.workdir / f"{kind}.log"
        self.port = free_port()
        self.users = dict(users or {})
        self.autosave_interval = autosave_interval
        self.max_queued_messages = max_queued_messages
        self.max_inflight_messages = max_inflight_messages  # also the MQTT 5 Receive Maximum (0: none sent)
        self.extra_config = tuple(extra_config)
        self.tls = tls
        self.ca_file: Path | None = None  # with tls: the broker's self-signed certificate, to trust
        self.proc: subprocess.Popen | None = None
        self._log = None

    # --- where it is
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def protocols(self) -> tuple[str, ...]:
        return ("5", "3.1.1") if self.kind == "mosquitto" else ("3.1.1",)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- life cycle
    def start(self, timeout: float = 10.0) -> "MqttBroker":
        if self.running:
            return self
        argv = self._argv()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reap()
                raise AssertionError(f"the {self.kind} broker exited with {self.proc.returncode}: "
                                     f"{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise AssertionError(f"the {self.kind} broker did not listen on port {self.port} within {timeout} s: "
                             f"{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (Mosquitto saves its persistence file on the way out)."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: whatever Mosquitto had not autosaved is lost, as in a power cut."""
        self._signal(signal.SIGKILL, 10.0)

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its configuration again, the ``acl_file`` and ``password_file`` included. It
        returns at once; the new rules apply when Mosquitto gets to it (poll for their effect)."""
        if self.kind != "mosquitto" or not self.running:
            raise AssertionError(f"only a running Mosquitto reloads its configuration (this is {self.kind})")
        self.proc.send_signal(signal.SIGHUP)

    def close(self) -> None:
        if self.running:
            try:
                self.stop(timeout=5.0)
            except AssertionError:
                self.kill()
        self._reap()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # --- internals
    def _signal(self, sig, timeout: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._reap()
                raise AssertionError(f"the {self.kind} broker ignored {sig!r} for {timeout} s")
        self._reap()

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _argv(self) -> list[str]:
        if self.kind == "amqtt":
            script = self.workdir / "amqtt_broker.py"
            script.write_text(AMQTT_SCRIPT)
            return [sys.executable, str(script), str(self.port)]
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            *self._tls_lines(),
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root, Mosquitto would otherwise become 'nobody'
            "persistence true",
            f"persistence_location {self.persistence_dir}/",
            "persistence_file mosquitto.db",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_inflight_messages {self.max_inflight_messages}",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if self.autosave_interval is not None:
            lines.append(f"autosave_interval {self.autosave_interval}")
        if self.users:
            lines += ["allow_anonymous false", f"password_file {self._password_file()}"]
        else:
            lines.append("allow_anonymous true")
        lines += list(self.extra_config)
        conf.write_text("\n".join(lines) + "\n")
        return [self.binary, "-c", str(conf)]

    def _tls_lines(self) -> list[str]:
        if not self.tls:
            return []
        if self.ca_file is None:
            self.ca_file, key = self_signed_certificate(self.workdir / "tls")
            self._key_file = key
        return [f"certfile {self.ca_file}", f"keyfile {self._key_file}"]

    def _password_file(self) -> Path:
        path = self.workdir / "passwords"
        if path.exists():
            return path
        tool = mosquitto_passwd_binary()
        if tool is None:
            pytest.fail(f"mosquitto_passwd is not installed: run {ENSURE}", pytrace=False)
        path.write_text("")
        for user, password in self.users.items():
            subprocess.run([tool, "-b", str(path), user, password], check=True, timeout=10,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        path.chmod(0o600)
        return path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 and localhost, its own CA (``openssl``), and its key."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS tests need the openssl command (apt-get install openssl)", pytrace=False)
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


@pytest.fixture
def make_mqtt_broker(tmp_path):
    """``make_mqtt_broker(kind=None, **options)`` → a started ``MqttBroker``; all are closed at the end."""
    brokers: list[MqttBroker] = []

    def make(kind: str | None = None, **options) -> MqttBroker:
        broker = MqttBroker(tmp_path / f"broker-{len(brokers)}", kind, **options)
        brokers.append(broker)
        return broker.start()

    yield make
    for broker in brokers:
        broker.close()


@pytest.fixture
def mqtt_broker(make_mqtt_broker) -> MqttBroker:
    """A started broker of the preferred kind (Mosquitto when available, amqtt otherwise)."""
    return make_mqtt_broker()


# --- a subscriber -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    dup: bool
    user_properties: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


class Subscriber:
    """A paho client (QoS 1, persistent session) that keeps every message it gets, with its properties.

    ``connect()`` subscribes to ``topic`` (``#`` by default); ``disconnect()`` leaves the session on the broker,
    so messages published meanwhile arrive at the next ``connect()``; ``wait_for(n)`` waits for ``n`` messages.
    """

    def __init__(self, broker: MqttBroker, *, topic: str = "#", protocol: str | None = None,
                 client_id: str = "test-subscriber", username: str | None = None, password: str | None = None):
        self.broker = broker
        self.topic = topic
        self.protocol = protocol or broker.protocols[0]
        self.client_id = client_id
        self.messages: list[Received] = []
        self._lock = threading.Condition()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._connect_rc = None
        self.session_present = False  # what the last CONNACK said
        v5 = self.protocol == "5"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                                  clean_session=None if v5 else False)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._started = False

    def connect(self, timeout: float = 10.0) -> "Subscriber":
        self._connected.clear()
        self._subscribed.clear()
        kwargs = {}
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            kwargs = {"clean_start": False, "properties": props}
        self.client.connect(self.broker.host, self.broker.port, keepalive=30, **kwargs)
        if not self._started:
            self.client.loop_start()
            self._started = True
        if not self._connected.wait(timeout):
            raise AssertionError(f"the subscriber got no CONNACK within {timeout} s")
        if self._connect_rc is not None and self._connect_rc.is_failure:
            raise AssertionError(f"the subscriber was refused: {self._connect_rc}")
        self.client.subscribe(self.topic, qos=1)
        if not self._subscribed.wait(timeout):
            raise AssertionError(f"the subscriber got no SUBACK within {timeout} s")
        return self

    def disconnect(self) -> None:
        """Disconnect and keep the session on the broker."""
        self.client.disconnect()
        if self._started:
            self.client.loop_stop()
            self._started = False

    close = disconnect

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the subscriber has {len(self.messages)} messages, not {count}, "
                                         f"after {timeout} s")
                self._lock.wait(left)
            return list(self.messages)

    # --- paho callbacks (paho's thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.session_present = bool(getattr(flags, "session_present", False))
        self._connect_rc = reason_code
        self._connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self._subscribed.set()

    def _on_message(self, client, userdata, msg):
        props = getattr(msg, "properties", None)
        user = dict(getattr(props, "UserProperty", []) or []) if props is not None else {}
        ctype = getattr(props, "ContentType", None) if props is not None else None
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.dup), user, ctype))
            self._lock.notify_all()


# --- the sink under test ----------------------------------------------------------------------------------------

SITE, TILL = "store-1", "till-3"
SOURCE = f"pos://{SITE}/{TILL}/"


def outgoing(n: int, *, start: int = 1, src: str = SOURCE + "payment", type_: str = "payment.result",
             cls: str = "realtime") -> list:
    """``n`` events as the runner hands them to a sink: ``seq`` from ``start``, envelopes packed as stored."""
    from bridge.sinks.base import Outgoing
    from protocols.events import pack

    out = []
    for seq in range(start, start + n):
        ts = 1_795_000_000_000_000_000 + seq * 1_000_000
        env = {"src": src, "seq": seq, "ts": ts, "type": type_,
               "data": {"amount": seq, "currency": "EUR", "raw": bytes([seq % 256, 0xAB])}}
        out.append(Outgoing(rowid=seq, src=src, seq=seq, type=type_, ts=ts, envelope=pack(env), cls=cls))
    return out


def sink_settings(keys: dict, *, base: Path | None = None, env: dict | None = None, name: str = "bus"):
    """``SinkSettings`` parsed from a ``[[sinks]]`` table given as a dict (the config file's own parser)."""
    from bridge.config import _Table
    from bridge.sinks.settings import parse_sink

    base = base or Path.cwd()
    table = _Table(base / "bridge.toml", "sinks[0]", {"name": name, "kind": "mqtt", **keys})
    settings = parse_sink(table, base, env if env is not None else {})
    table.done()
    return settings


def mqtt_sink(broker: "MqttBroker | None" = None, *, url: str | None = None, base: Path | None = None,
              env: dict | None = None, name: str = "bus", **keys):
    """An ``MqttSink`` for ``broker`` (not connected), built from config keys as the bridge builds it."""
    from bridge.sinks.mqtt import MqttSink
    from bridge.sinks.settings import context_for

    keys.setdefault("protocol", broker.protocols[0] if broker is not None else "5")
    settings = sink_settings({"url": url or broker.url, **keys}, base=base, env=env, name=name)
    return MqttSink(name, settings.options, context_for(SITE, TILL, SOURCE, settings.options))


# --- a proxy that withholds PUBACKs -----------------------------------------------------------------------------

PUBACK = 4  # MQTT control packet type


class AckGate:
    """A loopback TCP proxy to a broker that lets the first ``allow`` PUBACKs reach the client, then either
    **swallows** the later PUBACKs (``mode="swallow"``: the broker has the messages, the client never hears; other
    packets pass) or **cuts** both connections at the next one (``mode="cut"``: the ack is lost with the
    connection). ``mode="silent"`` passes nothing from the broker, not even the CONNACK. ``mode="refuse"``
    rewrites the next PUBACK (only that one) into an MQTT 5 PUBACK with ``reason_code``, as a broker refusing that
    message would answer. Client → broker bytes always pass."""

    def __init__(self, broker: MqttBroker, allow: int, mode: str = "swallow", *, reason_code: int = 0x99):
        if mode not in ("swallow", "cut", "silent", "refuse"):
            raise ValueError(mode)
        self.broker, self.allow, self.mode, self.reason_code = broker, allow, mode, reason_code
        self.passed = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = [self._listener]
        t = threading.Thread(target=self._accept, name="ack-gate", daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        for s in list(self._sockets):
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def _accept(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection((self.broker.host, self.broker.port), timeout=5)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            t = threading.Thread(target=self._relay, args=(client, upstream), name="ack-gate-relay", daemon=True)
            t.start()
            self._threads.append(t)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        import select as _select

        pending = bytearray()  # broker → client bytes not yet cut into whole packets
        open_ = True
        try:
            while open_ and not self._stop.is_set():
                readable, _, _ = _select.select([client, upstream], [], [], 0.05)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        open_ = False
                        break
                    if s is client:
                        upstream.sendall(data)
                        continue
                    pending += data
                    out, cut = self._filter(pending)
                    if out:
                        client.sendall(out)
                    if cut:
                        self._cut(client, upstream)
                        open_ = False
                        break
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.close()
                except OSError:
                    pass

    def _cut(self, client: socket.socket, upstream: socket.socket) -> None:
        """End both connections so the client reads what was let through and then EOF: a plain close with unread
        bytes in our receive buffer would send an RST, which can discard the PUBACKs the client has not read."""
        upstream.close()
        client.shutdown(socket.SHUT_WR)
        client.settimeout(5)
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass

    def _filter(self, pending: bytearray) -> tuple[bytes, bool]:
        """Whole packets from ``pending`` that may pass, and whether to cut the connection now."""
        out = bytearray()
        while True:
            size = _packet_size(pending)
            if size is None:
                return bytes(out), False
            packet = bytes(pending[:size])
            del pending[:size]
            if self.mode == "silent":
                continue
            if packet[0] >> 4 == PUBACK:
                if self.mode == "refuse":
                    self.passed += 1
                    if self.passed == self.allow + 1:  # this one: same packet id, a refusing reason code
                        packet = bytes([PUBACK << 4, 3]) + packet[2:4] + bytes([self.reason_code])
                elif self.passed >= self.allow:
                    if self.mode == "cut":
                        return bytes(out), True
                    continue  # swallowed
                else:
                    self.passed += 1
            out += packet


def _packet_size(buf: bytearray) -> int | None:
    """The length of the first whole MQTT packet in ``buf``, or None while it is incomplete."""
    multiplier, length, i = 1, 0, 1
    while True:
        if i >= len(buf):
            return None
        byte = buf[i]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        i += 1
        if not byte & 0x80:
            break
    return i + length if len(buf) >= i + length else None

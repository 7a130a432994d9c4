"""The reliability harness: till → bridge → fault proxy → broker → consumer, with accounting at the end.

- **Till**: a ``Feeder`` thread connects to the bridge's ``tcp-listen://`` scanner device and writes one label per
  line (``TW00000001\\r``, ...) at a steady rate; each line is one ``scanner.data`` event. When the bridge is down
  it reconnects and goes on (a line the dead bridge never captured was never produced).
- **Bridge**: ``tillwire run`` as a child process (``tests/bridge_helpers.py``) with one sink pointed at the
  ``FaultProxy`` in front of the broker; killed with SIGKILL and started again as a scenario wants.
- **Consumer**: reads straight from the broker (not through the proxy): a durable JetStream pull consumer, a paho
  subscriber with a persistent session, or the webhook receiver's requests; every arrival goes through the
  transport's decoder (``bridge.consumer``) into ``Accounting`` with a ``Ledger``.
- **Produced**: the outbox's per-source ``last_seq`` (every seq ``1..last_seq`` was captured). In a run without
  bridge kills the outbox's scanner labels must also be exactly the labels the till sent (the bridge dropped
  nothing while its sink failed), and every arrival's envelope must be the outbox row's, byte for byte.

A scenario ends with ``Run.finish(name)``: it waits until every produced event arrived (or the deadline), stops
the bridge, accounts, and fails naming what went wrong (lost, out of order, processed twice after the ledger, not
the outbox's bytes, labels the bridge dropped); it returns the ``Report`` and records its line for the suite's
summary (``conftest.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgpack

from bridge.consumer import Accounting, Ledger, NotAnEvent, Report, from_mqtt, from_nats, from_webhook
from protocols.events import to_json_view
from bridge_helpers import free_port, high_water, start_bridge, write_config
from faultproxy import FaultProxy

LONG = os.environ.get("TILLWIRE_RELIABILITY", "") == "long"
RATE = 200.0                  # lines (events) per second from the till
DELIVERY_TIMEOUT_S = 60.0     # a run that has not delivered everything by then fails
REPORTS: list[tuple[str, Report]] = []   # every scenario's report, printed at the end of the session
REPORT_FILE = os.environ.get("TILLWIRE_RELIABILITY_REPORT")  # also appended here, one line per scenario

# Sink keys every scenario uses: short timeouts and backoff so that a fault heals in a second, not a minute.
FAST_SINK = {"batch_max_age_s": 0, "connect_timeout_s": 1, "backoff_base_s": 0.05, "backoff_cap_s": 0.5}
ACK_TIMEOUT_S = 1             # the NATS and MQTT sinks' ack_timeout_s here
SINK_DRAIN_S = 10             # at SIGTERM the bridge delivers what it captured while stopping (sink_drain_s)
PUBLISHING_BYTES = 4096       # a bridge life counts as publishing once it sent this much through the proxy


def toml_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def sink_toml(kind: str, url: str, **keys) -> str:
    lines = ["[[sinks]]", 'name = "bus"', f'kind = "{kind}"', f'url = "{url}"']
    lines += [f"{k} = {toml_value(v)}" for k, v in {**FAST_SINK, **keys}.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- the till

class Feeder:
    """Writes ``TW<n>\\r`` lines to the scanner port at ``rate`` per second (``burst`` lines per write) until
    stopped; reconnects when the bridge is gone."""

    def __init__(self, port: int, rate: float = RATE, burst: int = 1):
        self.port = port
        self.burst = burst
        self.interval = burst / rate
        self.sent = 0
        self.connects = 0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    def start(self) -> "Feeder":
        self._thread.start()
        return self

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        sock = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(0.02)
                next_at = time.monotonic()
                continue
            if sock is None:
                sock = connect_to_till(self.port)
                if sock is None:
                    self._stop.wait(0.05)
                    continue
                self.connects += 1
                # a new bridge: sell at the steady rate from now on, never the backlog of the outage in one burst
                next_at = time.monotonic()
            try:
                sock.sendall(b"".join(b"TW%08d\r" % (self.sent + i) for i in range(1, self.burst + 1)))
                self.sent += self.burst
            except OSError:
                sock.close()
                sock = None
                continue
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if sock is not None:
            sock.close()


def label(n: int) -> str:
    """The till's n-th scanner label (n from 1), as the bridge decodes it."""
    return "TW%08d" % n


def connect_to_till(port: int, source_address: tuple[str, int] | None = None) -> socket.socket | None:
    """A connection to the bridge's scanner port, or None while nothing listens there.

    The port is in the ephemeral range: while the bridge is down, a connect to it can pick that very port as its
    own source port and connect to itself (TCP simultaneous open); such a socket talks to nobody and keeps the
    bridge from binding its port. It is closed and counts as no connection."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=1, source_address=source_address)
    except OSError:
        return None
    try:
        if sock.getsockname() == sock.getpeername():
            sock.close()
            return None
    except OSError:
        sock.close()
        return None
    return sock


# ---------------------------------------------------------------------------------------------------- consumers

@dataclass(frozen=True)
class Arrival:
    """One message as the consumer got it: its key, when, its envelope in comparable form (``Consumer.form``), and
    how to acknowledge it to the broker once the ledger committed it (None: nothing to acknowledge per message)."""
    src: str
    seq: int
    at: float
    body: bytes
    ack: Callable[[], None] | None = None

class Consumer:
    """Base: arrivals go through the ledger into ``self.accounting``, a batch per ledger transaction (one fsync per
    batch, as an integrator would commit), and are acknowledged to the broker only after that commit.
    ``arrived`` queues one arrival (any thread) for the worker thread; ``arrived_batch`` processes a batch at once
    (the caller's thread).

    Besides ``Accounting``'s counts the consumer keeps examples to name in a failing run: out-of-order first
    arrivals, events the ledger let through twice, and each event's first body (every later copy must equal it;
    ``Run.finish`` compares the first with the outbox row). ``tamper`` (for the harness's negative controls only)
    may rewrite each batch before the ledger sees it."""

    form = "msgpack"   # how ``Arrival.body`` holds the envelope: "msgpack" (the packed bytes) or "json" (canonical)

    def __init__(self, ledger: Ledger):
        self.accounting = Accounting(ledger)
        self.lock = threading.Lock()
        self.errors: list[str] = []          # transport trouble, for the message of a run that times out
        self.undecodable: list[str] = []     # messages that were not tillwire events: a run with any fails
        self.bodies: dict[tuple[str, int], bytes] = {}    # first body per event
        self.changed: list[tuple[str, int]] = []          # events whose later copy differed from the first
        self.out_of_order: list[tuple[str, int]] = []     # first arrivals below the source's highest seq
        self.twice: list[tuple[str, int]] = []            # events the ledger said "new" for more than once
        self.tamper: Callable[[list[Arrival]], list[Arrival]] | None = None
        self._highest: dict[str, int] = {}
        self._passed: set[tuple[str, int]] = set()
        self._queue: list[Arrival] = []
        self._queued = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closing = False

    def arrived_batch(self, arrivals: list[Arrival]) -> None:
        if self.tamper is not None:
            arrivals = self.tamper(arrivals)
        with self.lock:
            with self.accounting.ledger.transaction():
                for a in arrivals:
                    self._observe(a)
            for a in arrivals:   # acknowledged to the broker only once the ledger committed
                if a.ack is not None:
                    a.ack()

    def _observe(self, a: Arrival) -> None:
        key = (a.src, a.seq)
        first = self.bodies.get(key)
        if first is None:
            self.bodies[key] = a.body
            if a.seq < self._highest.get(a.src, 0):
                self.out_of_order.append(key)
            self._highest[a.src] = max(a.seq, self._highest.get(a.src, 0))
        elif first != a.body:
            self.changed.append(key)
        if self.accounting.observe(a.src, a.seq, a.at).new:
            if key in self._passed:
                self.twice.append(key)
            self._passed.add(key)

    def arrived(self, arrival: Arrival) -> None:
        with self._queued:
            self._queue.append(arrival)
            self._queued.notify()
        if self._worker is None:
            with self.lock:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="consumer-ledger", daemon=True)
                    self._worker.start()

    def _work(self) -> None:
        while True:
            with self._queued:
                while not self._queue and not self._closing:
                    self._queued.wait(0.5)
                batch, self._queue = self._queue, []
                if not batch and self._closing:
                    return
            self.arrived_batch(batch)

    def pending(self) -> int:
        with self._queued:
            return len(self._queue)

    def start(self) -> "Consumer":
        return self

    def stop(self) -> None:
        self._stop_worker()

    def _stop_worker(self) -> None:
        with self._queued:
            self._closing = True
            self._queued.notify()
        if self._worker is not None:
            self._worker.join(10)


def json_form(envelope: dict) -> bytes:
    """An envelope's JSON view, canonical (sorted keys): what a structured JSON message must decode to."""
    return json.dumps(to_json_view(envelope), sort_keys=True, separators=(",", ":")).encode()


class NatsConsumer(Consumer):
    """A durable JetStream pull consumer on the stream (ack policy all: one ack per fetched batch, after the
    ledger committed it); reconnects forever."""

    def __init__(self, url: str, ledger: Ledger, stream: str = "TILLWIRE"):
        super().__init__(ledger)
        self.url, self.stream = url, stream
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),),
                                        name="nats-consumer", daemon=True)
        self._ready = threading.Event()

    def start(self) -> "NatsConsumer":
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError(f"the NATS consumer could not connect to {self.url}")
        return self

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(15)
        self._loop.close()
        self._stop_worker()

    async def _main(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig

        self._stopping = asyncio.Event()
        nc = await nats.connect(self.url, connect_timeout=2, allow_reconnect=True, max_reconnect_attempts=-1,
                                reconnect_time_wait=0.1)
        self._ready.set()
        js = nc.jetstream(timeout=2)
        sub = None
        try:
            while not self._stopping.is_set():
                try:
                    if sub is None:
                        sub = await js.pull_subscribe(">", durable="reliability", stream=self.stream,
                                                      config=ConsumerConfig(ack_policy=AckPolicy.ALL,
                                                                            ack_wait=30, max_ack_pending=-1))
                    msgs = await sub.fetch(500, timeout=0.3)
                except Exception as exc:  # noqa: BLE001 - the stream is not there yet, the broker is down, ...
                    if type(exc).__name__ not in ("TimeoutError", "NotFoundError", "ServiceUnavailableError"):
                        self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    if sub is None or type(exc).__name__ != "TimeoutError":
                        await asyncio.sleep(0.1)
                    continue
                now = time.monotonic()
                arrivals = []
                for m in msgs:
                    try:
                        env = from_nats(m.headers, m.data)
                    except NotAnEvent as exc:
                        self.undecodable.append(str(exc))
                        continue
                    arrivals.append(Arrival(env["src"], env["seq"], now, bytes(m.data)))
                self.arrived_batch(arrivals)
                if msgs:   # acknowledged to the stream (up to the last) only once the ledger committed
                    await msgs[-1].ack()
        finally:
            await nc.close()


class MqttConsumer(Consumer):
    """A paho client (QoS 1, persistent session: MQTT 5 session expiry or 3.1.1 clean_session false) on ``#``.

    It acknowledges by hand (paho 2.x ``manual_ack=True``): ``on_message`` only queues the message; the worker
    commits a batch to the ledger and then sends each PUBACK (``client.ack(mid, qos)``), in arrival order. paho's
    default would PUBACK as soon as ``on_message`` returns, before the ledger committed: a consumer crash there
    loses the event (docs/bridge/consumers.md). A PUBACK for a message of an earlier connection is not sent: the
    broker delivers it again on the new one, and the ledger drops the copy.

    paho reconnects by itself after a broker restart; on every CONNACK the consumer subscribes again when the
    broker says it has no session for it (``session_present`` false), and counts such lost sessions."""

    def __init__(self, broker, ledger: Ledger, protocol: str | None = None):
        super().__init__(ledger)
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.broker = broker
        self.v5 = (protocol or broker.protocols[0]) == "5"
        self.subscribed = threading.Event()
        self.form = "msgpack" if self.v5 else "json"   # MQTT 3.1.1 carries structured JSON CloudEvents
        self.sessions_lost = 0
        self.acks_sent = 0
        self._connects = 0
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="reliability-consumer",
                                  protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
                                  clean_session=None if self.v5 else False, manual_ack=True)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.subscribed.clear()

    def wait_subscribed(self, timeout: float = 15.0) -> None:
        if not self.subscribed.wait(timeout):
            raise AssertionError(f"the MQTT consumer was not subscribed again within {timeout} s")

    def start(self) -> "MqttConsumer":
        kwargs = {}
        if self.v5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            kwargs = {"clean_start": False, "properties": props}
        self.client.connect(self.broker.host, self.broker.port, keepalive=5, **kwargs)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("the MQTT consumer could not connect and subscribe within 10 s")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._stop_worker()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.errors.append(f"CONNACK {reason_code}")
            return
        self._connects += 1
        if not flags.session_present:
            if self._connects > 1:
                self.sessions_lost += 1
            client.subscribe("#", qos=1)
        else:
            self.subscribed.set()

    def _on_message(self, client, userdata, msg):
        props = getattr(msg, "properties", None)
        user = list(getattr(props, "UserProperty", []) or []) if props is not None else []
        connection = self._connects
        mid, qos = msg.mid, msg.qos

        def ack() -> None:
            if connection == self._connects:
                self.client.ack(mid, qos)
                self.acks_sent += 1

        try:
            env = from_mqtt(bytes(msg.payload), user)
        except NotAnEvent as exc:
            self.undecodable.append(str(exc))
            ack()
            return
        body = bytes(msg.payload) if self.v5 else json_form(env)
        self.arrived(Arrival(env["src"], env["seq"], time.monotonic(), body, ack))


class WebhookConsumer(Consumer):
    """Reads the receiver's answered-2xx requests in arrival order (what the integrator's endpoint took)."""

    def __init__(self, receiver, ledger: Ledger, form: str = "json"):
        super().__init__(ledger)
        self.form = form   # "json" for JSON bodies, "map" for msgpack ones (the envelope map itself, repacked)
        self.receiver = receiver
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-consumer", daemon=True)

    def start(self) -> "WebhookConsumer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._stop_worker()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            requests = self.receiver.requests
            while self._seen < len(requests):
                req = requests[self._seen]
                if req.answered_t is None and req.reply is None:
                    break  # not answered yet: look again
                self._seen += 1
                if req.reply is not None and 200 <= req.reply.status < 300 and not req.reply.drop:
                    try:
                        envs = from_webhook(req.body, req.content_type, req.headers)
                    except NotAnEvent as exc:
                        self.undecodable.append(str(exc))
                        continue
                    for env in envs:
                        self.arrived(Arrival(env["src"], env["seq"], time.monotonic(), self._body(env)))

    def _body(self, env: dict) -> bytes:
        return json_form(env) if self.form == "json" else msgpack.packb(env)


# ---------------------------------------------------------------------------------------------------- buses

class Bus(ABC):
    """A broker of one kind: where it listens, the sink's TOML for it, a consumer, stop and start."""

    kind = ""
    keeps_sessions = True   # a restarted broker still knows the consumer's subscription and queue
    ack_bytes = 0           # about the size of one publish acknowledgement on the wire (to tell "a few acks")

    def __init__(self, broker):
        self.broker = broker

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.broker.port)

    @abstractmethod
    def sink(self, **keys) -> str:
        """The ``[[sinks]]`` TOML for this bus, through the proxy."""

    @abstractmethod
    def consumer(self, ledger: Ledger) -> Consumer:
        """A consumer reading straight from the broker into ``ledger``."""

    def stop(self) -> None:
        self.broker.stop()

    def start(self) -> None:
        self.broker.start()


class NatsBus(Bus):
    kind = "nats"
    ack_bytes = 60          # MSG _INBOX... + {"stream":"TILLWIRE","seq":N}

    def sink(self, **keys) -> str:
        return sink_toml("nats", "nats://{proxy}", **{"ack_timeout_s": 1, **keys})

    def consumer(self, ledger: Ledger) -> Consumer:
        return NatsConsumer(self.broker.url, ledger)

    def stored(self, stream: str = "TILLWIRE") -> int:
        """How many messages the stream holds."""
        from nats_fixture import stream_config
        return stream_config(self.broker.url, stream).state.messages


class MqttBus(Bus):
    kind = "mqtt"
    ack_bytes = 4           # PUBACK: fixed header, packet id

    def __init__(self, broker, protocol: str | None = None):
        super().__init__(broker)
        self.protocol = protocol or broker.protocols[0]
        if self.protocol != "5":
            self.kind = "mqtt311"

    @property
    def keeps_sessions(self) -> bool:
        return self.broker.kind == "mosquitto"   # amqtt (the fallback) keeps nothing across a restart

    def sink(self, **keys) -> str:
        keys.pop("duplicate_window_s", None)   # a NATS notion; MQTT brokers do not de-duplicate at all
        return sink_toml("mqtt", "mqtt://{proxy}", **{"protocol": self.protocol, "ack_timeout_s": 1, **keys})

    def consumer(self, ledger: Ledger) -> Consumer:
        return MqttConsumer(self.broker, ledger, self.protocol)


class WebhookBus(Bus):
    kind = "webhook"

    @property
    def address(self) -> tuple[str, int]:
        return (self.broker.host, self.broker.port)

    def sink(self, **keys) -> str:
        return sink_toml("webhook", "http://{proxy}/hook", **keys)

    def consumer(self, ledger: Ledger) -> Consumer:
        return WebhookConsumer(self.broker, ledger)


# ---------------------------------------------------------------------------------------------------- a run

class OutboxReader:
    """Reads the outbox's rows as they are committed (each ``refresh`` only the new ones, through a read-only
    connection): every event's packed envelope by key, and the scanner labels in capture order."""

    def __init__(self, path: Path):
        self.path = path
        self.envelopes: dict[tuple[str, int], bytes] = {}
        self.labels: list[str] = []
        self._rowid = 0

    def refresh(self) -> "OutboxReader":
        if not self.path.exists():
            return self
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT rowid, src, seq, envelope FROM events WHERE rowid > ? ORDER BY rowid",
                              (self._rowid,)).fetchall()
        except sqlite3.OperationalError:  # not created yet
            return self
        finally:
            db.close()
        for rowid, src, seq, envelope in rows:
            self._rowid = rowid
            self.envelopes[(src, seq)] = bytes(envelope)
            env = msgpack.unpackb(envelope, raw=False)
            if env["type"] == "scanner.data":
                self.labels.append(env["data"]["label"])
        return self

    def expected_body(self, key: tuple[str, int], form: str) -> bytes | None:
        packed = self.envelopes.get(key)
        if packed is None or form == "msgpack":
            return packed
        env = msgpack.unpackb(packed, raw=False)
        return json_form(env) if form == "json" else msgpack.packb(env)


class Run:
    """One scenario's world: a temp dir, a scanner port, a bridge child, a proxy in front of the bus, a consumer.

    ``start()`` starts the consumer, the bridge and the till, in that order. The bridge's feed is on (loopback, a
    free port) for its ``GET /sinks``: ``sink_stats()`` tells whether the sink noticed a fault."""

    def __init__(self, bus: Bus, *, rate: float = RATE, burst: int = 1, ledger: Ledger | None = None, **sink_keys):
        self.bus = bus
        self.dir = Path(tempfile.mkdtemp(prefix="tw-rel-"))
        self.proxy = FaultProxy(bus.address).start()
        self.scanner_port = free_port()
        self.feed_port = free_port()
        self.config = write_config(self.dir, [{"name": "scanner", "protocol": "scanner",
                                               "transport": f"tcp-listen://127.0.0.1:{self.scanner_port}"}],
                                   feed=self.feed_port, sink_drain_s=SINK_DRAIN_S,
                                   extra_toml=bus.sink(**sink_keys).replace("{proxy}",
                                                                            f"127.0.0.1:{self.proxy.port}"))
        self.outbox = self.dir / "outbox.sqlite"
        self.rows = OutboxReader(self.outbox)
        self.ledger = ledger if ledger is not None else Ledger.open(str(self.dir / "consumer-ledger.sqlite"))
        self.proc: subprocess.Popen | None = None
        self.feeder = Feeder(self.scanner_port, rate, burst)
        self.consumer: Consumer = bus.consumer(self.ledger)
        if sink_keys.get("format") == "msgpack":
            self.consumer.form = "map"
        self._consuming = False
        self.kills = 0
        self.lives: list[int] = []          # per SIGKILLed bridge: bytes it published through the proxy
        self._life_from = 0                 # proxy connections before the current bridge started
        self.bridge_errors: list[str] = []

    def start(self) -> "Run":
        self.consumer.start()
        self._consuming = True
        self.start_bridge()
        self.feeder.start()
        self.wait_capturing()
        return self

    # --- the bridge
    def start_bridge(self) -> None:
        self._life_from = self.proxy.stats().connections
        self.proc = start_bridge(self.config, "--quiet")

    def published(self) -> int:
        """Bytes the current bridge (this life) has sent through the proxy."""
        return self.proxy.bytes_up_since(self._life_from)

    def wait_publishing(self, nbytes: int = PUBLISHING_BYTES, timeout: float = 20.0) -> None:
        """Wait until the current bridge connected through the proxy and sent ``nbytes`` (its sink publishes: a
        connect and a handshake are a few hundred bytes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self.published() >= nbytes:
                return
            time.sleep(0.02)
        raise AssertionError(f"the bridge sent {self.published()} bytes through the proxy within {timeout} s of "
                             f"its start, fewer than {nbytes}: its sink is not publishing")

    def sink_stats(self) -> dict:
        """The sink's counters from the running bridge (``GET /sinks`` on its feed): retries, reconnects, ..."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.feed_port}/sinks", timeout=5) as r:
            return json.loads(r.read())["sinks"][0]

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            _, err = self.proc.communicate()
            raise AssertionError(f"the bridge exited with {self.proc.returncode}: {err.decode()[-2000:]}")

    def wait_capturing(self, more_than: int = 0, timeout: float = 15.0) -> int:
        """Wait until the outbox holds more than ``more_than`` events; returns the count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            n = self.produced_count()
            if n > more_than:
                return n
            time.sleep(0.02)
        raise AssertionError(f"the outbox did not grow past {more_than} events within {timeout} s")

    def kill_bridge(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        _, err = self.proc.communicate(timeout=15)
        self.bridge_errors.append(err.decode(errors="replace"))
        self.proc = None
        self.kills += 1
        self.lives.append(self.published())

    def stop_bridge(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=SINK_DRAIN_S + 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"the bridge did not stop within {SINK_DRAIN_S + 20} s of SIGTERM")
        self.bridge_errors.append(err.decode(errors="replace"))
        self.proc = None

    # --- accounting
    def produced(self) -> dict[str, int]:
        try:
            return high_water(self.outbox)
        except Exception:  # noqa: BLE001 - not created yet
            return {}

    def produced_count(self) -> int:
        return sum(self.produced().values())

    def delivered_all(self) -> bool:
        if self.consumer.pending():
            return False
        with self.consumer.lock:
            self.consumer.accounting.produced(self.produced())
            return self.consumer.accounting.complete()

    def delivered(self) -> int:
        with self.consumer.lock:
            return self.consumer.accounting.report().delivered

    def wait_flowing(self, events: int = 100, timeout: float = 20.0) -> None:
        """Wait until the consumer has received ``events`` events: the sink is connected and delivering (a fault
        injected before that would only hit the sink's first connect)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.delivered() >= events:
                return
            time.sleep(0.02)
        raise AssertionError(f"fewer than {events} events reached the consumer within {timeout} s")

    def wait_delivered(self, timeout: float = DELIVERY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.delivered_all():
                return
            self._check_alive()
            time.sleep(0.05)
        with self.consumer.lock:
            missing = self.consumer.accounting.missing()
        raise AssertionError(f"{len(missing)} events not delivered after {timeout} s, e.g. {missing[:5]}; "
                             f"consumer errors {self.consumer.errors[-3:]}")

    def wait_till_captured(self, timeout: float) -> None:
        """Without bridge kills every label the till sent must reach the outbox: wait for the last one."""
        deadline = time.monotonic() + timeout
        while len(self.rows.refresh().labels) < self.feeder.sent and time.monotonic() < deadline:
            self._check_alive()
            time.sleep(0.05)

    def finish(self, name: str, *, recovered_from: float | None = None,
               backlog: dict[str, int] | None = None, timeout: float = DELIVERY_TIMEOUT_S) -> Report:
        """Stop the till, let the bridge deliver the rest, stop it (SIGTERM), account, and fail naming what is
        wrong. Events the bridge captures while it stops (a device's ``closed`` status) are delivered by its sink
        during ``sink_drain_s``: produced is read again after the stop and those must arrive too."""
        self.feeder.stop()
        if self.proc is None:
            self.start_bridge()
        if not self.kills:
            self.wait_till_captured(timeout)
        self.wait_delivered(timeout)
        self.stop_bridge()
        self.wait_delivered(timeout)   # what was captured during the stop, delivered in the drain
        self.rows.refresh()
        with self.consumer.lock:
            self.consumer.accounting.produced(self.produced())
            report = self.consumer.accounting.report(recovered_from=recovered_from, backlog=backlog)
        for err in self.bridge_errors:
            assert "Traceback" not in err, err[-3000:]
        problems = self.problems(report)
        if problems:
            raise AssertionError(f"{name}: {report.line()}; " + "; ".join(problems))
        REPORTS.append((name, report))
        line = report.line(name)
        print(line)
        if REPORT_FILE:
            with open(REPORT_FILE, "a") as f:
                f.write(line + "\n")
        return report

    def problems(self, report: Report) -> list[str]:
        """What is wrong with a run, each with examples: the harness's own checks beside ``report.ok``."""
        c = self.consumer
        out = []
        if report.lost:
            out.append(f"{report.lost} lost, e.g. {list(report.lost_examples)}")
        if report.out_of_order or c.out_of_order:
            out.append(f"{report.out_of_order} out of order, e.g. {c.out_of_order[:5]}")
        if report.duplicates or c.twice:
            out.append(f"{report.duplicates} processed twice after the ledger, e.g. {c.twice[:5]}")
        if report.unknown:
            out.append(f"{report.unknown} arrived that were never produced")
        if c.undecodable:
            out.append(f"{len(c.undecodable)} messages were not tillwire events: {c.undecodable[:3]}")
        wrong = [k for k, body in c.bodies.items() if body != self.rows.expected_body(k, c.form)]
        if wrong or c.changed:
            out.append(f"{len(wrong)} events arrived with bytes that differ from their outbox row, e.g. {wrong[:5]}"
                       f"; {len(c.changed)} copies differed from the first, e.g. {c.changed[:5]}")
        labels = self.rows.labels
        if not self.kills:
            sent = [label(n) for n in range(1, self.feeder.sent + 1)]
            if labels != sent:
                missing = sorted(set(sent) - set(labels))
                out.append(f"the till sent {len(sent)} labels, the outbox holds {len(labels)}: missing "
                           f"{missing[:5]}, first difference at #{next_difference(sent, labels)}")
        elif any(a >= b for a, b in zip(labels, labels[1:])):
            out.append("the outbox's labels are not strictly increasing (one captured twice or out of order)")
        return out

    def close(self) -> None:
        self.feeder.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=15)
        if self._consuming:
            self.consumer.stop()
        self.proxy.stop()
        self.ledger.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def next_difference(a: list, b: list) -> int:
    """The index of the first element where two lists differ (the shorter one's length when one is a prefix)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))

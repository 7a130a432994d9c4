"""The reliability harness: till → bridge → fault proxy → broker → consumer, with accounting at the end.

- **Till**: a ``Feeder`` thread connects to the bridge's ``tcp-listen://`` scanner device and writes one label per
  line (``TW00000001\\r``, ...) at a steady rate; each line is one ``scanner.data`` event. When the bridge is down
  it reconnects and goes on (a line the dead bridge never captured was never produced).
- **Bridge**: ``tillwire run`` as a child process (``tests/bridge_helpers.py``) with one sink pointed at the
  ``FaultProxy`` in front of the broker; killed with SIGKILL and started again as a scenario wants.
- **Consumer**: reads straight from the broker (not through the proxy): a durable JetStream pull consumer, a paho
  subscriber with a persistent session, or the webhook receiver's requests; every arrival goes through the
  transport's decoder (``bridge.consumer``) into ``Accounting`` with a ``Ledger``.
- **Produced**: the outbox's per-source ``last_seq`` (every seq ``1..last_seq`` was captured).

A scenario ends with ``Run.finish(name)``: it waits until every produced event arrived (or the deadline), then
returns the ``Report`` and records its line for the suite's summary (``conftest.py``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bridge.consumer import Accounting, Ledger, Report, from_mqtt, from_nats, from_webhook
from bridge_helpers import free_port, high_water, start_bridge, write_config
from faultproxy import FaultProxy

LONG = os.environ.get("TILLWIRE_RELIABILITY", "") == "long"
RATE = 200.0                  # lines (events) per second from the till
DELIVERY_TIMEOUT_S = 60.0     # a run that has not delivered everything by then fails
REPORTS: list[tuple[str, Report]] = []   # every scenario's report, printed at the end of the session
REPORT_FILE = os.environ.get("TILLWIRE_RELIABILITY_REPORT")  # also appended here, one line per scenario

# Sink keys every scenario uses: short timeouts and backoff so that a fault heals in a second, not a minute.
FAST_SINK = {"batch_max_age_s": 0, "connect_timeout_s": 1, "backoff_base_s": 0.05, "backoff_cap_s": 0.5}


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
    """Writes ``TW<n>\\r`` lines to the scanner port at ``rate`` per second until stopped; reconnects."""

    def __init__(self, port: int, rate: float = RATE):
        self.port = port
        self.interval = 1.0 / rate
        self.sent = 0
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
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                except OSError:
                    self._stop.wait(0.05)
                    continue
            try:
                sock.sendall(b"TW%08d\r" % (self.sent + 1))
                self.sent += 1
            except OSError:
                sock.close()
                sock = None
                continue
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if sock is not None:
            sock.close()


# ---------------------------------------------------------------------------------------------------- consumers

class Consumer:
    """Base: arrivals go to ``self.accounting`` (thread-safe); ``start``/``stop``."""

    def __init__(self, ledger: Ledger):
        self.accounting = Accounting(ledger)
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def arrived(self, src: str, seq: int) -> None:
        with self.lock:
            self.accounting.observe(src, seq)

    def start(self) -> "Consumer":
        return self

    def stop(self) -> None:
        pass


class NatsConsumer(Consumer):
    """A durable JetStream pull consumer on the stream, acking each message; reconnects forever."""

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
                                                      config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                                            ack_wait=30, max_ack_pending=-1))
                    msgs = await sub.fetch(500, timeout=0.3)
                except Exception as exc:  # noqa: BLE001 - the stream is not there yet, the broker is down, ...
                    if type(exc).__name__ not in ("TimeoutError", "NotFoundError", "ServiceUnavailableError"):
                        self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    if sub is None or type(exc).__name__ != "TimeoutError":
                        await asyncio.sleep(0.1)
                    continue
                for m in msgs:
                    env = from_nats(m.headers, m.data)
                    self.arrived(env["src"], env["seq"])
                    await m.ack()
        finally:
            await nc.close()


class MqttConsumer(Consumer):
    """A paho subscriber (QoS 1, persistent session, MQTT 5 or 3.1.1) on ``<prefix>/#``."""

    def __init__(self, broker, ledger: Ledger, protocol: str | None = None):
        super().__init__(ledger)
        from mqtt_fixture import Subscriber

        consumer = self

        class _Subscriber(Subscriber):
            def _on_message(self, client, userdata, msg):
                props = getattr(msg, "properties", None)
                user = list(getattr(props, "UserProperty", []) or []) if props is not None else []
                env = from_mqtt(bytes(msg.payload), user)
                consumer.arrived(env["src"], env["seq"])

        self.subscriber = _Subscriber(broker, protocol=protocol, client_id="reliability-consumer")

    def start(self) -> "MqttConsumer":
        self.subscriber.connect()
        return self

    def stop(self) -> None:
        self.subscriber.disconnect()


class WebhookConsumer(Consumer):
    """Reads the receiver's answered-2xx requests in arrival order (what the integrator's endpoint took)."""

    def __init__(self, receiver, ledger: Ledger):
        super().__init__(ledger)
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

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            requests = self.receiver.requests
            while self._seen < len(requests):
                req = requests[self._seen]
                if req.answered_t is None and req.reply is None:
                    break  # not answered yet: look again
                self._seen += 1
                if req.reply is not None and 200 <= req.reply.status < 300 and not req.reply.drop:
                    for env in from_webhook(req.body, req.content_type, req.headers):
                        self.arrived(env["src"], env["seq"])


# ---------------------------------------------------------------------------------------------------- a run

class Run:
    """One scenario's world: a temp dir, a scanner port, a bridge child, a proxy to ``upstream``, a consumer."""

    def __init__(self, upstream: tuple[str, int], sink: str):
        self.dir = Path(tempfile.mkdtemp(prefix="tw-rel-"))
        self.proxy = FaultProxy(upstream).start()
        self.scanner_port = free_port()
        self.config = write_config(self.dir, [{"name": "scanner", "protocol": "scanner",
                                               "transport": f"tcp-listen://127.0.0.1:{self.scanner_port}"}],
                                   extra_toml=sink.replace("{proxy}", f"127.0.0.1:{self.proxy.port}"))
        self.outbox = self.dir / "outbox.sqlite"
        self.ledger = Ledger.open(str(self.dir / "consumer-ledger.sqlite"))
        self.proc: subprocess.Popen | None = None
        self.feeder = Feeder(self.scanner_port)
        self.consumer: Consumer | None = None
        self.kills = 0
        self.bridge_errors: list[str] = []

    # --- the bridge
    def start_bridge(self) -> None:
        self.proc = start_bridge(self.config, "--quiet")

    def wait_capturing(self, more_than: int = 0, timeout: float = 15.0) -> int:
        """Wait until the outbox holds more than ``more_than`` events; returns the count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise AssertionError(f"the bridge exited with {self.proc.returncode}: {err.decode()[-2000:]}")
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

    def stop_bridge(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError("the bridge did not stop within 20 s of SIGTERM")
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
        assert self.consumer is not None
        with self.consumer.lock:
            self.consumer.accounting.produced(self.produced())
            return self.consumer.accounting.complete()

    def wait_delivered(self, timeout: float = DELIVERY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.delivered_all():
                return
            if self.proc is not None and self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise AssertionError(f"the bridge exited with {self.proc.returncode}: {err.decode()[-2000:]}")
            time.sleep(0.05)
        with self.consumer.lock:
            missing = self.consumer.accounting.missing()
        raise AssertionError(f"{len(missing)} events not delivered after {timeout} s, e.g. {missing[:5]}; "
                             f"consumer errors {self.consumer.errors[-3:]}")

    def finish(self, name: str, *, recovered_from: float | None = None,
               backlog: dict[str, int] | None = None) -> Report:
        """Stop the till, let the bridge deliver the rest, and account."""
        self.feeder.stop()
        if self.proc is None:
            self.start_bridge()
        self.wait_delivered()
        self.stop_bridge()
        with self.consumer.lock:
            self.consumer.accounting.produced(self.produced())
            report = self.consumer.accounting.report(recovered_from=recovered_from, backlog=backlog)
        REPORTS.append((name, report))
        line = report.line(name)
        print(line)
        if REPORT_FILE:
            with open(REPORT_FILE, "a") as f:
                f.write(line + "\n")
        for err in self.bridge_errors:
            assert "Traceback" not in err, err[-3000:]
        return report

    def close(self) -> None:
        self.feeder.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=15)
        if self.consumer is not None:
            self.consumer.stop()
        self.proxy.stop()
        self.ledger.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

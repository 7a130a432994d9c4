"""Transparent taps: till ⇄ bridge ⇄ device, bytes forwarded unchanged both ways, both directions captured.

``tap+tcp://LISTEN_HOST:PORT?upstream=HOST:PORT`` and ``tap+serial://TILL_SIDE?device=DEVICE_SIDE&<settings>``.

The guarantee: the capture never delays, alters or stops the till's traffic. Each direction has its own thread
that reads, **forwards first**, then hands the same bytes object to ``sink.chunk`` (which never blocks: a full
queue drops the copy, not the traffic) inside a guard, so even a sink that raises cannot stop forwarding.
Till → device is ``to_device``; device → till is ``from_device``. After one side of a ``tap+tcp`` session sends
FIN the other direction is kept while bytes flow, and the session is closed once it has passed none for
``half_close`` s (``_listener.HALF_CLOSE_S``, minutes: a till may wait that long for a slow answer), so a device
that never closes its side cannot pile up sessions.
"""

from __future__ import annotations

import socket
import threading
import time

from bridge.capture import CLOSED, FROM_DEVICE, OPEN, TO_DEVICE, CaptureSink
from bridge.transports._common import UrlCheck, connect, safe_chunk
from bridge.transports._listener import RECV_BYTES, ListeningTransport, Session
from bridge.transports.base import Transport
from bridge.transports.serial_port import HANDLER_KEYS, SerialEndpoint, handler_url, serial_target
from bridge.transports.serial_settings import SETTINGS_KEYS, parse_settings
from bridge.transports.tcp import listen_address

#: How long the tap waits for the device when a till connects before it gives up and closes the till's
#: connection (the till then sees what it sees when the device is off). Query key ``connect_timeout``.
CONNECT_TIMEOUT_S = 3.0


class TcpTapTransport(ListeningTransport):
    """Listens for the till; for each till connection opens one to ``upstream`` and forwards both ways.

    When the device cannot be reached, the till's connection is closed at once and a ``closed`` status with the
    till's ``peer`` says why. If no other till connection is live, the transport itself then reports ``closed``
    with ``retry_s``, stops listening for that (short) backoff and listens again; a live connection to the
    device (a ZVT terminal takes one at a time) is never torn down because a second one failed.
    """

    scheme = "tap+tcp"

    def __init__(self, device: str, url: str, **options):
        super().__init__(device, url)
        check = UrlCheck(device, url)
        if options:
            raise check.error(f"unknown transport option {sorted(options)[0]!r}; tap+tcp takes none")
        parts, query = check.split()
        check.only_keys(query, ("upstream", "connect_timeout", "half_close"))
        self.listen_host, self.listen_port = listen_address(check, parts)
        if "upstream" not in query:
            raise check.error("the device's address is missing; add ?upstream=HOST:PORT (e.g. 192.168.1.50:9100)")
        self.upstream = check.host_port("upstream", query["upstream"])
        self.connect_timeout = CONNECT_TIMEOUT_S
        if "connect_timeout" in query:
            self.connect_timeout = check.number("connect_timeout", query["connect_timeout"], 0.1, 60.0)
        if "half_close" in query:
            self.half_close_s = check.number("half_close", query["half_close"], 0.1, 86400.0)

    def accepted(self, conn: socket.socket, peer: str, sink: CaptureSink, stop: threading.Event) -> str | None:
        host, port = self.upstream
        upstream_name = f"{host}:{port}"
        try:
            up = connect(host, port, self.connect_timeout, self._waker)
        except OSError as exc:
            conn.close()
            reason = f"upstream {upstream_name}: {exc.strerror or exc}"
            if stop.is_set():
                return "stopped"
            self.closed_at_once(peer, sink, reason=reason)
            return reason if self.live_sessions() == 0 else None
        session = Session(peer, [conn, up])
        self.add_session(session)
        self.session_status(session, sink, OPEN, transport=self.describe(), peer=peer, upstream=upstream_name)

        def finish() -> None:
            if session.thread_done():
                session.close()
                self.end_session(session, sink, CLOSED, transport=self.describe(), peer=peer,
                                 reason="stopped" if stop.is_set() else session.reason)

        def forward(src: socket.socket, dst: socket.socket, direction: str, side: str, other: str) -> None:
            capture = self.capture
            try:
                while True:
                    data = src.recv(RECV_BYTES)
                    if not data:  # half-close: pass the FIN on, keep the other direction running (for half_close_s
                        session.note(f"the {side} closed the connection")  # without bytes at most: tend)
                        session.half_closed()
                        try:
                            dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        break
                    t_ns = time.time_ns()
                    session.active()
                    try:
                        dst.sendall(data)  # forward first …
                    except OSError as exc:
                        session.note(f"{other}: {exc.strerror or exc}")
                        session.shutdown()
                        break
                    capture(session, sink, t_ns, direction, data)  # … then the copy, guarded, in order
            except OSError as exc:
                session.note(f"{side}: {exc.strerror or exc}")
                session.shutdown()
            finally:
                finish()

        session.start([
            lambda: forward(conn, up, TO_DEVICE, "till", "device"),
            lambda: forward(up, conn, FROM_DEVICE, "device", "till"),
        ])
        return None


class SerialTapTransport(Transport):
    """Two serial ports, the till's side (the URL's path) and the device's side (``device=``), forwarded both ways
    by one thread each. The settings keys apply to both ports. Either side may be a pyserial URL (``socket://``,
    ``rfc2217://``, ``loop://``) instead of a port path."""

    scheme = "tap+serial"

    def __init__(self, device: str, url: str, **options):
        super().__init__(device, url)
        check = UrlCheck(device, url)
        if options:
            raise check.error(f"unknown transport option {sorted(options)[0]!r}; tap+serial takes none")
        parts, query = check.split()
        handler_keys = {k for keys in HANDLER_KEYS.values() for k in keys}
        check.only_keys(query, ("device",) + tuple(SETTINGS_KEYS) + tuple(sorted(handler_keys)))
        till_side = serial_target(url, parts)
        if not till_side:
            raise check.error("the till's side is missing; use tap+serial:///dev/ttyS0?device=/dev/ttyUSB0")
        device_side = query.get("device", "")
        if not device_side:
            raise check.error("the device's side is missing; add ?device=PORT (e.g. device=/dev/ttyUSB0)")
        settings = parse_settings(check, query)
        rest = {k: v for k, v in query.items() if k != "device"}
        self.till = SerialEndpoint(check, handler_url(till_side, rest), settings, {})
        self.dev = SerialEndpoint(check, handler_url(device_side, rest), settings, {})
        self._ended = threading.Event()
        self._reason: str | None = None
        self._threads: list[threading.Thread] = []

    def open(self) -> None:
        self.till.open()
        self.dev.open()

    def pump(self, sink: CaptureSink, stop: threading.Event) -> str | None:
        self._ended.clear()
        self._reason = None
        self._threads = [
            threading.Thread(target=self._forward, args=(self.till, self.dev, TO_DEVICE, sink, stop),
                             name=f"tillwire-{self.device}-to", daemon=True),
            threading.Thread(target=self._forward, args=(self.dev, self.till, FROM_DEVICE, sink, stop),
                             name=f"tillwire-{self.device}-from", daemon=True),
        ]
        for t in self._threads:
            t.start()
        while not (stop.is_set() or self._ended.is_set()):
            self._ended.wait(0.5)
        self._ended.set()
        self.till.cancel()
        self.dev.cancel()
        for t in self._threads:
            t.join(1.0)
        return None if stop.is_set() else self._reason

    def _forward(self, src: SerialEndpoint, dst: SerialEndpoint, direction: str, sink: CaptureSink,
                 stop: threading.Event) -> None:
        device, ended = self.device, self._ended
        at = src
        try:
            while not (ended.is_set() or stop.is_set()):
                at = src
                data = src.read_some()
                if data:
                    t_ns = time.time_ns()
                    at = dst
                    dst.write_all(data)  # forward first …
                    safe_chunk(sink, t_ns, device, direction, data)  # … then the copy, guarded
        except Exception as exc:  # noqa: BLE001 - SerialException (an OSError), or a port closed under us
            if self._reason is None and not ended.is_set():
                side = "till side" if at is self.till else "device side"
                self._reason = f"{side} {at.target}: {getattr(exc, 'strerror', None) or exc}"
        finally:
            ended.set()

    def release(self) -> None:
        self._ended.set()
        self.till.cancel()
        self.dev.cancel()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(1.0)
        self.till.close()
        self.dev.close()

    def interrupt(self) -> None:
        self._ended.set()
        self.till.cancel()
        self.dev.cancel()

"""Helpers shared by the transports: URL checks that end in one-line ``TransportConfigError``s, sink calls that
cannot raise into a forwarding loop, host:port parsing, and a TCP connect that a stop can interrupt."""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import threading
import time

from bridge.capture import CaptureSink
from bridge.transports.base import TransportConfigError, redact_url, split_query

log = logging.getLogger("tillwire.transports")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class UrlCheck:
    """Builds the one-line configuration errors for one device's URL: ``device 'x': transport URL: what``."""

    def __init__(self, device: str, url: str):
        self.device = device
        self.url = url

    def error(self, what: str) -> TransportConfigError:
        return TransportConfigError(f"device {self.device!r}: transport {redact_url(self.url)}: {what}")

    def only_keys(self, query: dict[str, str], allowed) -> None:
        unknown = sorted(set(query) - set(allowed))
        if unknown:
            accepted = ", ".join(sorted(allowed)) or "none"
            raise self.error(f"unknown query parameter {unknown[0]!r}; accepted: {accepted}")

    def boolean(self, key: str, value: str) -> bool:
        v = value.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
        raise self.error(f"{key}={value!r} is not a boolean; use true or false (1/0, yes/no, on/off)")

    def number(self, key: str, value: str, low: float, high: float, kind=float) -> float:
        try:
            n = kind(value)
        except ValueError:
            n = None
        if n is None or not (low <= n <= high):
            what = "an integer" if kind is int else "a number"
            raise self.error(f"{key}={value!r} is not accepted; use {what} from {_num(low)} to {_num(high)}")
        return n

    def split(self):
        """``split_query`` of the URL, its one error (a key given twice) prefixed with the device like the rest."""
        try:
            return split_query(self.url)
        except TransportConfigError as exc:
            raise self.error(str(exc).removeprefix(f"{self.url}: ")) from None

    def host_port(self, what: str, text: str, allow_zero: bool = False) -> tuple[str, int]:
        """``HOST:PORT`` or ``[v6]:PORT``; the port is required (0 only where ``allow_zero``: any free port)."""
        host, sep, port_text = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not sep or not host or not port_text.isdigit():
            raise self.error(f"{what} {text!r} is not HOST:PORT (e.g. 127.0.0.1:9100)")
        port = int(port_text)
        if not ((0 if allow_zero else 1) <= port <= 65535):
            raise self.error(f"{what} port {port} is out of range; use 1 to 65535")
        return host, port


#: A sink that raises is logged at most once per device per this many seconds (it may raise for every chunk).
SINK_ERROR_LOG_EVERY_S = 60.0
_sink_errors: dict[str, list] = {}  # device -> [last log time (monotonic), errors since]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def safe_chunk(sink: CaptureSink, t_ns: int, device: str, direction: str, data: bytes) -> None:
    """Hand a copy to the sink; a sink that raises (it must not) is logged, never allowed to stop forwarding."""
    try:
        sink.chunk(t_ns, device, direction, data)
    except Exception:  # noqa: BLE001 - the till's traffic comes first, whatever the sink does
        _sink_failed(device)


def _sink_failed(device: str) -> None:
    now = time.monotonic()
    entry = _sink_errors.setdefault(device, [float("-inf"), 0])
    entry[1] += 1
    if now - entry[0] >= SINK_ERROR_LOG_EVERY_S:
        log.exception("device %s: the capture sink raised (%d times since the last report); the bytes were "
                      "forwarded, their copies are lost", device, entry[1])
        entry[0], entry[1] = now, 0


def safe_status(sink: CaptureSink, device: str, state: str, **detail) -> None:
    try:
        sink.status(time.time_ns(), device, state, **detail)
    except Exception:  # noqa: BLE001
        _sink_failed(device)


def peer_name(address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Waker:
    """A socket pair a selector can watch: ``wake()`` from any thread makes the selector return."""

    def __init__(self):
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        self.fired = threading.Event()

    def fileno(self) -> int:
        return self._r.fileno()

    def wake(self) -> None:
        self.fired.set()
        try:
            self._w.send(b"\0")
        except (OSError, ValueError):  # full (already woken) or closed
            pass

    def drain(self) -> None:
        try:
            while self._r.recv(4096):
                pass
        except OSError:  # nothing left (EAGAIN)
            pass

    def close(self) -> None:
        self._r.close()
        self._w.close()


def connect(host: str, port: int, timeout: float, waker: Waker) -> socket.socket:
    """A TCP connection to ``host:port`` that gives up after ``timeout`` s or when ``waker`` fires (OSError)."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    for family, type_, proto, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            rc = sock.connect_ex(addr)
            if rc not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise OSError(rc, os.strerror(rc))
            if rc:
                with selectors.DefaultSelector() as sel:
                    sel.register(sock, selectors.EVENT_WRITE)
                    sel.register(waker, selectors.EVENT_READ)
                    remaining = deadline - time.monotonic()
                    ready = sel.select(max(0.0, remaining)) if remaining > 0 else []
                    if waker.fired.is_set():
                        raise OSError(errno.ECANCELED, "stopped")
                    if not ready:
                        raise OSError(errno.ETIMEDOUT, f"no answer within {timeout:g} s")
                rc = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if rc:
                    raise OSError(rc, os.strerror(rc))
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno == errno.ECANCELED:
                raise
    raise last or OSError(errno.EHOSTUNREACH, f"{host}: no address")


def listen(host: str, port: int, backlog: int = 16) -> socket.socket:
    """A listening TCP socket (SO_REUSEADDR, so a reopen after a restart does not wait for TIME_WAIT)."""
    last: OSError | None = None
    for family, type_, proto, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                            flags=socket.AI_PASSIVE):
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(backlog)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(errno.EADDRNOTAVAIL, f"{host}: no address")

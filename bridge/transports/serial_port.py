"""``serial://PORT?settings`` and pyserial's URL handlers (``socket://``, ``rfc2217://``, ``loop://``).

The bridge only *listens* to a device on a plain serial port (a scanner, a streaming scale, an MSR): every byte
it reads is ``from_device``. ``send(data)`` writes to the device and reports the bytes as ``to_device`` (for
virtual devices and tests; a plain port has no till on it). To sit between a till and a device, use
``tap+serial://``.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time

import serial

from bridge.capture import FROM_DEVICE, TO_DEVICE, CaptureSink
from bridge.transports._common import UrlCheck, safe_chunk
from bridge.transports.base import Transport
from bridge.transports.serial_settings import SETTINGS_KEYS, parse_settings

#: How long one read waits before the loop looks at ``stop`` again (``interrupt`` also cancels a blocked read
#: where pyserial can, so this only bounds the stop latency of handlers without ``cancel_read``).
READ_TIMEOUT_S = 0.1

#: A write to a full line waits this long for room before it looks at ``cancel`` again.
WRITE_POLL_S = 0.1

#: pyserial URL handlers the bridge accepts, with the handler's own query keys passed through to pyserial.
HANDLER_KEYS = {
    "socket": ("logging",),
    "rfc2217": ("logging", "ign_set_control", "poll_modem", "timeout"),
    "loop": ("logging",),
}


class SerialEndpoint:
    """One serial port, by path (``/dev/ttyUSB0``, ``COM3``) or by pyserial URL, with its settings."""

    def __init__(self, check: UrlCheck, target: str, settings: dict, handler_query: dict[str, str]):
        self.target = target
        self.settings = settings
        self.port: serial.SerialBase | None = None
        self._cancelled = threading.Event()
        self._raw_fd: int | None = None  # where write_all writes itself (see there)
        if "://" in target:
            scheme = target.partition("://")[0].lower()
            if scheme not in HANDLER_KEYS:
                raise check.error(f"pyserial URL {target!r}: scheme {scheme!r} is not supported; "
                                  f"use a port path or one of {', '.join(h + '://' for h in HANDLER_KEYS)}")
            check.only_keys(handler_query, tuple(SETTINGS_KEYS) + HANDLER_KEYS[scheme])
            if scheme in ("socket", "rfc2217"):
                check.host_port(f"{scheme}:// address", target.partition("://")[2].partition("?")[0])
        else:
            check.only_keys(handler_query, SETTINGS_KEYS)
            if not target:
                raise check.error("no serial port given (e.g. serial:///dev/ttyUSB0 or serial://COM3)")

    def open(self) -> serial.SerialBase:
        try:
            port = serial.serial_for_url(self.target, do_not_open=True, timeout=READ_TIMEOUT_S, **self.settings)
            self._cancelled.clear()
            port.open()
        except ValueError as exc:  # a handler option pyserial rejects when it parses the URL at open time
            raise OSError(str(exc)) from exc
        scheme = self.target.partition("://")[0].lower() if "://" in self.target else ""
        self._raw_fd = port.fd if scheme == "" else port.fileno() if scheme == "socket" else None
        self.port = port
        return port

    def read_some(self) -> bytes:
        """What has arrived: waits up to ``READ_TIMEOUT_S`` for a first byte, then takes what is buffered."""
        port = self.port
        data = port.read(1)
        if data:
            waiting = port.in_waiting
            if waiting:
                data += port.read(waiting)
        return data

    def write_all(self, data: bytes) -> None:
        """Write every byte, waiting while the line is full (flow control, a slow device) until ``cancel``.

        A local port and a ``socket://`` port are written here, not with pyserial's ``write``: on a full
        non-blocking descriptor that one retries ``EAGAIN`` in a tight loop that ``cancel_write`` cannot break
        (pyserial issue #280), burning a core and the GIL the other direction needs. ``rfc2217://`` (which escapes
        what it writes) and ``loop://`` (which never blocks) use pyserial's own write."""
        port = self.port
        fd = self._raw_fd
        if fd is None:
            port.write(data)
            return
        view = memoryview(data)
        while view:
            if self._cancelled.is_set():
                raise OSError(errno.ECANCELED, "write cancelled")
            try:
                view = view[os.write(fd, view):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            select.select([], [fd], [], WRITE_POLL_S)

    def cancel(self) -> None:
        """Make a blocked read or write return (a write can block for good on a port held by flow control)."""
        self._cancelled.set()
        port = self.port
        for name in ("cancel_read", "cancel_write"):
            cancel = getattr(port, name, None)
            if cancel is not None:
                try:
                    cancel()
                except Exception:  # noqa: BLE001 - closed under us, or the handler cannot cancel
                    pass

    def close(self) -> None:
        self._raw_fd = None
        port, self.port = self.port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - closing a port whose device is gone
                pass


def serial_target(url: str, parts) -> str:
    """The pyserial port name or URL for ``url``: ``serial:///dev/x`` -> ``/dev/x``, handler URLs without our keys."""
    scheme = parts.scheme.lower()
    if scheme in ("serial", "tap+serial"):
        return (parts.netloc + parts.path) if parts.netloc else parts.path
    return f"{scheme}://{parts.netloc}{parts.path}"


def handler_url(target: str, query: dict[str, str]) -> str:
    """``target`` with the query keys pyserial's handler understands (our settings keys removed)."""
    if "://" not in target:
        return target
    scheme = target.partition("://")[0].lower()
    passed = [f"{k}={v}" for k, v in query.items() if k in HANDLER_KEYS.get(scheme, ())]
    return target + ("?" + "&".join(passed) if passed else "")


class SerialTransport(Transport):
    scheme = "serial"

    def __init__(self, device: str, url: str, **options):
        super().__init__(device, url)
        check = UrlCheck(device, url)
        if options:
            raise check.error(f"unknown transport option {sorted(options)[0]!r}; a serial port takes none")
        parts, query = check.split()
        target = serial_target(url, parts)
        settings = parse_settings(check, query)
        self.endpoint = SerialEndpoint(check, handler_url(target, query), settings, query)
        self._write_lock = threading.Lock()

    @property
    def port(self):
        return self.endpoint.port

    def open(self) -> None:
        self.endpoint.open()

    def pump(self, sink: CaptureSink, stop: threading.Event) -> str | None:
        endpoint = self.endpoint
        while not stop.is_set():
            data = endpoint.read_some()
            if data:
                safe_chunk(sink, time.time_ns(), self.device, FROM_DEVICE, data)
        return None

    def send(self, data: bytes, sink: CaptureSink | None = None) -> None:
        """Write to the device (a virtual device's or a test's bytes); reported to ``sink`` as ``to_device``."""
        port = self.endpoint.port
        if port is None:
            raise OSError(f"device {self.device!r} is not open")
        with self._write_lock:
            self.endpoint.write_all(data)
        if sink is not None:
            safe_chunk(sink, time.time_ns(), self.device, TO_DEVICE, bytes(data))

    def release(self) -> None:
        self.endpoint.close()

    def interrupt(self) -> None:
        self.endpoint.cancel()

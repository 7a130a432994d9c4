"""``serial://`` and pyserial's URL handlers, and ``tap+serial://``, with real parts: pyserial's ``loop://``,
``socket://`` and ``rfc2217://`` handlers (the latter two to loopback servers standing in for serial device
servers; the RFC 2217 one is pyserial's own ``PortManager``), and pty pairs (``os.openpty()``) standing in for
serial lines: till ⇄ pty ⇄ tap ⇄ pty ⇄ device."""

from __future__ import annotations

import contextlib
import os
import select
import socket

import threading
import time
import tty

import pytest

from bridge.capture import CLOSED, FROM_DEVICE, OPEN, TO_DEVICE
from bridge.transports import open_transport
from protocols import Decoder
from transport_helpers import Capture, DeviceServer, running
from transport_helpers import no_thread_leaks  # noqa: F401 - a fixture, used through pytestmark

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

LABELS = [b"4006381333931", b"96385074", b"036000291452"]


# ------------------------------------------------------------------------------------------------ helpers


class Pty:
    """A pty pair: the test holds the master (the far end of the line); the transport opens the slave by path."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # a serial line: no echo, no line editing, before anyone opens it
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def write_all(self, data: bytes) -> None:
        """Write everything, blocking while the line is full; stops quietly when the pty is closed."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.master, view):]
        except (OSError, TypeError):
            pass

    def read_exactly(self, n: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"got {len(out)} of {n} bytes: {bytes(out)!r}")
            out += os.read(self.master, n - len(out))
        return bytes(out)

    def read_available(self) -> bytes:
        out = bytearray()
        while select.select([self.master], [], [], 0.05)[0]:
            out += os.read(self.master, 65536)
        return bytes(out)

    def nothing_pending(self, wait: float = 0.1) -> bool:
        return not select.select([self.master], [], [], wait)[0]

    def close_master(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def close(self) -> None:
        self.close_master()
        with contextlib.suppress(OSError):
            os.close(self.slave)


@pytest.fixture
def ptys():
    made: list[Pty] = []

    def make() -> Pty:
        made.append(Pty())
        return made[-1]

    yield make
    for p in made:
        p.close()


class PushingDevice:
    """A serial device server on loopback (what ``socket://`` talks to): sends ``data`` to whoever connects."""

    def __init__(self, port: int = 0):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(2)
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self, timeout: float = 5.0) -> socket.socket:
        self.listener.settimeout(timeout)
        self.conn, _ = self.listener.accept()
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def scanner_labels(data: bytes) -> list[str]:
    dec = Decoder("scanner", FROM_DEVICE, suffix="crlf")
    return [e["data"]["label"] for e in dec.events(data) + dec.close_events() if e["type"] == "scanner.data"]


def wait_until_forwarding_is_held_up(capture: Capture, quiet_s: float = 0.3, timeout: float = 10.0) -> None:
    """Poll until the captured ``to_device`` bytes stop growing for ``quiet_s`` (the tap's write is blocked)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        capture.drain(0.02)
        n = len(capture.data(TO_DEVICE))
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
    raise AssertionError("the tap's writes towards the device never stopped")


def cpu_seconds_over(window_s: float) -> float:
    """CPU time this process (every thread) uses in ``window_s`` of wall time."""
    t0 = time.process_time()
    time.sleep(window_s)
    return time.process_time() - t0


# ------------------------------------------------------------------------------------------------ plain serial


def test_loop_handler_what_is_sent_comes_back_from_the_device():
    capture = Capture()
    transport = open_transport("scanner", "loop://?logging=info")
    with running(transport, capture):
        capture.wait_status(OPEN)
        transport.send(b"4006381333931\r\n", capture)
        data = capture.wait_data(FROM_DEVICE, 15)
    assert data == b"4006381333931\r\n"
    assert capture.data(TO_DEVICE) == b"4006381333931\r\n"
    assert scanner_labels(data) == ["4006381333931"]


def test_a_scanner_behind_a_serial_device_server_socket_handler():
    device = PushingDevice()
    capture = Capture()
    transport = open_transport("scanner", f"socket://127.0.0.1:{device.port}")
    try:
        with running(transport, capture):
            conn = device.accept()
            capture.wait_status(OPEN)  # pyserial's socket handler discards what arrives while it opens
            for label in LABELS:
                conn.sendall(label + b"\r\n")
            data = capture.wait_data(FROM_DEVICE, sum(len(x) + 2 for x in LABELS))
    finally:
        device.close()
    assert scanner_labels(data) == [x.decode() for x in LABELS]
    assert capture.data(TO_DEVICE) == b""


def test_a_serial_device_server_that_goes_away_is_reopened_with_backoff():
    device = PushingDevice()
    port = device.port
    capture = Capture()
    transport = open_transport("scale", f"socket://127.0.0.1:{port}")
    with running(transport, capture):
        conn = device.accept()
        capture.wait_status(OPEN)  # pyserial's socket handler discards what arrives while it opens
        conn.sendall(b"first\r\n")
        capture.wait_data(FROM_DEVICE, 7)
        device.close()  # the device server disappears
        gone = capture.wait_status(CLOSED)[0]
        assert gone.detail["reason"] and gone.detail["retry_s"] > 0
        refused = capture.wait_status(CLOSED, count=2)[1]  # the reopen fails: one status for the new reason
        assert "refused" in refused.detail["reason"].lower()
        time.sleep(0.6)  # let several retries fail (backoff, not a busy loop; one status per change)
        capture.drain()
        assert len([s for s in capture.statuses() if s.state == CLOSED]) == 2
        device = PushingDevice(port)  # back on the same port
        try:
            conn = device.accept(timeout=10)
            capture.wait_status(OPEN, count=2)
            conn.sendall(b"second\r\n")
            capture.wait_data(FROM_DEVICE, 15, timeout=10)
        finally:
            device.close()
    assert capture.data(FROM_DEVICE) == b"first\r\nsecond\r\n"
    assert [s.state for s in capture.statuses()][:4] == [OPEN, CLOSED, CLOSED, OPEN]


def test_a_pty_line_streams_from_the_device_and_its_loss_is_reported(ptys):
    line = ptys()
    capture = Capture()
    transport = open_transport("scale", f"serial://{line.path}?baudrate=9600&bytesize=8&parity=N&stopbits=1")
    with running(transport, capture):
        capture.wait_status(OPEN)
        for label in LABELS:
            line.write(label + b"\r\n")
        data = capture.wait_data(FROM_DEVICE, sum(len(x) + 2 for x in LABELS))
        assert scanner_labels(data) == [x.decode() for x in LABELS]
        line.close()  # the device (and its line) goes away
        gone = capture.wait_status(CLOSED)[0]
        assert gone.detail["retry_s"] > 0 and gone.detail["reason"]
        assert gone.detail["transport"].startswith("serial:///dev/")


def test_stopping_during_backoff_returns_promptly():
    capture = Capture()
    transport = open_transport("scale", "serial:///dev/tillwire-no-such-port")
    with running(transport, capture, stop_within=0.5):
        status = capture.wait_status(CLOSED)[0]
        assert "no such file" in status.detail["reason"].lower()
        time.sleep(0.3)
    capture.drain()
    assert capture.statuses()[-1].state == CLOSED


# ------------------------------------------------------------------------------------------------ serial tap


def test_a_serial_tap_between_two_pty_lines_forwards_and_captures_both_ways(ptys):
    till, printer = ptys(), ptys()
    capture = Capture()
    url = f"tap+serial://{till.path}?device={printer.path}&baudrate=19200&bytesize=8&parity=N&stopbits=1"
    transport = open_transport("printer", url)
    request = b"\x1b@Hello\n\x10\x04\x01"
    with running(transport, capture):
        capture.wait_status(OPEN)
        till.write(request)
        assert printer.read_exactly(len(request)) == request
        printer.write(b"\x12")
        assert till.read_exactly(1) == b"\x12"
        capture.wait_data(FROM_DEVICE, 1)
        capture.wait_data(TO_DEVICE, len(request))
    assert capture.data(TO_DEVICE) == request
    assert capture.data(FROM_DEVICE) == b"\x12"
    assert till.nothing_pending() and printer.nothing_pending()  # nothing echoed, nothing doubled


def test_a_serial_tap_keeps_forwarding_when_the_sink_raises(ptys):
    till, scale = ptys(), ptys()

    statuses = Capture()

    class RaisingSink:
        calls = 0

        def chunk(self, *args):
            RaisingSink.calls += 1
            raise RuntimeError("broken pipeline")

        def status(self, *args, **detail):
            statuses.status(*args, **detail)

    transport = open_transport("scale", f"tap+serial://{till.path}?device={scale.path}&baudrate=9600")
    with running(transport, RaisingSink()):
        statuses.wait_status(OPEN)
        for i in range(20):
            poll = b"W\r"
            till.write(poll)
            assert scale.read_exactly(2) == poll
            reply = f"\n{i:05d}kg\r".encode()
            scale.write(reply)
            assert till.read_exactly(len(reply)) == reply
    assert RaisingSink.calls >= 40


def test_a_serial_tap_to_a_device_behind_a_socket_handler(ptys):
    till = ptys()

    def upper(seen: bytes, new: bytes) -> bytes:
        return new.upper()

    server = DeviceServer(upper).start()
    capture = Capture()
    transport = open_transport("display", f"tap+serial://{till.path}?device=socket://{server.address}")
    try:
        with running(transport, capture):
            capture.wait_status(OPEN)
            till.write(b"total 12.50")
            assert till.read_exactly(11) == b"TOTAL 12.50"
            capture.wait_data(FROM_DEVICE, 11)
    finally:
        server.stop()
    assert server.received() == b"total 12.50"
    assert capture.data(TO_DEVICE) == b"total 12.50"
    assert capture.data(FROM_DEVICE) == b"TOTAL 12.50"


def test_a_serial_tap_reports_the_device_side_going_away(ptys):
    till, device = ptys(), ptys()
    capture = Capture()
    transport = open_transport("scanner", f"tap+serial://{till.path}?device={device.path}")
    with running(transport, capture):
        capture.wait_status(OPEN)
        device.close()
        gone = capture.wait_status(CLOSED)[0]
    assert gone.detail["reason"].startswith(f"device side {device.path}")
    assert gone.detail["retry_s"] > 0





def test_a_device_that_stops_reading_blocks_only_its_own_direction_and_stop_is_still_prompt(ptys):
    """The device sends XOFF (software flow control): the tap's writes towards it block once the line's buffer
    is full. The device's own bytes still reach the till, and stopping cancels the blocked write."""
    till, device = ptys(), ptys()
    capture = Capture()
    transport = open_transport("printer", f"tap+serial://{till.path}?device={device.path}&xonxoff=true")
    with running(transport, capture, stop_within=0.5):
        capture.wait_status(OPEN)
        device.write(b"\x13")  # XOFF: the line discipline stops output towards the device
        backlog = b"R" * 256 * 1024
        writer = threading.Thread(target=lambda: till.write_all(backlog), daemon=True)
        writer.start()
        wait_until_forwarding_is_held_up(capture)
        assert cpu_seconds_over(0.5) < 0.25  # waiting for room, not spinning on EAGAIN
        device.write(b"paper low\n")
        assert till.read_exactly(10) == b"paper low\n"  # the other direction is not held up
        capture.wait_data(FROM_DEVICE, 10)
        arrived = device.read_available()
    assert len(arrived) < len(backlog)  # the device really was holding the line
    assert len(capture.data(TO_DEVICE)) < len(backlog)  # only what was forwarded is captured


class Rfc2217Server:
    """An RFC 2217 serial device server on loopback, built from pyserial's own ``PortManager`` in front of a
    ``loop://`` port standing in for the device's line: what the device says is ``device.write(...)``."""

    def __init__(self):
        import serial
        import serial.rfc2217

        self.line = serial.serial_for_url("loop://", timeout=0.05)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self._rfc2217 = serial.rfc2217
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(5)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return

        class Connection:
            def write(self, data):
                conn.sendall(data)

        manager = self._rfc2217.PortManager(self.line, Connection())
        conn.settimeout(0.05)

        def line_to_network():
            while not self.stopping.is_set():
                data = self.line.read(4096)
                if data:
                    with contextlib.suppress(OSError):
                        conn.sendall(b"".join(manager.escape(data)))

        pusher = threading.Thread(target=line_to_network, daemon=True)
        pusher.start()
        while not self.stopping.is_set():
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            for byte in manager.filter(data):
                self.line.write(byte)
        pusher.join(5)
        conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()
        self.line.close()


@pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning")  # pyserial's own threads
def test_an_rfc2217_device_server_gets_the_settings_and_its_device_is_read():
    server = Rfc2217Server()
    capture = Capture()
    transport = open_transport("scale", f"rfc2217://127.0.0.1:{server.port}?baudrate=19200&bytesize=7&parity=E")
    try:
        with running(transport, capture):
            capture.wait_status(OPEN, timeout=10)
            # the settings travelled over RFC 2217 and were applied to the server's port
            assert (server.line.baudrate, server.line.bytesize, server.line.parity) == (19200, 7, "E")
            server.line.write(b"\x0200.512kg\x03")
            assert capture.wait_data(FROM_DEVICE, 10) == b"\x0200.512kg\x03"
    finally:
        server.close()


def test_a_device_server_that_stops_reading_blocks_only_its_own_direction_and_stop_is_still_prompt(ptys):
    """The same through ``socket://``: the serial device server accepts, then reads nothing; the tap's writes
    towards it block once the socket buffers are full. The device's own bytes still reach the till."""
    till = ptys()
    device = PushingDevice()
    capture = Capture()
    transport = open_transport("printer", f"tap+serial://{till.path}?device=socket://127.0.0.1:{device.port}")
    try:
        with running(transport, capture, stop_within=0.5):
            conn = device.accept()
            capture.wait_status(OPEN)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            backlog = b"R" * (8 * 1024 * 1024)
            writer = threading.Thread(target=lambda: till.write_all(backlog), daemon=True)
            writer.start()
            wait_until_forwarding_is_held_up(capture)
            assert cpu_seconds_over(0.5) < 0.25  # waiting for room, not spinning on EAGAIN
            conn.sendall(b"paper low\n")
            assert till.read_exactly(10) == b"paper low\n"  # the other direction is not held up
            capture.wait_data(FROM_DEVICE, 10)
        assert len(capture.data(TO_DEVICE)) < len(backlog)  # the till's bytes were held up, not dropped
    finally:
        device.close()

"""Real parts for the transport tests: a transport running in its thread, a capture that drains a real
``CaptureQueue``, loopback TCP servers standing in for devices, and an in-memory pyusb backend.

Every wait here has a deadline: a failing test fails in seconds.
"""

from __future__ import annotations

import array
import contextlib
import errno
import queue
import socket
import threading
import time

import pytest
import usb.backend
import usb.core

from bridge.capture import CaptureQueue, Chunk, Status

WAIT_S = 5.0


class Capture:
    """A real ``CaptureQueue`` plus what has been taken out of it so far."""

    def __init__(self, max_bytes: int | None = None):
        self.queue = CaptureQueue(max_bytes) if max_bytes else CaptureQueue()
        self.items: list[Chunk | Status] = []

    # the sink interface, so a Capture can be handed to a transport directly
    def chunk(self, *args) -> None:
        self.queue.chunk(*args)

    def status(self, *args, **detail) -> None:
        self.queue.status(*args, **detail)

    def drain(self, timeout: float = 0.05) -> None:
        self.items.extend(self.queue.get_batch(timeout))

    def wait(self, predicate, timeout: float = WAIT_S, what: str = "the expected capture"):
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; captured: {self.summary()}")
            self.drain(0.05)

    def data(self, direction: str) -> bytes:
        return b"".join(c.data for c in self.items if type(c) is Chunk and c.direction == direction)

    def chunks(self) -> list[Chunk]:
        return [c for c in self.items if type(c) is Chunk]

    def statuses(self) -> list[Status]:
        return [s for s in self.items if type(s) is Status]

    def wait_data(self, direction: str, nbytes: int, timeout: float = WAIT_S) -> bytes:
        self.wait(lambda c: len(c.data(direction)) >= nbytes, timeout, f"{nbytes} bytes {direction}")
        return self.data(direction)

    def wait_status(self, state: str, count: int = 1, timeout: float = WAIT_S, **match) -> list[Status]:
        """The first ``count`` statuses in ``state`` whose detail matches: ``key=value`` must be equal,
        ``key=...`` must be present (``peer=...``: a connection's status)."""
        def found(c):
            hits = [s for s in c.statuses() if s.state == state
                    and all(s.detail.get(k) == v if v is not ... else k in s.detail for k, v in match.items())]
            return hits if len(hits) >= count else None

        return self.wait(found, timeout, f"{count} device.status {state} {match}")

    def summary(self) -> str:
        parts = []
        for item in self.items[-20:]:
            if type(item) is Status:
                parts.append(f"status {item.state} {item.detail}")
            else:
                parts.append(f"{item.direction} {item.data[:40]!r}")
        return "; ".join(parts) or "nothing"


@pytest.fixture
def no_thread_leaks():
    """After the test, every transport thread (``tillwire-*``, the ``run`` thread) has ended."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + WAIT_S
    while True:
        left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()
                and (t.name.startswith("tillwire-") or t.name == "transport-under-test")]
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"threads still running after the test: {left}")
        time.sleep(0.01)


@contextlib.contextmanager
def running(transport, sink, stop_within: float = 0.5):
    """Run ``transport.run(sink, stop)`` in a thread; on exit set ``stop``, interrupt it, and require that ``run``
    returns within ``stop_within`` s (the bridge's SIGTERM drain)."""
    stop = threading.Event()
    thread = threading.Thread(target=transport.run, args=(sink, stop), name="transport-under-test", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        t0 = time.monotonic()
        stop.set()
        transport.stop()
        thread.join(stop_within + 2.0)
        took = time.monotonic() - t0
        assert not thread.is_alive(), "transport.run did not return after stop"
        assert took <= stop_within, f"run returned {took:.3f} s after stop (limit {stop_within} s)"


def recv_exactly(sock: socket.socket, n: int, timeout: float = WAIT_S) -> bytes:
    sock.settimeout(timeout)
    out = bytearray()
    while len(out) < n:
        part = sock.recv(n - len(out))
        if not part:
            raise AssertionError(f"connection closed after {len(out)} of {n} bytes")
        out += part
    return bytes(out)


def connect_when_listening(address, timeout: float = WAIT_S) -> socket.socket:
    """A client connection once the transport listens (it binds in its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection(address[:2], timeout=timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def bound_address(transport, timeout: float = WAIT_S):
    """The address a listening transport bound (the URL said port 0)."""
    deadline = time.monotonic() + timeout
    while transport.address is None:
        if time.monotonic() > deadline:
            raise AssertionError("the transport never listened")
        time.sleep(0.005)
    return transport.address


class DeviceServer:
    """A device on loopback (a printer on 9100, a ZVT terminal): accepts connections one after another, keeps
    what each sent, and answers through ``respond(received_so_far, new_bytes) -> bytes`` (default: nothing).

    ``stop()`` closes the listener and every connection (the device disappears); ``start()`` brings it back on
    the same port. With ``keep_open`` a connection whose client has closed its side stays open on the device's
    side until ``stop()`` (a device that never closes first)."""

    def __init__(self, respond=None, port: int = 0, keep_open: bool = False):
        self.respond = respond or (lambda seen, new: b"")
        self.port = port
        self.keep_open = keep_open
        self._stopping = threading.Event()
        self.connections: list[bytearray] = []
        self.closed = threading.Event()  # set when a connection saw EOF from the client
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DeviceServer:
        self._stopping.clear()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(8)
        self.port = s.getsockname()[1]
        self._listener = s
        t = threading.Thread(target=self._accept, args=(s,), daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            seen = bytearray()
            with self._lock:
                self.connections.append(seen)
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn, seen), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket, seen: bytearray) -> None:
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    self.closed.set()
                    if self.keep_open:
                        self._stopping.wait(WAIT_S * 4)
                    break
                seen += data
                answer = self.respond(bytes(seen), data)
                if answer:
                    conn.sendall(answer)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def received(self) -> bytes:
        with self._lock:
            return b"".join(bytes(c) for c in self.connections)

    def stop_listening(self) -> None:
        """No new connections (the live ones stay). A blocked ``accept`` only wakes on ``shutdown``."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def stop(self) -> None:
        self._stopping.set()
        self.stop_listening()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        for t in self._threads:
            t.join(WAIT_S)
        self._threads = []


# ------------------------------------------------------------------------------------------------ pyusb, in memory


class _Desc:
    def __init__(self, **fields):
        self.__dict__.update(fields)


class MemoryUsbBackend(usb.backend.IBackend):
    """A pyusb backend serving one USB printer-class device from memory (no USB hardware is attached to the test
    machine): interface 0, class 7 (printer) subclass 1 protocol 2 (bidirectional), bulk IN 0x81 and bulk OUT 0x01.

    ``device_writes(data)`` puts bytes on the IN endpoint (what the device says); ``written`` collects what the
    host wrote to the OUT endpoint; ``unplug()`` / ``plug()`` make the device vanish and come back (reads then
    fail with ``USBError`` ENODEV and ``find`` finds nothing)."""

    VID, PID = 0x04B8, 0x0202

    def __init__(self):
        self.present = threading.Event()
        self.present.set()
        self.to_host: queue.Queue[bytes] = queue.Queue()
        self.written = bytearray()
        self.claimed: set[int] = set()
        self.opened = 0
        self.kernel_driver_active = True

    def device_writes(self, data: bytes) -> None:
        self.to_host.put(bytes(data))

    def unplug(self) -> None:
        self.present.clear()

    def plug(self) -> None:
        self.present.set()

    # ---- enumeration and descriptors
    def enumerate_devices(self):
        if self.present.is_set():
            yield "printer-0"

    def get_device_descriptor(self, dev):
        return _Desc(bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
                     bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=self.VID, idProduct=self.PID, bcdDevice=0x0100,
                     iManufacturer=0, iProduct=0, iSerialNumber=0, bNumConfigurations=1, address=5, bus=1,
                     port_number=2, port_numbers=(2,), speed=3)

    def get_configuration_descriptor(self, dev, config):
        if config != 0:
            raise IndexError(config)
        return _Desc(bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=1, bConfigurationValue=1,
                     iConfiguration=0, bmAttributes=0xC0, bMaxPower=50, extra_descriptors=[])

    def get_interface_descriptor(self, dev, intf, alt, config):
        if intf != 0 or alt != 0 or config != 0:
            raise IndexError(intf)
        return _Desc(bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0, bNumEndpoints=2,
                     bInterfaceClass=7, bInterfaceSubClass=1, bInterfaceProtocol=2, iInterface=0,
                     extra_descriptors=[])

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        if ep not in (0, 1):
            raise IndexError(ep)
        return _Desc(bLength=7, bDescriptorType=5, bEndpointAddress=(0x81, 0x01)[ep], bmAttributes=0x02,
                     wMaxPacketSize=64, bInterval=0, bRefresh=0, bSynchAddress=0, extra_descriptors=[])

    # ---- handles and interfaces
    def _check(self) -> None:
        if not self.present.is_set():
            raise usb.core.USBError("No such device (it may have been disconnected)", errno=errno.ENODEV)

    def open_device(self, dev):
        self._check()
        self.opened += 1
        return "handle"

    def close_device(self, dev_handle):
        self.opened -= 1

    def set_configuration(self, dev_handle, config_value):
        self._check()

    def get_configuration(self, dev_handle):
        self._check()
        return 1

    def claim_interface(self, dev_handle, intf):
        self._check()
        self.claimed.add(intf)

    def release_interface(self, dev_handle, intf):
        self.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle, intf):
        return self.kernel_driver_active

    def detach_kernel_driver(self, dev_handle, intf):
        self.kernel_driver_active = False

    def attach_kernel_driver(self, dev_handle, intf):
        self.kernel_driver_active = True

    # ---- transfers
    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        self._check()
        self.written += bytes(data)
        return len(data)

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        deadline = time.monotonic() + timeout / 1000
        while True:
            self._check()
            try:
                data = self.to_host.get(timeout=min(0.02, max(0.0, deadline - time.monotonic())))
                break
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise usb.core.USBTimeoutError("Operation timed out", errno=errno.ETIMEDOUT) from None
        n = min(len(data), len(buff) * buff.itemsize)
        buff[:n] = array.array("B", data[:n])
        if n < len(data):
            self.to_host.queue.appendleft(data[n:])
        return n

"""``usb://VID:PID[?interface=N&serial=S&in=0x81&out=0x01]`` through pyusb: a USB printer-class or vendor device
with bulk endpoints.

Reading the bulk IN endpoint gives ``from_device`` chunks (a printer's status replies, a scanner's labels);
``send(data)`` writes the bulk OUT endpoint and reports the bytes as ``to_device``.

Limits: the bridge *claims* the interface (detaching a kernel driver such as ``usblp`` first, reattaching it
on release), so it sits **instead of** the till's driver, not beside it. A USB tap (seeing what another program
sends) is not possible from user space; it needs a kernel-level sniffer such as ``usbmon``, which this transport
does not read.
"""

from __future__ import annotations

import errno
import threading
import time

from bridge.capture import FROM_DEVICE, TO_DEVICE, CaptureSink
from bridge.transports._common import UrlCheck, safe_chunk
from bridge.transports.base import Transport

#: One bulk read waits this long (ms) before the loop looks at ``stop`` again (bounds the stop latency).
READ_TIMEOUT_MS = 100
#: Bytes asked for per bulk read; a short packet ends the transfer earlier.
READ_BYTES = 16 * 1024
WRITE_TIMEOUT_MS = 5000


def _hex16(check: UrlCheck, what: str, text: str) -> int:
    t = text.lower().removeprefix("0x")
    if not (1 <= len(t) <= 4) or any(c not in "0123456789abcdef" for c in t):
        raise check.error(f"{what} {text!r} is not a 16-bit hex number; use usb://VID:PID such as usb://04b8:0202")
    return int(t, 16)


def _endpoint_address(check: UrlCheck, key: str, text: str, want_in: bool) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not (0 <= value <= 0xFF) or bool(value & 0x80) != want_in or not (value & 0x0F):
        example = "0x81" if want_in else "0x01"
        raise check.error(f"{key}={text!r} is not a bulk {'IN' if want_in else 'OUT'} endpoint address "
                          f"(e.g. {example})")
    return value


class UsbTransport(Transport):
    scheme = "usb"

    def __init__(self, device: str, url: str, usb_backend=None, **options):
        super().__init__(device, url)
        check = UrlCheck(device, url)
        if options:
            raise check.error(f"unknown transport option {sorted(options)[0]!r}; usb takes usb_backend only")
        parts, query = check.split()
        check.only_keys(query, ("interface", "serial", "in", "out"))
        vid_text, sep, pid_text = parts.netloc.partition(":")
        if not sep or parts.path not in ("", "/"):
            raise check.error(f"{parts.netloc + parts.path!r} is not VID:PID; use usb://VID:PID such as "
                              "usb://04b8:0202")
        self.vid = _hex16(check, "vendor id", vid_text)
        self.pid = _hex16(check, "product id", pid_text)
        self.interface = int(check.number("interface", query["interface"], 0, 255, int)) if "interface" in query \
            else 0
        self.serial = query.get("serial")
        self.in_address = _endpoint_address(check, "in", query["in"], True) if "in" in query else None
        self.out_address = _endpoint_address(check, "out", query["out"], False) if "out" in query else None
        self.usb_backend = usb_backend
        self._dev = None
        self._ep_in = None
        self._ep_out = None
        self._reattach = False
        self._write_lock = threading.Lock()

    def open(self) -> None:
        import usb.core
        import usb.util

        try:
            dev = usb.core.find(idVendor=self.vid, idProduct=self.pid, backend=self.usb_backend,
                                custom_match=self._serial_matches if self.serial else None)
        except usb.core.NoBackendError as exc:
            raise OSError(errno.ENOSYS, "no USB backend found; install libusb-1.0") from exc
        if dev is None:
            raise OSError(errno.ENODEV, f"no USB device {self.vid:04x}:{self.pid:04x}")
        self._dev = dev
        try:
            cfg = dev.get_active_configuration()
        except usb.core.USBError:
            dev.set_configuration()
            cfg = dev.get_active_configuration()
        intf = usb.util.find_descriptor(cfg, bInterfaceNumber=self.interface)
        if intf is None:
            raise OSError(errno.ENODEV, f"USB device {self.vid:04x}:{self.pid:04x} has no interface {self.interface}")
        try:
            if dev.is_kernel_driver_active(self.interface):
                dev.detach_kernel_driver(self.interface)
                self._reattach = True
        except (NotImplementedError, usb.core.USBError):
            pass  # the backend or platform has no kernel-driver calls
        usb.util.claim_interface(dev, self.interface)
        self._ep_in = self._endpoint(intf, usb.util.ENDPOINT_IN, self.in_address)
        self._ep_out = self._endpoint(intf, usb.util.ENDPOINT_OUT, self.out_address)
        if self._ep_in is None and self._ep_out is None:
            raise OSError(errno.ENODEV, f"USB interface {self.interface} has no bulk endpoint")

    def _serial_matches(self, dev) -> bool:
        import usb.util

        try:
            return usb.util.get_string(dev, dev.iSerialNumber) == self.serial
        except Exception:  # noqa: BLE001 - no permission to read strings, or no serial number
            return False

    @staticmethod
    def _endpoint(intf, direction: int, address: int | None):
        import usb.util

        def match(ep) -> bool:
            if address is not None:
                return ep.bEndpointAddress == address
            return (usb.util.endpoint_direction(ep.bEndpointAddress) == direction
                    and usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK)

        return usb.util.find_descriptor(intf, custom_match=match)

    def pump(self, sink: CaptureSink, stop: threading.Event) -> str | None:
        import usb.core

        ep = self._ep_in
        if ep is None:  # an OUT-only device: nothing to read, stay open until stopped
            stop.wait()
            return None
        while not stop.is_set():
            try:
                data = ep.read(READ_BYTES, timeout=READ_TIMEOUT_MS)
            except usb.core.USBTimeoutError:
                continue
            if data:
                safe_chunk(sink, time.time_ns(), self.device, FROM_DEVICE, data.tobytes())
        return None

    def send(self, data: bytes, sink: CaptureSink | None = None) -> None:
        """Write the bulk OUT endpoint (a virtual device's or a test's bytes); reported as ``to_device``."""
        ep = self._ep_out
        if ep is None:
            raise OSError(errno.ENODEV, f"device {self.device!r} is not open or has no bulk OUT endpoint")
        with self._write_lock:
            ep.write(data, timeout=WRITE_TIMEOUT_MS)
        if sink is not None:
            safe_chunk(sink, time.time_ns(), self.device, TO_DEVICE, bytes(data))

    def release(self) -> None:
        dev, self._dev = self._dev, None
        self._ep_in = self._ep_out = None
        if dev is None:
            return
        import usb.util

        try:
            usb.util.release_interface(dev, self.interface)
            if self._reattach:
                dev.attach_kernel_driver(self.interface)
        except Exception:  # noqa: BLE001 - the device is gone
            pass
        finally:
            self._reattach = False
            try:
                usb.util.dispose_resources(dev)
            except Exception:  # noqa: BLE001
                pass

"""``usb://VID:PID`` through pyusb. No USB hardware is attached to the test machine: these tests run pyusb's real
``usb.core`` (find, configuration, claim, bulk transfers) against ``MemoryUsbBackend`` (tests/transport_helpers.py),
a real ``usb.backend.IBackend`` subclass written for the tests that serves a printer-class device (bulk IN 0x81,
bulk OUT 0x01) from memory."""

from __future__ import annotations

import pytest

from bridge.capture import CLOSED, FROM_DEVICE, OPEN, TO_DEVICE
from bridge.transports import TransportConfigError, open_transport
from protocols import Decoder
from transport_helpers import Capture, MemoryUsbBackend, running
from transport_helpers import no_thread_leaks  # noqa: F401 - a fixture, used through pytestmark

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

URL = "usb://04b8:0202?interface=0"


def test_bytes_the_device_sends_on_its_bulk_in_endpoint_arrive_as_from_device_chunks():
    backend = MemoryUsbBackend()
    capture = Capture()
    transport = open_transport("printer", URL, usb_backend=backend)
    with running(transport, capture):
        capture.wait_status(OPEN)
        assert backend.claimed == {0} and backend.kernel_driver_active is False  # the bridge took the interface
        backend.device_writes(b"\x12")
        backend.device_writes(b"\x16")
        data = capture.wait_data(FROM_DEVICE, 2)
    assert data == b"\x12\x16"
    assert backend.claimed == set() and backend.kernel_driver_active is True  # released, usblp given back
    dec = Decoder("escpos", FROM_DEVICE)
    dec.note_request("printer", 1)
    dec.note_request("printer", 1)
    statuses = [e for e in dec.events(data) if e["type"] == "printer.status"]
    assert [s["data"]["online"] for s in statuses] == [True, True]


def test_send_writes_the_bulk_out_endpoint_and_reports_to_device():
    backend = MemoryUsbBackend()
    capture = Capture()
    transport = open_transport("printer", "usb://0x04B8:0x0202?out=0x01&in=0x81", usb_backend=backend)
    with running(transport, capture):
        capture.wait_status(OPEN)
        transport.send(b"\x1b@Hello\n", capture)
        capture.wait_data(TO_DEVICE, 8)
    assert bytes(backend.written) == b"\x1b@Hello\n"


def test_a_device_that_vanishes_is_reported_and_reopened_when_it_is_back():
    backend = MemoryUsbBackend()
    capture = Capture()
    transport = open_transport("printer", URL, usb_backend=backend)
    with running(transport, capture):
        capture.wait_status(OPEN)
        backend.unplug()
        gone = capture.wait_status(CLOSED)[0]
        assert "no such device" in gone.detail["reason"].lower() and gone.detail["retry_s"] > 0
        missing = capture.wait_status(CLOSED, count=2)[1]  # reopening finds nothing
        assert missing.detail["reason"] == "no USB device 04b8:0202"
        backend.plug()
        capture.wait_status(OPEN, count=2, timeout=10)
        backend.device_writes(b"back")
        assert capture.wait_data(FROM_DEVICE, 4) == b"back"
    assert [s.state for s in capture.statuses()][:4] == [OPEN, CLOSED, CLOSED, OPEN]


def test_a_device_that_is_not_there_is_retried_and_stopping_is_prompt():
    backend = MemoryUsbBackend()
    backend.unplug()
    capture = Capture()
    transport = open_transport("printer", URL, usb_backend=backend)
    with running(transport, capture, stop_within=0.5):
        status = capture.wait_status(CLOSED)[0]
        assert status.detail["reason"] == "no USB device 04b8:0202"
        assert status.detail["transport"] == URL


def test_a_missing_interface_is_reported_not_raised():
    backend = MemoryUsbBackend()
    capture = Capture()
    transport = open_transport("printer", "usb://04b8:0202?interface=3", usb_backend=backend)
    with running(transport, capture):
        status = capture.wait_status(CLOSED)[0]
    assert status.detail["reason"] == "USB device 04b8:0202 has no interface 3"


def test_an_unknown_option_is_a_config_error():
    with pytest.raises(TransportConfigError, match="unknown transport option 'speed'"):
        open_transport("printer", URL, speed=3)

"""``tcp-listen://``: the bridge is the device endpoint (a virtual printer). A real python-escpos ``Network``
client prints to it over loopback; the till's bytes arrive in a real ``CaptureQueue`` as ``to_device`` and decode
to what was printed. Connections come and go (python-escpos connects per job) and each is a ``peer`` status."""

from __future__ import annotations

import contextlib
import io
import socket


import pytest

from bridge.capture import CLOSED, OPEN, TO_DEVICE
from bridge.transports import open_transport
from protocols import Decoder
from transport_helpers import Capture, bound_address, connect_when_listening, running
from transport_helpers import no_thread_leaks  # noqa: F401 - a fixture, used through pytestmark

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

escpos_printer = pytest.importorskip("escpos.printer", reason="python-escpos (dev extra) is not installed")

RECEIPT_TEXT = "Coffee 2.40"
EAN = "4006381333931"


def print_receipt(port: int, text: str = RECEIPT_TEXT) -> None:
    """One receipt from a real python-escpos client: text, an EAN-13 barcode, a cut; then it disconnects."""
    printer = escpos_printer.Network("127.0.0.1", port=port, timeout=5, profile="TM-T88IV")
    with contextlib.redirect_stdout(io.StringIO()):  # python-escpos prints notices about barcode rendering
        printer.text(text + "\n")
        printer.barcode(EAN, "EAN13")
        printer.cut()
    printer.close()


def decoded(data: bytes, direction: str = TO_DEVICE) -> list[dict]:
    dec = Decoder("escpos", direction)
    return dec.events(data) + dec.close_events()


def of_type(events, kind):
    return [e for e in events if e["type"] == kind]


def test_a_python_escpos_receipt_is_captured_as_to_device_and_decodes():
    capture = Capture()
    transport = open_transport("printer", "tcp-listen://127.0.0.1:0")
    with running(transport, capture):
        port = bound_address(transport)[1]
        print_receipt(port)
        capture.wait_status(CLOSED, peer=...)  # the till hung up: everything it sent has been read
    data = capture.data(TO_DEVICE)
    events = decoded(data)
    assert [e["data"]["text"] for e in of_type(events, "printer.line")] == [RECEIPT_TEXT]
    assert of_type(events, "printer.barcode")[0]["data"] == {"symbology": "EAN13", "data": EAN}
    assert len(of_type(events, "printer.cut")) == 1
    assert capture.data("from_device") == b""


def test_status_says_listening_then_each_connection_with_its_peer():
    capture = Capture()
    transport = open_transport("printer", "tcp-listen://127.0.0.1:0")
    with running(transport, capture):
        port = bound_address(transport)[1]
        for text in ("first", "second", "third"):  # python-escpos reconnects for every receipt
            print_receipt(port, text)
        capture.wait_status(CLOSED, count=3, peer=...)
    capture.drain()
    statuses = capture.statuses()
    assert statuses[0].state == OPEN and "peer" not in statuses[0].detail
    assert statuses[0].detail["transport"] == "tcp-listen://127.0.0.1:0"
    per_peer = [s for s in statuses if "peer" in s.detail]
    opened = [s.detail["peer"] for s in per_peer if s.state == OPEN]
    closed = [s.detail["peer"] for s in per_peer if s.state == CLOSED]
    assert len(opened) == 3 and sorted(opened) == sorted(closed)
    assert all(p.startswith("127.0.0.1:") for p in opened)
    assert all(s.detail["reason"] == "the till closed the connection" for s in per_peer if s.state == CLOSED)
    assert statuses[-1].state == CLOSED and statuses[-1].detail["reason"] == "stopped"
    lines = [e["data"]["text"] for e in of_type(decoded(capture.data(TO_DEVICE)), "printer.line")]
    assert lines == ["first", "second", "third"]


def test_several_tills_may_be_connected_at_once_and_their_bytes_never_interleave():
    """Both connections are served at once, but the pipeline has one decoder per device: the second
    connection's bytes are handed over only once the first connection has ended, so the streams never mix."""
    capture = Capture()
    transport = open_transport("printer", "tcp-listen://127.0.0.1:0")
    with running(transport, capture):
        address = bound_address(transport)
        a = connect_when_listening(address)
        capture.wait_status(OPEN, peer=...)
        b = connect_when_listening(address)
        with a, b:
            b.sendall(b"B" * 10)
            a.sendall(b"A" * 5)
            assert capture.wait_data(TO_DEVICE, 5) == b"A" * 5
            a.sendall(b"A" * 5)
            assert capture.wait_data(TO_DEVICE, 10) == b"A" * 10
            a.close()
            assert capture.wait_data(TO_DEVICE, 20) == b"A" * 10 + b"B" * 10
        capture.wait_status(CLOSED, count=2, peer=...)
    per_peer = [(s.state, s.detail["peer"]) for s in capture.statuses() if "peer" in s.detail]
    first, second = per_peer[0][1], per_peer[2][1]
    assert per_peer == [(OPEN, first), (CLOSED, first), (OPEN, second), (CLOSED, second)]


def test_back_to_back_receipts_decode_in_order():
    """python-escpos style, as fast as the client can: a new connection per receipt, each closed right after its
    last byte. Every receipt decodes whole and in the order it was printed."""
    capture = Capture()
    transport = open_transport("printer", "tcp-listen://127.0.0.1:0")
    texts = [f"receipt {i}" for i in range(20)]
    with running(transport, capture):
        port = bound_address(transport)[1]
        for text in texts:
            print_receipt(port, text)
        capture.wait_status(CLOSED, count=len(texts), peer=...)
    events = decoded(capture.data(TO_DEVICE))
    assert [e["data"]["text"] for e in of_type(events, "printer.line")] == texts
    assert len(of_type(events, "printer.cut")) == len(texts)


def test_stop_closes_a_connected_till_and_returns_promptly():
    capture = Capture()
    transport = open_transport("printer", "tcp-listen://127.0.0.1:0")
    with running(transport, capture):
        till = connect_when_listening(bound_address(transport))
        capture.wait_status(OPEN, peer=...)
    # `running` asserted run returned within 0.5 s; the till sees the connection end
    assert recv_exactly_or_eof(till) == b""
    till.close()


def test_a_port_in_use_is_reported_closed_and_retried():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    capture = Capture()
    transport = open_transport("printer", f"tcp-listen://127.0.0.1:{port}")
    try:
        with running(transport, capture):
            status = capture.wait_status(CLOSED)[0]
            assert "in use" in status.detail["reason"]
            assert status.detail["retry_s"] > 0
            blocker.close()
            capture.wait_status(OPEN, timeout=10)  # rebinds once the port is free
            till = connect_when_listening(("127.0.0.1", port))
            with till:
                till.sendall(b"\x1b@")
                assert capture.wait_data(TO_DEVICE, 2) == b"\x1b@"
    finally:
        blocker.close()


def recv_exactly_or_eof(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    try:
        return sock.recv(1)
    except ConnectionResetError:
        return b""





def test_connections_past_the_limit_are_closed_and_reported():
    """The refusal is a ``closed`` status in connection order (it ends the device's streams, so it must not cut
    the live connection's): it comes through once the live connection has ended."""
    capture = Capture()
    transport = open_transport("printer", "tcp-listen://127.0.0.1:0")
    transport.max_connections = 1
    with running(transport, capture):
        address = bound_address(transport)
        with connect_when_listening(address) as first:
            capture.wait_status(OPEN, peer=...)
            with connect_when_listening(address) as second:
                second.settimeout(5)
                assert recv_exactly_or_eof(second) == b""
                second_port = second.getsockname()[1]
            first.sendall(b"\x1b@")
            assert capture.wait_data(TO_DEVICE, 2) == b"\x1b@"
        refused = capture.wait_status(CLOSED, count=2, peer=...)[1]  # after the live one, in connection order
        assert refused.detail["reason"] == ("refused: 1 connections are already open (the most a "
                                            "tcp-listen serves at once)")
        assert refused.detail["peer"] == "127.0.0.1:%d" % second_port

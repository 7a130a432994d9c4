"""``tap+tcp://``: till ⇄ tap ⇄ device over real loopback sockets. The till is a real python-escpos ``Network``
client or a fake ZVT ECR; the device is a plain socket server in the test. The device receives exactly what the
till sent, the till exactly what the device answered, and both directions arrive in a real ``CaptureQueue`` and
decode to the same events as the bytes themselves. Whatever the capture side does (raise, overflow), the till's
traffic passes unchanged."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import time

import pytest

from bridge.capture import CLOSED, FROM_DEVICE, OPEN, TO_DEVICE
from bridge.transports import open_transport
from protocols import Decoder
from transport_helpers import (Capture, DeviceServer, bound_address, connect_when_listening, recv_exactly,
                               running)
from transport_helpers import no_thread_leaks  # noqa: F401 - a fixture, used through pytestmark

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

escpos_printer = pytest.importorskip("escpos.printer", reason="python-escpos (dev extra) is not installed")
from escpos.constants import RT_STATUS_ONLINE  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE = "TM-T88IV"
DLE_EOT_1 = b"\x10\x04\x01"
ONLINE_STATUS = b"\x12"  # DLE EOT 1 reply: fixed bits 1 and 4 set, online, drawer pin low


def printer_replies(seen: bytes, new: bytes) -> bytes:
    """The test printer answers each DLE EOT 1 with one status byte (the request never straddles two reads
    here: python-escpos sends it in one write and waits for the answer)."""
    return ONLINE_STATUS * new.count(DLE_EOT_1)


def receipt(printer) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        printer.text("Tea 1.80\n")
        printer.barcode("4006381333931", "EAN13")
        printer.cut()


def receipt_bytes() -> bytes:
    dummy = escpos_printer.Dummy(profile=PROFILE)
    receipt(dummy)
    return dummy.output


def decode(data: bytes, direction: str, protocol: str = "escpos", requests=()) -> list[dict]:
    dec = Decoder(protocol, direction)
    for kind, n in requests:
        dec.note_request(kind, n)
    return dec.events(data) + dec.close_events()


def types(events) -> list[str]:
    return [e["type"] for e in events]


@pytest.fixture
def printer_server():
    server = DeviceServer(printer_replies).start()
    yield server
    server.stop()


def tap_url(upstream: str, extra: str = "") -> str:
    return f"tap+tcp://127.0.0.1:0?upstream={upstream}{extra}"


def test_a_python_escpos_receipt_passes_unchanged_and_is_captured(printer_server):
    capture = Capture()
    transport = open_transport("printer", tap_url(printer_server.address))
    with running(transport, capture):
        port = bound_address(transport)[1]
        printer = escpos_printer.Network("127.0.0.1", port=port, timeout=5, profile=PROFILE)
        receipt(printer)
        printer.close()
        capture.wait_status(CLOSED, peer=...)
    expected = receipt_bytes()
    assert printer_server.received() == expected  # the device got exactly what python-escpos wrote
    assert capture.data(TO_DEVICE) == expected  # and the capture holds the same bytes
    events = decode(capture.data(TO_DEVICE), TO_DEVICE)
    assert [e["data"]["text"] for e in events if e["type"] == "printer.line"] == ["Tea 1.80"]
    assert [e["data"] for e in events if e["type"] == "printer.barcode"] == [
        {"symbology": "EAN13", "data": "4006381333931"}]
    assert types(events).count("printer.cut") == 1


def test_the_printers_status_reply_flows_back_unchanged_and_is_captured_from_device(printer_server):
    capture = Capture()
    transport = open_transport("printer", tap_url(printer_server.address))
    with running(transport, capture):
        port = bound_address(transport)[1]
        printer = escpos_printer.Network("127.0.0.1", port=port, timeout=5, profile=PROFILE)
        assert printer.query_status(RT_STATUS_ONLINE) == ONLINE_STATUS  # the till got the printer's byte
        assert printer.is_online()
        printer.close()
        capture.wait_status(CLOSED, peer=...)
    assert capture.data(TO_DEVICE) == DLE_EOT_1 * 2
    assert capture.data(FROM_DEVICE) == ONLINE_STATUS * 2
    requests = [(e["data"]["kind"], e["data"]["n"]) for e in decode(capture.data(TO_DEVICE), TO_DEVICE)
                if e["type"] == "printer.status_request"]
    assert requests == [("printer", 1)] * 2
    replies = decode(capture.data(FROM_DEVICE), FROM_DEVICE, requests=requests)
    statuses = [e["data"] for e in replies if e["type"] == "printer.status"]
    assert len(statuses) == 2 and all(s["online"] is True for s in statuses)


def test_each_till_connection_is_a_peer_with_its_upstream(printer_server):
    capture = Capture()
    transport = open_transport("printer", tap_url(printer_server.address))
    with running(transport, capture):
        address = bound_address(transport)
        for _ in range(3):  # python-escpos style: one connection per job
            with connect_when_listening(address) as till:
                till.sendall(b"\x1b@hello\n")
            capture.wait(lambda c: len(printer_server.connections) >= 1)
        capture.wait_status(CLOSED, count=3, peer=...)
    opened = [s for s in capture.statuses() if s.state == OPEN and "peer" in s.detail]
    assert len(opened) == 3
    assert all(s.detail["upstream"] == printer_server.address for s in opened)
    assert printer_server.received() == b"\x1b@hello\n" * 3


# ------------------------------------------------------------------------------------------------ ZVT over TCP


def split_zvt_apdus(stream: bytes) -> list[bytes]:
    """ZVT APDUs: class, instr, length (one byte; FF means a two-byte little-endian length follows), data."""
    out, pos = [], 0
    while pos < len(stream):
        n, head = stream[pos + 2], 3
        if n == 0xFF:
            n, head = int.from_bytes(stream[pos + 3:pos + 5], "little"), 5
        out.append(stream[pos:pos + head + n])
        pos += head + n
    return out


def read_file(name: str) -> bytes:
    with open(os.path.join(ROOT, "sessions", "payment", name), "rb") as fh:
        return fh.read()


@pytest.mark.parametrize("dialogue", ["zvt-card-sale", "zvt-card-declined"])
def test_a_zvt_dialogue_through_the_tap(dialogue):
    ecr_apdus = split_zvt_apdus(read_file(f"{dialogue}.tcp.bin"))
    pt_apdus = split_zvt_apdus(read_file(f"{dialogue}.tcp.from_device.bin"))
    assert len(ecr_apdus) == len(pt_apdus)

    def terminal(seen: bytes, new: bytes) -> bytes:
        """The terminal answers the till's k-th APDU with its own (k+1)-th (the request also gets its ACK
        first): ACK + "insert card", then one command per ACK of the till, as the recorded dialogue goes."""
        k = len(split_zvt_apdus(seen)) - 1
        answer = pt_apdus[0:2] if k == 0 else pt_apdus[k + 1:k + 2]
        return b"".join(answer)

    server = DeviceServer(terminal).start()
    capture = Capture()
    transport = open_transport("terminal", tap_url(server.address))
    try:
        with running(transport, capture):
            ecr = connect_when_listening(bound_address(transport))
            with ecr:
                got = bytearray()
                for k, apdu in enumerate(ecr_apdus):
                    ecr.sendall(apdu)
                    expected = b"".join(pt_apdus[0:2] if k == 0 else pt_apdus[k + 1:k + 2])
                    got += recv_exactly(ecr, len(expected))
                    assert got[-len(expected):] == expected if expected else True
            capture.wait_status(CLOSED, peer=...)
    finally:
        server.stop()
    assert server.received() == b"".join(ecr_apdus)  # the terminal got exactly what the ECR sent
    assert bytes(got) == b"".join(pt_apdus)  # and the ECR exactly what the terminal sent
    for direction, stream in ((TO_DEVICE, b"".join(ecr_apdus)), (FROM_DEVICE, b"".join(pt_apdus))):
        assert capture.data(direction) == stream
        captured = Decoder("zvt-tcp", direction)
        from_chunks = [e for c in capture.chunks() if c.direction == direction for e in captured.events(c.data)]
        from_chunks += captured.close_events()
        assert from_chunks == decode(stream, direction, "zvt-tcp")
        assert from_chunks  # the dialogue does decode to something


# ------------------------------------------------------------------------------------------------ faults


class RaisingSink:
    """A sink that breaks its contract: every chunk raises. Statuses are kept."""

    def __init__(self):
        self.capture = Capture()
        self.calls = 0

    def chunk(self, *args) -> None:
        self.calls += 1
        raise RuntimeError("the pipeline is broken")

    def status(self, *args, **detail) -> None:
        self.capture.status(*args, **detail)


def echo_upper(seen: bytes, new: bytes) -> bytes:
    return new.upper()


def test_a_raising_sink_never_stops_the_tills_traffic():
    server = DeviceServer(echo_upper).start()
    sink = RaisingSink()
    transport = open_transport("printer", tap_url(server.address))
    try:
        with running(transport, sink):
            with connect_when_listening(bound_address(transport)) as till:
                for i in range(50):
                    msg = f"line {i}\n".encode()
                    till.sendall(msg)
                    assert recv_exactly(till, len(msg)) == msg.upper()
    finally:
        server.stop()
    assert server.received() == b"".join(f"line {i}\n".encode() for i in range(50))
    assert sink.calls >= 100  # both directions were offered to the sink, and it raised every time


def test_a_full_capture_queue_drops_copies_not_traffic():
    server = DeviceServer(echo_upper).start()
    capture = Capture(max_bytes=64)  # almost nothing fits; nobody drains it during the exchange
    transport = open_transport("printer", tap_url(server.address))
    payload = bytes(range(97, 123)) * 40  # 1040 bytes
    try:
        with running(transport, capture):
            with connect_when_listening(bound_address(transport)) as till:
                till.sendall(payload)
                assert recv_exactly(till, len(payload)) == payload.upper()
    finally:
        server.stop()
    assert server.received() == payload
    dropped = capture.queue.take_dropped()
    assert dropped["printer"][1] > 0  # the copies that did not fit were counted


def test_half_close_propagates_both_ways():
    """The till shuts down its sending side; the device sees EOF, still answers, then closes; the till gets the
    answer and then EOF."""
    server_side = {}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    capture = Capture()
    transport = open_transport("printer", tap_url(f"127.0.0.1:{port}"))
    with running(transport, capture), listener:
        till = connect_when_listening(bound_address(transport))
        with till:
            till.sendall(b"request")
            till.shutdown(socket.SHUT_WR)
            listener.settimeout(5)
            device, _ = listener.accept()
            with device:
                device.settimeout(5)
                got = bytearray()
                while True:
                    part = device.recv(100)
                    if not part:
                        break  # the till's FIN reached the device
                    got += part
                server_side["got"] = bytes(got)
                device.sendall(b"answer after your EOF")
                device.shutdown(socket.SHUT_WR)
                till.settimeout(5)
                received = bytearray()
                while True:
                    part = till.recv(100)
                    if not part:
                        break
                    received += part
        capture.wait_status(CLOSED, peer=...)
    assert server_side["got"] == b"request"
    assert bytes(received) == b"answer after your EOF"
    assert capture.data(FROM_DEVICE) == b"answer after your EOF"


def test_device_down_closes_the_tills_connection_and_reopens_when_it_is_back():
    server = DeviceServer(echo_upper).start()
    device_address = server.address
    server.stop()  # the printer is off
    capture = Capture()
    transport = open_transport("printer", tap_url(device_address, "&connect_timeout=1"))
    with running(transport, capture):
        address = bound_address(transport)
        till = connect_when_listening(address)
        with till:
            till.settimeout(5)
            assert till.recv(10) == b""  # the till sees its connection end, as with a printer that is off
        refused = capture.wait_status(CLOSED, peer=...)[0]
        assert refused.detail["reason"].startswith(f"upstream {device_address}:")
        assert "refused" in refused.detail["reason"].lower()
        down = capture.wait_status(CLOSED, retry_s=...)[0]  # the transport itself: closed, retrying
        assert down.detail["reason"] == refused.detail["reason"] and down.detail["retry_s"] > 0
        capture.wait_status(OPEN, count=2, timeout=5)  # listening again after the backoff
        server.start()  # the printer is back, on the same port
        try:
            with connect_when_listening(bound_address(transport)) as till:
                till.sendall(b"ok?")
                assert recv_exactly(till, 3) == b"OK?"
        finally:
            server.stop()
    opens = [s for s in capture.statuses() if s.state == OPEN and "peer" not in s.detail]
    assert len(opens) >= 2


def test_a_live_session_survives_a_second_till_that_cannot_reach_the_device():
    """A ZVT terminal takes one connection at a time: the second till's failure must not break the first. (The
    second's ``closed`` status waits its turn in connection order: it comes once the first has ended.)"""
    server = DeviceServer(echo_upper).start()
    capture = Capture()
    transport = open_transport("terminal", tap_url(server.address, "&connect_timeout=1"))
    try:
        with running(transport, capture):
            address = bound_address(transport)
            first = connect_when_listening(address)
            with first:
                first.sendall(b"abc")
                assert recv_exactly(first, 3) == b"ABC"
                server.stop_listening()  # the device accepts no further connection (the live one stays)
                with connect_when_listening(address) as second:
                    second.settimeout(5)
                    assert second.recv(10) == b""
                first.sendall(b"still here")
                assert recv_exactly(first, 10) == b"STILL HERE"
            capture.wait_status(CLOSED, count=2, peer=...)
    finally:
        server.stop()
    assert not [s for s in capture.statuses() if s.state == CLOSED and "retry_s" in s.detail]


@contextlib.contextmanager
def device_that_does_not_answer():
    """A listening port whose accept queue is full: the kernel drops further SYNs, so a connect hangs (what a
    device that is switched on but stuck, or a firewall that drops, looks like)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=5)  # takes the one backlog slot
    try:
        yield f"127.0.0.1:{port}"
    finally:
        filler.close()
        listener.close()


def test_a_device_that_does_not_answer_is_given_up_after_connect_timeout():
    capture = Capture()
    with device_that_does_not_answer() as address:
        transport = open_transport("printer", tap_url(address, "&connect_timeout=0.3"))
        with running(transport, capture):
            till = connect_when_listening(bound_address(transport))
            with till:
                till.settimeout(5)
                assert till.recv(10) == b""
            status = capture.wait_status(CLOSED, peer=...)[0]
    assert status.detail["reason"] == f"upstream {address}: no answer within 0.3 s"


def test_stopping_while_the_tap_waits_for_the_device_is_prompt():
    capture = Capture()
    with device_that_does_not_answer() as address:
        transport = open_transport("printer", tap_url(address, "&connect_timeout=30"))
        with running(transport, capture, stop_within=0.5):
            till = connect_when_listening(bound_address(transport))
            capture.wait_status(OPEN)
            # Whether or not the tap has started its 30 s connect yet, run must return within 0.5 s of stop.
            time.sleep(0.2)
        with till:
            till.settimeout(5)
            assert till.recv(10) == b""
    assert not [s for s in capture.statuses() if s.state == OPEN and "peer" in s.detail]


def test_back_to_back_receipts_through_the_tap_decode_in_order(printer_server):
    """A new connection per receipt, as fast as python-escpos can: the device gets each receipt on its own
    connection, and the captured stream holds the receipts whole and in order (copies never interleave)."""
    capture = Capture()
    transport = open_transport("printer", tap_url(printer_server.address))
    texts = [f"receipt {i}" for i in range(20)]
    with running(transport, capture):
        port = bound_address(transport)[1]
        for text in texts:
            printer = escpos_printer.Network("127.0.0.1", port=port, timeout=5, profile=PROFILE)
            with contextlib.redirect_stdout(io.StringIO()):
                printer.text(text + "\n")
                printer.cut()
            printer.close()
        capture.wait_status(CLOSED, count=len(texts), peer=...)
    events = decode(capture.data(TO_DEVICE), TO_DEVICE)
    assert [e["data"]["text"] for e in events if e["type"] == "printer.line"] == texts
    assert types(events).count("printer.cut") == len(texts)
    assert printer_server.received() == capture.data(TO_DEVICE)

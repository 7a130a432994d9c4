"""``tap+tcp://`` and ``tcp-listen://`` connections that do not end on their own: a device that keeps its side open
after the till has closed its own, a till that keeps an idle connection open while the next one talks.

What must hold: the till's traffic always passes (no connection refused because earlier ones linger, none
delayed), a half-closed session ends ``half_close`` seconds after its last bytes, the copies of a later connection are
captured after the earlier ones end, and copies the tap must drop are reported on the connection's
``closed`` status. Every wait has a deadline (``transport_helpers.WAIT_S``)."""

from __future__ import annotations

import socket
import time

import pytest

from bridge.capture import CLOSED, FROM_DEVICE, OPEN, TO_DEVICE
from bridge.transports import open_transport
from transport_helpers import (WAIT_S, Capture, DeviceServer, bound_address, connect_when_listening, recv_exactly,
                               running)
from transport_helpers import no_thread_leaks  # noqa: F401 - a fixture, used through pytestmark

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

LINGER = "0.3"


def echo_upper(seen: bytes, new: bytes) -> bytes:
    return new.upper()


def recv_until_eof(sock: socket.socket, timeout: float = WAIT_S) -> bytes:
    sock.settimeout(timeout)
    out = bytearray()
    while True:
        try:
            part = sock.recv(4096)
        except ConnectionResetError:
            return bytes(out)
        if not part:
            return bytes(out)
        out += part


def peer_statuses(capture: Capture, state: str):
    return [s for s in capture.statuses() if s.state == state and "peer" in s.detail]


def test_a_device_that_never_closes_its_side_never_stops_the_tills_traffic():
    """The reviewer's reproducer (/tmp/review/tap_half.py) as a test: the printer reads and never closes; 45
    print jobs, one connection each, as fast as the till can. Every job reaches the device, none is refused
    (the old tap refused from the 33rd on), every job's copy is captured in order, and every session ends
    ``half_close`` s after the till's FIN."""
    jobs = [b"job %d\n" % i for i in range(45)]
    server = DeviceServer(keep_open=True).start()
    capture = Capture()
    transport = open_transport("printer", f"tap+tcp://127.0.0.1:0?upstream={server.address}"
                               f"&half_close={LINGER}")
    try:
        with running(transport, capture):
            address = bound_address(transport)
            for job in jobs:
                with connect_when_listening(address) as till:
                    till.sendall(job)
            capture.wait(lambda c: server.received() == b"".join(jobs), what="every job at the device")
            closed = capture.wait_status(CLOSED, count=len(jobs), peer=...)
            capture.wait(lambda c: transport.live_sessions() == 0, what="no session left")
    finally:
        server.stop()
    assert capture.data(TO_DEVICE) == b"".join(jobs)  # every connection's copy, in connection order
    assert not [s for s in closed if s.detail["reason"].startswith("refused")]
    assert {s.detail["reason"] for s in closed} == {
        f"the till closed the connection; no bytes for {LINGER} s after that, so the tap closed it"}
    assert len(peer_statuses(capture, OPEN)) == len(jobs)
    assert not [s for s in closed if "dropped_bytes" in s.detail]


def test_a_till_that_keeps_its_side_open_after_the_device_closed_is_closed_after_half_close():
    """The reverse half-close: the device says goodbye and sends FIN, the till never closes. The till gets the
    device's bytes, then its connection ends ``half_close`` s later."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    capture = Capture()
    transport = open_transport("terminal",
                               f"tap+tcp://127.0.0.1:0?upstream=127.0.0.1:{listener.getsockname()[1]}"
                               f"&half_close={LINGER}")
    with running(transport, capture), listener:
        till = connect_when_listening(bound_address(transport))
        with till:
            listener.settimeout(WAIT_S)
            device, _ = listener.accept()
            with device:
                device.sendall(b"bye")
                device.shutdown(socket.SHUT_WR)
                assert recv_until_eof(till) == b"bye"  # EOF: the tap closed the till's connection
                status = capture.wait_status(CLOSED, peer=...)[0]
    assert status.detail["reason"] == (f"the device closed the connection; no bytes for {LINGER} s after that, "
                                       "so the tap closed it")
    assert capture.data(FROM_DEVICE) == b"bye"


def test_a_half_closed_session_that_keeps_answering_is_not_cut():
    """The half-close timeout counts from the last bytes, not from the FIN: a device that answers slowly after the
    till's FIN (parts 0.1 s apart, half_close 0.5 s) gets its whole answer through."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    parts = [b"part %d;" % i for i in range(8)]  # 0.7 s in all: longer than half_close
    capture = Capture()
    transport = open_transport("printer", f"tap+tcp://127.0.0.1:0?upstream=127.0.0.1:{listener.getsockname()[1]}"
                                          "&half_close=0.5")
    with running(transport, capture), listener:
        till = connect_when_listening(bound_address(transport))
        with till:
            till.sendall(b"request")
            till.shutdown(socket.SHUT_WR)
            listener.settimeout(WAIT_S)
            device, _ = listener.accept()
            with device:
                assert recv_until_eof(device) == b"request"
                for part in parts:
                    device.sendall(part)
                    time.sleep(0.1)  # the device's pace, not synchronisation
                device.shutdown(socket.SHUT_WR)
                assert recv_until_eof(till) == b"".join(parts)
        status = capture.wait_status(CLOSED, peer=...)[0]
    assert status.detail["reason"] == "the till closed the connection"
    assert capture.data(FROM_DEVICE) == b"".join(parts)


def test_a_later_connections_copies_wait_for_the_earlier_one_to_end():
    """A till keeps a connection open (a ZVT link kept all day); a second connection talks and ends meanwhile. Its
    traffic passes at once; its copies wait until the first connection ends, so each connection's bytes stay whole
    in the captured stream — never a second connection spliced into the middle of the first one's (review 2, N2:
    a card number split across such a join cannot be redacted)."""
    server = DeviceServer(echo_upper).start()
    capture = Capture()
    transport = open_transport("terminal", f"tap+tcp://127.0.0.1:0?upstream={server.address}")
    try:
        with running(transport, capture):
            address = bound_address(transport)
            with connect_when_listening(address) as first:
                first.sendall(b"a1")
                assert recv_exactly(first, 2) == b"A1"
                with connect_when_listening(address) as second:
                    second.sendall(b"b1")
                    assert recv_exactly(second, 2) == b"B1"  # forwarding never waits for the capture order
                first.sendall(b"a2")
                assert recv_exactly(first, 2) == b"A2"
                assert capture.wait_data(TO_DEVICE, 4) == b"a1a2"  # the second's copy is still held
            capture.wait_status(CLOSED, count=2, peer=...)
    finally:
        server.stop()
    assert capture.data(TO_DEVICE) == b"a1a2b1"
    assert capture.data(FROM_DEVICE) == b"A1A2B1"


def test_copies_dropped_past_the_hold_bound_are_reported_on_the_closed_status():
    """While the first connection is live, a second connection's
    copies are held up to ``held_max_bytes``; the rest are dropped. Its traffic passes whole, and its ``closed``
    status says how much of the copy was lost (``dropped_bytes``, ``dropped_chunks``) so the bridge reports it."""
    server = DeviceServer(echo_upper).start()
    capture = Capture()
    transport = open_transport("printer", f"tap+tcp://127.0.0.1:0?upstream={server.address}")
    transport.held_max_bytes = 100
    payload = bytes(range(97, 123)) * 40  # 1040 bytes
    try:
        with running(transport, capture):
            address = bound_address(transport)
            with connect_when_listening(address) as first:
                first.sendall(b"x")
                assert recv_exactly(first, 1) == b"X"
                with connect_when_listening(address) as second:
                    second.sendall(payload)
                    assert recv_exactly(second, len(payload)) == payload.upper()
                capture.wait(lambda c: len(server.connections) == 2 and server.connections[1] == payload,
                             what="the whole payload at the device")
            statuses = capture.wait_status(CLOSED, count=2, peer=...)
    finally:
        server.stop()
    assert server.received() == b"x" + payload
    first_closed, second_closed = statuses
    assert "dropped_bytes" not in first_closed.detail
    held = len(capture.data(TO_DEVICE)) - 1 + len(capture.data(FROM_DEVICE)) - 1
    assert held <= 100
    assert second_closed.detail["dropped_bytes"] == 2 * len(payload) - held  # both directions, to the byte
    assert second_closed.detail["dropped_chunks"] >= 2


def test_a_refused_connection_is_reported_and_the_live_one_goes_on():
    """Past ``max_connections`` a till's connection is closed at once; its ``closed`` status (reason
    ``refused: …``) takes its turn in connection order, so it never cuts the live connection's stream."""
    server = DeviceServer(echo_upper).start()
    capture = Capture()
    transport = open_transport("printer", f"tap+tcp://127.0.0.1:0?upstream={server.address}")
    transport.max_connections = 1
    try:
        with running(transport, capture):
            address = bound_address(transport)
            with connect_when_listening(address) as first:
                first.sendall(b"abc")
                assert recv_exactly(first, 3) == b"ABC"
                with connect_when_listening(address) as second:
                    assert recv_until_eof(second) == b""
                first.sendall(b"def")
                assert recv_exactly(first, 3) == b"DEF"
                assert capture.wait_data(TO_DEVICE, 6) == b"abcdef"
            first_closed, refused = capture.wait_status(CLOSED, count=2, peer=...)  # in connection order
    finally:
        server.stop()
    assert refused.detail["reason"] == "refused: 1 connections are already open (the most a tap+tcp serves at once)"
    assert refused.detail["peer"] != peer_statuses(capture, OPEN)[0].detail["peer"]


def test_a_late_answer_after_the_tills_fin_still_reaches_the_till():
    """Review 2, N3: a till that half-closes and then waits for a slow answer (a long print, a PIN entry) gets it
    through the tap as it would directly: the default half-close timeout is minutes. The answer comes 1 s after
    the FIN here."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    capture = Capture()
    transport = open_transport("printer", f"tap+tcp://127.0.0.1:0?upstream=127.0.0.1:{listener.getsockname()[1]}")
    with running(transport, capture), listener:
        till = connect_when_listening(bound_address(transport))
        with till:
            till.sendall(b"print this")
            till.shutdown(socket.SHUT_WR)
            listener.settimeout(WAIT_S)
            device, _ = listener.accept()
            with device:
                assert recv_until_eof(device) == b"print this"
                time.sleep(1.0)  # the device is slow on purpose: the answer must still arrive
                device.sendall(b"\x10\x06 job done\n")
                device.shutdown(socket.SHUT_WR)
                assert recv_until_eof(till) == b"\x10\x06 job done\n"

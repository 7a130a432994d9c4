"""The fault proxy against a plain echo server: each fault does what the reliability suite relies on."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from bridge_helpers import wait_for
from faultproxy import FaultProxy

TIMEOUT = 5.0


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Echo)
        self.received = bytearray()   # everything any client sent, in arrival order
        self.lock = threading.Lock()
        self.close_after_first = False


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        server: _EchoServer = self.server  # type: ignore[assignment]
        sock = self.request
        sock.settimeout(TIMEOUT)
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            with server.lock:
                server.received += data
            try:
                sock.sendall(data)
            except OSError:
                return
            if server.close_after_first:
                return


@pytest.fixture
def echo():
    server = _EchoServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(TIMEOUT)


@pytest.fixture
def proxy(echo):
    with FaultProxy(echo.server_address) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    s = socket.create_connection(proxy.address, timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def closed_by_peer(s: socket.socket) -> bool:
    """True once the proxy closed or reset the connection (recv sees EOF or an RST), whatever came before."""
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_forwards_both_ways_and_counts(proxy, echo):
    with connect(proxy) as s:
        s.sendall(b"hello tillwire")
        assert recv_exactly(s, 14) == b"hello tillwire"
    stats = wait_for(lambda: (st := proxy.stats()).live == 0 and st, TIMEOUT, "the link to close")
    assert (stats.connections, stats.bytes_up, stats.bytes_down) == (1, 14, 14)
    assert bytes(echo.received) == b"hello tillwire"


def test_down_refuses_and_closes_then_up_listens_on_the_same_port(proxy):
    live = connect(proxy)
    live.sendall(b"x")
    assert recv_exactly(live, 1) == b"x"
    port = proxy.port
    proxy.down()
    assert proxy.faults() == {"down": True}
    assert closed_by_peer(live)
    live.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=TIMEOUT)
    proxy.up()
    assert proxy.port == port
    with connect(proxy) as s:
        s.sendall(b"back")
        assert recv_exactly(s, 4) == b"back"


def test_latency_delays_each_direction(proxy):
    with connect(proxy) as s:
        proxy.latency(150)
        assert proxy.faults() == {"latency": (150.0, 0.0)}
        started = time.monotonic()
        s.sendall(b"ping")
        assert recv_exactly(s, 4) == b"ping"
        assert time.monotonic() - started >= 0.3  # 150 ms up, 150 ms down: it cannot be faster
        proxy.clear()
        s.sendall(b"pong")
        assert recv_exactly(s, 4) == b"pong"


def test_blackhole_swallows_and_never_answers(proxy, echo):
    proxy.blackhole()
    with connect(proxy) as s:
        s.sendall(b"into the void")
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(1)
        wait_for(lambda: proxy.stats().swallowed_up == 13, TIMEOUT, "the bytes to be swallowed")
        assert bytes(echo.received) == b""
        proxy.clear()  # a connection that lost bytes is closed: its stream is broken
        s.settimeout(TIMEOUT)
        assert closed_by_peer(s)
    with connect(proxy) as s:
        s.sendall(b"ok")
        assert recv_exactly(s, 2) == b"ok"


def test_blackhole_on_a_live_connection_swallows_both_ways(proxy, echo):
    with connect(proxy) as s:
        s.sendall(b"a")
        assert recv_exactly(s, 1) == b"a"
        proxy.blackhole()
        s.sendall(b"bcd")
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(1)
        assert bytes(echo.received) == b"a"


def test_reset_peer_sends_rst_to_the_client(proxy):
    with connect(proxy) as s:
        s.sendall(b"a")
        assert recv_exactly(s, 1) == b"a"
        assert proxy.reset_peer() == 1   # how many live connections it hit
        with pytest.raises(ConnectionResetError):
            s.recv(1)
    assert proxy.stats().resets == 1
    assert proxy.reset_peer() == 0       # nothing live: a caller can see that it hit nothing


def test_bytes_up_since_counts_one_clients_later_connections(proxy):
    with connect(proxy) as s:
        s.sendall(b"first life")
        assert recv_exactly(s, 10) == b"first life"
    before = proxy.stats().connections
    assert proxy.bytes_up_since(before) == 0
    with connect(proxy) as s:
        s.sendall(b"second")
        assert recv_exactly(s, 6) == b"second"
    assert (proxy.bytes_up_since(before), proxy.bytes_up_since(0)) == (6, 16)


def test_down_and_stop_return_at_once_with_live_connections(echo):
    """Python >= 3.12.1's ``Server.wait_closed()`` waits for accepted connections: the proxy must not wait on it
    before it aborts them (down() and stop() used to hang for the control timeout there)."""
    proxy = FaultProxy(echo.server_address).start()
    live = [connect(proxy) for _ in range(3)]
    for s in live:
        s.sendall(b"x")
        assert recv_exactly(s, 1) == b"x"
    started = time.monotonic()
    proxy.down()
    proxy.up()
    again = connect(proxy)
    again.sendall(b"y")
    assert recv_exactly(again, 1) == b"y"
    proxy.stop()
    assert time.monotonic() - started < 2.0
    for s in (*live, again):
        assert closed_by_peer(s)
        s.close()


def test_limit_data_cuts_the_connection_mid_frame(proxy, echo):
    with connect(proxy) as s:
        s.sendall(b"12345")
        assert recv_exactly(s, 5) == b"12345"
        proxy.limit_data(3)
        s.sendall(b"abcdefgh")
        wait_for(lambda: proxy.stats().resets == 1, TIMEOUT, "the cut")
        assert closed_by_peer(s)
    wait_for(lambda: bytes(echo.received) == b"12345abc", TIMEOUT, "the first 3 bytes to reach the server")
    assert proxy.stats().bytes_up == 8


def test_limit_data_applies_to_new_connections_until_cleared(proxy, echo):
    proxy.limit_data(2)
    with connect(proxy) as s:
        s.sendall(b"xyz")
        assert closed_by_peer(s)
    proxy.clear()
    with connect(proxy) as s:
        s.sendall(b"xyz")
        assert recv_exactly(s, 3) == b"xyz"


def test_drop_acks_forwards_upstream_swallows_replies_then_resets(proxy, echo):
    with connect(proxy) as s:
        started = time.monotonic()
        proxy.drop_acks(after_s=0.5)
        s.sendall(b"stored")
        wait_for(lambda: bytes(echo.received) == b"stored", TIMEOUT, "the server to store the bytes")
        assert closed_by_peer(s)  # no echo came back; the proxy cut the connection
        assert time.monotonic() - started >= 0.45  # not before after_s (less the event loop's clock tolerance)
    assert proxy.faults() == {}
    stats = proxy.stats()
    assert (stats.bytes_up, stats.bytes_down, stats.swallowed_down) == (6, 0, 6)
    with connect(proxy) as s:  # the fault ended by itself
        s.sendall(b"again")
        assert recv_exactly(s, 5) == b"again"


def test_slow_close_delays_the_close(proxy, echo):
    echo.close_after_first = True
    proxy.slow_close(300)
    with connect(proxy) as s:
        s.sendall(b"bye")
        assert recv_exactly(s, 3) == b"bye"
        started = time.monotonic()
        assert s.recv(1) == b""
        assert time.monotonic() - started >= 0.25


def test_upstream_down_closes_the_client(echo):
    port = echo.server_address[1]
    echo.shutdown()
    echo.server_close()
    with FaultProxy(("127.0.0.1", port)) as proxy:
        try:
            s = connect(proxy)
        except ConnectionResetError:  # on loopback the RST can beat connect()'s return
            return
        with s:
            assert closed_by_peer(s)

"""The nats-server fixture itself: JetStream on, restart on the same port keeps the stored messages."""

from __future__ import annotations

import asyncio
import socket

import nats
import nats.errors
import pytest

from nats_fixture import NatsServer, nats_server, read_stream  # noqa: F401  (nats_server is a fixture)


def _publish(url: str, subject: str, payloads: list[bytes]) -> None:
    async def go():
        nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
        try:
            js = nc.jetstream()
            await js.add_stream(name="FIXTURE", subjects=["fixture.>"])
            for p in payloads:
                await js.publish(subject, p, headers={"Nats-Msg-Id": p.decode()})
        finally:
            await nc.close()
    asyncio.run(go())


def test_the_server_runs_jetstream_with_sync_always_and_file_store(nats_server):
    text = nats_server.config_file.read_text()
    assert "sync_interval: always" in text
    assert str(nats_server.store_dir) in text
    _publish(nats_server.url, "fixture.a", [b"one", b"two"])
    msgs = read_stream(nats_server.url, "FIXTURE")
    assert [(m.stream_seq, m.subject, m.data, m.headers["Nats-Msg-Id"]) for m in msgs] == [
        (1, "fixture.a", b"one", "one"), (2, "fixture.a", b"two", "two")]
    assert any(nats_server.store_dir.rglob("*.blk")), "messages are stored in files under store_dir"


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_restart_uses_the_same_port_and_keeps_what_was_stored(nats_server, how):
    _publish(nats_server.url, "fixture.a", [b"before"])
    port = nats_server.port
    getattr(nats_server, how)()
    assert not nats_server.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    nats_server.start()
    assert nats_server.port == port
    assert [m.data for m in read_stream(nats_server.url, "FIXTURE")] == [b"before"]


def test_extra_config_is_applied(tmp_path):
    with NatsServer(extra_config='authorization { user: "u", password: "p" }') as server:
        async def anonymous():
            await nats.connect(server.url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            asyncio.run(anonymous())

        async def with_password():
            nc = await nats.connect(server.url, connect_timeout=2, allow_reconnect=False, user="u", password="p")
            connected = nc.is_connected
            await nc.close()
            return connected
        assert asyncio.run(with_password())


def test_pause_hangs_the_server_and_resume_brings_it_back(nats_server):
    _publish(nats_server.url, "fixture.a", [b"one"])
    nats_server.pause()
    try:
        with socket.create_connection(("127.0.0.1", nats_server.port), timeout=1) as s:
            s.settimeout(0.3)
            with pytest.raises(socket.timeout):
                s.recv(1)   # a paused server sends no INFO
    finally:
        nats_server.resume()
    assert [m.data for m in read_stream(nats_server.url, "FIXTURE")] == [b"one"]


def test_stop_ends_a_paused_server(nats_server):
    nats_server.pause()
    nats_server.stop(timeout_s=5)
    assert not nats_server.running

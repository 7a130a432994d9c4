"""The leaf-node setup of docs/bridge/sinks-nats.md §6, with real servers: a store's leaf node (JetStream domain
``store-1``, file storage, ``sync_interval: always``) takes the tills' events and acknowledges them while the hub
is away; the hub (domain ``hub``) sources the store's stream through the leaf link and ends up with every event
once, in order. (Without TLS and creds files: those parts of examples/nats-leaf.conf are parse-checked only.)"""

from __future__ import annotations

import asyncio
import time

import nats
from nats.js.api import ExternalStream, StorageType, StreamConfig, StreamSource

from nats_fixture import NatsServer, _free_port, read_stream, stream_config
from test_sink_nats import events, load_sink


def hub_sources_store(url: str) -> None:
    async def go():
        nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
        try:
            await nc.jetstream().add_stream(StreamConfig(
                name="STORES", storage=StorageType.FILE,
                sources=[StreamSource(name="TILLWIRE", external=ExternalStream(api="$JS.store-1.API"))]))
        finally:
            await nc.close()
    asyncio.run(go())


def wait_link(hub_url: str, timeout: float = 20.0) -> None:
    """Until the hub reaches the store's JetStream through the leaf link (its domain's API answers)."""
    async def go():
        nc = await nats.connect(hub_url, connect_timeout=5, allow_reconnect=False)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    return await nc.jsm(prefix="$JS.store-1.API", timeout=0.5).stream_info("TILLWIRE")
                except Exception:
                    assert time.monotonic() < deadline, "the leaf link did not come up"
                    await asyncio.sleep(0.05)
        finally:
            await nc.close()
    return asyncio.run(go())


def count(url: str, stream: str) -> int:
    try:
        return stream_config(url, stream).state.messages
    except Exception:  # not there yet / server restarting
        return 0


def wait_count(url: str, stream: str, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while count(url, stream) < n:
        assert time.monotonic() < deadline, f"{stream} on {url} holds {count(url, stream)} of {n} after {timeout} s"
        time.sleep(0.05)


def test_a_leaf_node_acknowledges_while_the_hub_is_away_and_the_hub_sources_everything_in_order(tmp_path):
    link = _free_port()
    # The hub only retries a failed source every ~30-40 s (seen here), so it sources once the link is up.
    hub = NatsServer(name="hub", jetstream_config="domain: hub", extra_config=f"leafnodes {{ listen: 127.0.0.1:{link} }}")
    leaf = NatsServer(name="store-1-leaf", jetstream_config="domain: store-1",
                      extra_config=f'leafnodes {{ remotes: [ {{ url: "nats-leaf://127.0.0.1:{link}" }} ] }}')
    sink = None
    try:
        leaf.start()                                 # the hub is not there yet: the store goes on alone
        sink = load_sink(tmp_path, f'url = "{leaf.url}"')
        sink.connect(5)
        outcome = sink.send(events(100))
        assert (outcome.done, outcome.retry) == (100, None), "the leaf acknowledges without the hub"
        hub.start()
        assert wait_link(hub.url).state.messages == 100, "the hub sees the store's stream through the link"
        hub_sources_store(hub.url)
        wait_count(hub.url, "STORES", 100)
        assert sink.send(events(50, start=101)).done == 50   # and live, once the link is up
        wait_count(hub.url, "STORES", 150)
        keys = [m.headers["Nats-Msg-Id"] for m in read_stream(hub.url, "STORES")]
        assert keys == [ev.key for ev in events(150)]

        # A till connected to the hub reaches the store's stream through the link: domain names it.
        via_hub = load_sink(tmp_path, f'url = "{hub.url}"\ndomain = "store-1"\ncreate_stream = false')
        try:
            via_hub.connect(5)
            assert via_hub.send(events(10, start=151)).done == 10
        finally:
            via_hub.close()
        assert count(leaf.url, "TILLWIRE") == 160
        wait_count(hub.url, "STORES", 160)
    finally:
        if sink is not None:
            sink.close()
        leaf.cleanup()
        hub.cleanup()

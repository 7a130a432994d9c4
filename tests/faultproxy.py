"""A TCP fault proxy for tests: bridge ⇄ proxy ⇄ broker on loopback, with faults switched on and off by the test.

Written here (no toxiproxy: it is in neither Debian nor usably on PyPI). One ``FaultProxy`` is one listening port
forwarding every accepted connection to ``upstream`` (``host``, ``port``). It runs an asyncio loop in its own
thread; every control below is a plain method, safe to call from any thread, and returns once the proxy's loop
has applied it. The controls are named after toxiproxy's toxics:

==================  ==============================================================================================
``down()``          close the listener (new connections are refused) and abort every live connection; ``up()``
                    listens again on the same port
``latency(ms, j)``  delay every chunk, both ways, by ``ms`` ± ``j`` milliseconds (order kept)
``blackhole()``     accept, and swallow whatever either side sends: nothing is forwarded, nothing answered; on
                    ``clear()`` the connections that saw the blackhole are closed (their streams lost bytes)
``reset_peer()``    send a TCP RST (``SO_LINGER`` 0) to both ends of every live connection, now; returns how many
``limit_data(n)``   from now on, cut each connection after it forwarded ``n`` more bytes client → server: the
                    first ``n`` bytes go through, the rest is lost, both ends are reset (mid-frame)
``drop_acks(s)``    from now on forward client → server but swallow server → client; after ``s`` seconds reset
                    those connections and forward normally again: "the broker stored it, the ack was lost"
``slow_close(ms)``  when one side closes, wait ``ms`` before closing the other
``clear()``         remove every fault (and ``up()``); ``faults()`` lists those in force
==================  ==============================================================================================

``stats()`` gives the counters: connections accepted, live, bytes forwarded each way, bytes swallowed, resets;
``bytes_up_since(n)`` the bytes sent up on the connections accepted after the first ``n``.

    with FaultProxy(("127.0.0.1", broker_port)) as proxy:
        client.connect(("127.0.0.1", proxy.port))
        proxy.drop_acks(after_s=2.0)
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from dataclasses import dataclass

CHUNK = 65536
CONTROL_TIMEOUT_S = 5.0     # a control that the loop has not applied by then is a bug in the proxy
CONNECT_TIMEOUT_S = 3.0     # to the upstream; a client is cut when the upstream does not answer by then
UP, DOWN = "client→server", "server→client"


@dataclass(frozen=True)
class ProxyStats:
    connections: int     # accepted since start
    live: int            # open now
    bytes_up: int        # forwarded client → server
    bytes_down: int      # forwarded server → client
    swallowed_up: int    # received from the client and dropped by a fault
    swallowed_down: int  # received from the server and dropped by a fault
    resets: int          # connections the proxy reset or aborted


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with an RST: SO_LINGER on, timeout 0, then abort."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class _Link:
    """One proxied connection: the client's end, the upstream's end, and the faults that apply to it now."""

    def __init__(self, proxy: "FaultProxy", client: asyncio.StreamWriter, number: int):
        self.proxy = proxy
        self.client = client
        self.number = number         # 1, 2, 3 ... in accept order (ProxyStats.connections counts them)
        self.upstream: asyncio.StreamWriter | None = None
        self.blackholed = False      # saw a blackhole: its streams lost bytes, closed on clear()
        self.drop_down = False       # drop_acks in force on this link
        self.up_budget: int | None = None  # limit_data: bytes still allowed client → server
        self.closed = False
        self.tasks: list[asyncio.Task] = []

    def reset(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy._resets += 1
        _reset(self.client)
        _reset(self.upstream)
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.proxy._links.discard(self)

    async def close_gently(self) -> None:
        if self.closed:
            return
        if self.proxy._slow_close_s:
            await asyncio.sleep(self.proxy._slow_close_s)
        if self.closed:
            return
        self.closed = True
        for w in (self.client, self.upstream):
            if w is not None:
                w.close()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.proxy._links.discard(self)


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1", port: int = 0):
        self.upstream = upstream
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"faultproxy-{upstream[1]}",
                                        daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._accepting = False
        self._links: set[_Link] = set()
        self._connections = self._resets = 0
        self._bytes = {UP: 0, DOWN: 0}
        self._up_by_connection: dict[int, int] = {}   # connection number → bytes forwarded client → server
        self._swallowed = {UP: 0, DOWN: 0}
        self._latency: tuple[float, float] | None = None
        self._blackhole = False
        self._limit: int | None = None
        self._drop_acks_until: float | None = None
        self._drop_timer: asyncio.TimerHandle | None = None
        self._slow_close_s = 0.0
        self._random = random.Random(0)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> "FaultProxy":
        self._thread.start()
        self._call(self._listen)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT_S)
        self._loop.close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def _call(self, fn, *args):
        """Run ``fn(*args)`` (a coroutine function or a plain one) on the proxy's loop and wait for it."""
        async def run():
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(CONTROL_TIMEOUT_S)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._accepting = True
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    def _unlisten(self) -> None:
        """Close the listening socket (``Server.close()`` does that at once, on every Python version).

        Never ``await Server.wait_closed()`` here: since Python 3.12.1 it waits until every *accepted* connection is
        closed too, and those are aborted by our caller only after this returns (a control would hang for its
        whole timeout). A connection accepted just before the close is reset by ``_accept`` itself."""
        self._accepting = False
        if self._server is not None:
            self._server.close()
            self._server = None

    def _reset_all(self) -> int:
        links = list(self._links)
        for link in links:
            link.reset()
        return len(links)

    async def _shutdown(self) -> None:
        self._unlisten()
        self._reset_all()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ controls (any thread)

    def down(self) -> None:
        """Refuse new connections and abort the live ones (the broker's host is gone)."""
        def apply():
            self._unlisten()
            self._reset_all()
        self._call(apply)

    def up(self) -> None:
        """Listen again, on the same port."""
        self._call(self._listen)

    def latency(self, ms: float, jitter_ms: float = 0.0) -> None:
        self._call(self._set, "_latency", (ms / 1000.0, jitter_ms / 1000.0))

    def blackhole(self) -> None:
        def apply():
            self._blackhole = True
            for link in self._links:
                link.blackholed = True
        self._call(apply)

    def reset_peer(self) -> int:
        """RST every live connection now; returns how many there were (0: nothing was hit)."""
        return self._call(self._reset_all)

    def limit_data(self, n: int) -> None:
        def apply():
            self._limit = n
            for link in self._links:
                link.up_budget = n
        self._call(apply)

    def drop_acks(self, after_s: float) -> None:
        def apply():
            self._drop_acks_until = self._loop.time() + after_s
            for link in self._links:
                link.drop_down = True
            if self._drop_timer is not None:
                self._drop_timer.cancel()
            self._drop_timer = self._loop.call_later(after_s, self._end_drop_acks)
        self._call(apply)

    def _end_drop_acks(self) -> None:
        self._drop_acks_until = None
        self._drop_timer = None
        for link in list(self._links):
            if link.drop_down:
                link.reset()

    def slow_close(self, ms: float) -> None:
        self._call(self._set, "_slow_close_s", ms / 1000.0)

    def clear(self) -> None:
        """Remove every fault; connections that lost bytes to a blackhole or dropped acks are reset."""
        async def apply():
            self._latency = None
            self._limit = None
            self._slow_close_s = 0.0
            self._blackhole = False
            if self._drop_timer is not None:
                self._drop_timer.cancel()
                self._drop_timer = None
            self._drop_acks_until = None
            for link in list(self._links):
                link.up_budget = None
                if link.blackholed or link.drop_down:
                    link.reset()
            await self._listen()
        self._call(apply)

    def stats(self) -> ProxyStats:
        def read():
            return ProxyStats(self._connections, len(self._links), self._bytes[UP], self._bytes[DOWN],
                              self._swallowed[UP], self._swallowed[DOWN], self._resets)
        return self._call(read)

    def bytes_up_since(self, connections: int) -> int:
        """Bytes forwarded client → server on the connections accepted after the first ``connections`` (pass an
        earlier ``stats().connections``): what one client sent in one of its lives, whatever came before."""
        def read():
            return sum(n for number, n in self._up_by_connection.items() if number > connections)
        return self._call(read)

    def faults(self) -> dict[str, object]:
        """The faults in force now: ``{"down": True, "drop_acks": True, "latency": (ms, jitter_ms), ...}``."""
        def read():
            active = {"down": self._server is None, "blackhole": self._blackhole,
                      "drop_acks": self._drop_acks_until is not None, "limit_data": self._limit,
                      "latency": self._latency and (self._latency[0] * 1000, self._latency[1] * 1000),
                      "slow_close": self._slow_close_s * 1000 or None}
            return {k: v for k, v in active.items() if v}
        return self._call(read)

    def _set(self, name: str, value) -> None:
        setattr(self, name, value)

    # ------------------------------------------------------------------ the data path (proxy thread)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        link = _Link(self, writer, self._connections)
        self._links.add(link)
        link.tasks.append(asyncio.current_task())
        if not self._accepting:  # accepted just before down()/stop() closed the listener: it goes too
            link.reset()
            return
        link.blackholed = self._blackhole
        link.up_budget = self._limit
        link.drop_down = self._drop_acks_until is not None
        if link.blackholed:  # never reach the upstream: swallow until the client gives up or clear() resets
            await self._swallow(link, reader)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream),
                                                          CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            link.reset()
            return
        if link.closed:  # reset or down() while connecting
            _reset(up_writer)
            return
        link.upstream = up_writer
        link.tasks.append(asyncio.create_task(self._pump(link, up_reader, writer, DOWN)))
        await self._pump(link, reader, up_writer, UP)

    async def _swallow(self, link: _Link, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(CHUNK):
                self._swallowed[UP] += len(data)
        except (OSError, asyncio.CancelledError):
            pass
        await link.close_gently()

    async def _pump(self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: str) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if self._latency is not None:
                    base, jitter = self._latency
                    await asyncio.sleep(max(0.0, base + self._random.uniform(-jitter, jitter)))
                if link.closed:
                    return
                if link.blackholed or (direction == DOWN and link.drop_down):
                    self._swallowed[direction] += len(data)
                    continue
                if direction == UP and link.up_budget is not None:
                    if len(data) >= link.up_budget:
                        passed = data[:link.up_budget]
                        self._swallowed[UP] += len(data) - len(passed)
                        if passed:
                            writer.write(passed)
                            self._bytes[UP] += len(passed)
                            self._up_by_connection[link.number] = (self._up_by_connection.get(link.number, 0)
                                                                   + len(passed))
                            await asyncio.wait_for(writer.drain(), CONNECT_TIMEOUT_S)
                        link.reset()
                        return
                    link.up_budget -= len(data)
                writer.write(data)
                self._bytes[direction] += len(data)
                if direction == UP:
                    self._up_by_connection[link.number] = self._up_by_connection.get(link.number, 0) + len(data)
                await writer.drain()
        except asyncio.CancelledError:
            return
        except (OSError, asyncio.TimeoutError):
            link.reset()
            return
        await link.close_gently()

"""What a transport hands the pipeline: chunks of bytes and device status, through a sink that never blocks.

A transport thread calls ``sink.chunk(t_ns, device, direction, data)`` with the bytes exactly as the OS returned
them and ``sink.status(t_ns, device, state, **detail)`` when its device comes or goes. Both return at once and
never raise: a tap forwards the till's bytes *before* it hands a copy to the sink, and nothing the pipeline does
(decoding, the outbox, the disk) can slow the tap down. When the pipeline falls behind, the queue drops the
newest chunks past its byte bound and counts them per device; the pipeline reports the loss loudly.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import NamedTuple, Protocol

TO_DEVICE = "to_device"  # till → device
FROM_DEVICE = "from_device"  # device → till
DIRECTIONS = (TO_DEVICE, FROM_DEVICE)

# device.status states (docs/EVENTS.md): the transport reached its device (or its peer) / lost it.
OPEN = "open"
CLOSED = "closed"


class Chunk(NamedTuple):
    t_ns: int  # wall clock (ns since the epoch) when the transport read the bytes
    device: str
    direction: str
    data: bytes


class Status(NamedTuple):
    t_ns: int
    device: str
    state: str  # OPEN or CLOSED
    detail: dict  # transport (URL without secrets), reason, retry_s, peer … (docs/EVENTS.md device.status)


class CaptureSink(Protocol):
    def chunk(self, t_ns: int, device: str, direction: str, data: bytes) -> None: ...

    def status(self, t_ns: int, device: str, state: str, **detail) -> None: ...


# Room for bursts while the pipeline commits: a till's devices produce KB/s; a replay at full speed or a tap
# benchmark produces tens of MB/s, which the pipeline drains in ms. Past this the newest chunks are dropped
# (counted per device), never the tap's forwarding.
DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024


class CaptureQueue:
    """The bounded hand-over between transport threads (producers) and the pipeline thread (the consumer).

    ``chunk``/``status`` never block and never raise. Status records are never dropped (they are few).
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_QUEUED_BYTES):
        self.max_bytes = max_bytes
        self._items: deque[Chunk | Status] = deque()
        self._bytes = 0
        self._cond = threading.Condition(threading.Lock())
        self.dropped: dict[str, list[int]] = {}  # device -> [chunks, bytes] dropped since the last take_dropped()

    # ---------------------------------------------------------------- producers (transport threads)

    def chunk(self, t_ns: int, device: str, direction: str, data: bytes) -> None:
        n = len(data)
        if not n:
            return
        with self._cond:
            if self._bytes + n > self.max_bytes:
                d = self.dropped.setdefault(device, [0, 0])
                d[0] += 1
                d[1] += n
                return
            self._items.append(Chunk(t_ns, device, direction, bytes(data)))
            self._bytes += n
            self._cond.notify()

    def status(self, t_ns: int, device: str, state: str, **detail) -> None:
        with self._cond:
            self._items.append(Status(t_ns, device, state, detail))
            self._cond.notify()

    # ---------------------------------------------------------------- consumer (the pipeline thread)

    def get_batch(self, timeout: float, max_items: int = 4096) -> list[Chunk | Status]:
        """Everything queued (up to ``max_items``), waiting up to ``timeout`` s for the first item."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            out = []
            items = self._items
            while items and len(out) < max_items:
                item = items.popleft()
                if type(item) is Chunk:
                    self._bytes -= len(item.data)
                out.append(item)
            return out

    def take_dropped(self) -> dict[str, tuple[int, int]]:
        with self._cond:
            dropped, self.dropped = self.dropped, {}
        return {dev: (c, b) for dev, (c, b) in dropped.items()}

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


def now_ns() -> int:
    return time.time_ns()

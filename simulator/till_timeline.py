"""A till session's wire timeline under construction: who sent which bytes when.

The story code moves a clock forward (``wait``) and says what each wire carried at that moment (``send``); the
result is the list of chunks ``(t_ns offset, device, direction, bytes)`` sorted by time. Nothing here reads a
clock: times are offsets from the session start, so the same story gives the same chunks on every run.

    tl = Timeline()
    tl.send("scanner", FROM_DEVICE, b"]E04006381333931\\r\\n")
    tl.wait(ms=80)
    tl.send("display", TO_DEVICE, update)
"""

from __future__ import annotations

from collections.abc import Iterable

TO_DEVICE = "to_device"      # till -> device
FROM_DEVICE = "from_device"  # device -> till

MS = 1_000_000
SECOND = 1000 * MS

Chunk = tuple[int, str, str, bytes]


class Timeline:
    """Chunks at offsets from the session start. ``now`` only moves forward, so chunks are sent in time order;
    two chunks at the same instant keep the order they were sent in."""

    def __init__(self) -> None:
        self.now = 0
        self._chunks: list[Chunk] = []

    def wait(self, ms: float = 0, s: float = 0) -> int:
        step = round(ms * MS + s * SECOND)
        if step < 0:
            raise ValueError(f"a timeline only moves forward, not by {step} ns")
        self.now += step
        return self.now

    def send(self, device: str, direction: str, data: bytes) -> None:
        """One read as the bridge would see it: ``data`` arrived on ``device``'s wire at ``now``."""
        if direction not in (TO_DEVICE, FROM_DEVICE):
            raise ValueError(f"direction must be {TO_DEVICE} or {FROM_DEVICE}, not {direction!r}")
        if not data:
            raise ValueError("a chunk holds at least one byte")
        self._chunks.append((self.now, device, direction, bytes(data)))

    def send_pieces(self, device: str, direction: str, pieces: Iterable[bytes], gap_ms: float) -> None:
        """Several reads of one write, ``gap_ms`` apart (a TCP segment boundary, a serial FIFO draining)."""
        for k, piece in enumerate(pieces):
            if k:
                self.wait(ms=gap_ms)
            self.send(device, direction, piece)

    @property
    def chunks(self) -> list[Chunk]:
        return list(self._chunks)


def split_at(data: bytes, *cuts: int) -> list[bytes]:
    """``data`` cut at the given offsets (each inside the data, increasing): the pieces, none empty."""
    bounds = [0, *cuts, len(data)]
    if any(not 0 < c < len(data) for c in cuts) or bounds != sorted(set(bounds)):
        raise ValueError(f"cuts {cuts} do not split {len(data)} bytes into non-empty pieces")
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]

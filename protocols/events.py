"""The event envelope (EVENTS.md): ``src``, ``seq``, ``ts``, ``type``, ``data`` around a decoder's event body.

Decoders emit bodies ``{"type", "data"}``; whoever knows where the bytes came from (the bridge, or the CLI for a
file) wraps them here. ``(src, seq)`` is the idempotency key everywhere downstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgpack

_packer = msgpack.Packer(use_bin_type=True)


def envelope(src: str, seq: int, ts: int, body: dict) -> dict:
    return {"src": src, "seq": seq, "ts": ts, "type": body["type"], "data": body["data"]}


def iter_bodies(blob: bytes) -> Iterator[dict]:
    """Unpack the concatenated msgpack event bodies a decoder returned."""
    if not blob:
        return
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(blob)
    yield from unpacker


class Sequencer:
    """Numbers events of one source from ``start`` on (the bridge persists ``next_seq``; files start at 1)."""

    __slots__ = ("src", "next_seq")

    def __init__(self, src: str, start: int = 1):
        self.src = src
        self.next_seq = start

    def wrap(self, bodies: Iterable[dict], ts: int) -> list[dict]:
        out = []
        for body in bodies:
            out.append(envelope(self.src, self.next_seq, ts, body))
            self.next_seq += 1
        return out


def pack(event: dict) -> bytes:
    return _packer.pack(event)


def to_json_view(value: Any) -> Any:
    """The JSON-lines view of an event: the same map with bytes as lowercase hex strings."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): to_json_view(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_view(v) for v in value]
    return value

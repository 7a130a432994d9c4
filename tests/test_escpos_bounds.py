"""Inputs from the wire are bounded: memory does not grow with stream length, whatever the bytes.

The per-command bounds (line, barcode, 2D code, image) have golden vectors; this file checks the whole-decoder
property: a long stream of garbage and of realistic receipts leaves resident memory flat, and the decoder's
held-back state stays within its declared bounds.
"""

from __future__ import annotations

import os
import random

import pytest

from protocols import Decoder

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def adversarial_chunks(rng: random.Random, count: int, size: int):
    """Random bytes, with the command prefixes that open payloads made frequent, so long payloads, NUL scans,
    pending Kanji lead bytes and half-headers at chunk ends all happen often."""
    prefixes = [b"\x1dv0\x00", b"\x1d(k", b"\x1d(L", b"\x1d8L", b"\x1b*\x21", b"\x1dk\x04", b"\x1c&", b"\x1bD",
                b"\x1c\x71\x02", b"\x1b&\x03\x20\x7e", b"\x1b=\x00"]
    for _ in range(count):
        buf = bytearray(rng.randbytes(size))
        for _ in range(size // 64):
            pos = rng.randrange(size)
            p = rng.choice(prefixes)
            buf[pos:pos + len(p)] = p
        yield bytes(buf[:size])


@pytest.mark.parametrize("direction", ["to_device", "from_device"])
def test_memory_stays_flat_on_garbage(backend, direction):
    rng = random.Random(1234)
    # native decodes ~100x faster, so it gets a much longer stream in the same time
    total_chunks = 2048 if backend == "native" else 48
    dec = Decoder("escpos", direction=direction, images=True)
    chunks = adversarial_chunks(rng, total_chunks, 16384)
    for _ in range(total_chunks // 4):            # warm up: buffers reach their working size
        dec.feed(next(chunks))
    before = rss_bytes()
    for chunk in chunks:
        dec.feed(chunk)
    growth = rss_bytes() - before
    dec.close()
    # bounded state is at most a few MiB (a 4 MiB image buffer when images=True); stream length adds nothing
    assert growth < 12 * (1 << 20), f"RSS grew by {growth / 2**20:.1f} MiB over {total_chunks * 16} KiB of input"


def test_memory_stays_flat_on_realistic_receipts(backend):
    from simulator.receipts import corpus

    blob = corpus(1 << 20 if backend == "native" else 1 << 18, seed=5)
    dec = Decoder("escpos")
    for _ in range(3):
        dec.feed(blob)
    before = rss_bytes()
    rounds = 40 if backend == "native" else 4
    for _ in range(rounds):
        dec.feed(blob)
    growth = rss_bytes() - before
    assert growth < 8 * (1 << 20), f"RSS grew by {growth / 2**20:.1f} MiB"


def test_held_back_header_is_bounded_for_any_chunking():
    """Only a command header is held back between feeds (reference backend: inspect its state directly)."""
    rng = random.Random(99)
    dec = Decoder("escpos", backend="reference")
    impl = dec._impl
    longest = 0
    for chunk in adversarial_chunks(rng, 64, 4096):
        for piece in (chunk[:1], chunk[1:2000], chunk[2000:]):
            dec.feed(piece)
            longest = max(longest, len(impl._hold))
    # the longest header: GS 8 L (7 bytes) + the graphics layout (10) or an ESC ( A with 32 parameter bytes
    assert longest <= 5 + 32

"""Magnetic stripe reader throughput on a realistic keyboard-wedge stream (docs/protocols/msr.md): swipes of
payment cards with tracks 1 and 2 (random PANs of 15 to 19 digits, names, discretionary data), some with a track
3, some with the reader's %E? for an unreadable track 1, each track followed by CR, 1 MiB, native vs reference, fed
whole and in 4 KiB chunks. Target (issue): >= 200 MB/s native and >= 30x the reference."""

from __future__ import annotations

import random

import pytest

from protocols import Decoder
from protocols.events import iter_bodies
from feeding import chunked, whole

MiB = 1 << 20
NAMES = ["DOE/JOHN", "MUSTERMANN/ERIKA MS", "SMITH/J.", "LOPEZ GARCIA/MARIA", "O CONNOR/SEAN MR"]


def swipe(rng: random.Random) -> bytes:
    pan = f"{rng.choice([4, 5, 37, 6011])}" + "".join(str(rng.randrange(10)) for _ in range(20))
    pan = pan[:rng.choice([15, 16, 16, 16, 19])]
    exp = f"{rng.randrange(26, 31):02d}{rng.randrange(1, 13):02d}"
    disc1 = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(8, 24)))
    disc2 = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(4, 13)))
    kind = rng.randrange(20)
    t1 = "%E?" if kind == 0 else f"%B{pan}^{rng.choice(NAMES)}^{exp}101{disc1}?"
    out = t1 + "\r" + f";{pan}={exp}101{disc2}?" + "\r"
    if kind == 1:
        out += ";01" + "".join(str(rng.randrange(10)) for _ in range(80)) + "?\r"
    return out.encode()


def make_corpus() -> bytes:
    rng = random.Random(7)
    parts, size = [], 0
    while size < MiB:
        s = swipe(rng)
        parts.append(s)
        size += len(s)
    return b"".join(parts)


@pytest.fixture(scope="module")
def corpus():
    data = make_corpus()
    dec = Decoder("msr", backend="reference")
    events = sum(1 for _ in iter_bodies(dec.feed(data) + dec.close()))
    return data, events


def _whole(backend: str, data: bytes):
    return whole(data, "msr", backend=backend)


def _chunked(backend: str, data: bytes):
    return chunked(data, "msr", backend=backend)


def test_msr_native_1mib(measure, corpus, results):
    data, events = corpus
    measure("msr wedge swipes native, 1 MiB feed", _whole("native", data), len(data), events, rounds=15)
    results.ratios.append(("msr native / reference", "msr wedge swipes native, 1 MiB feed",
                           "msr wedge swipes reference, 1 MiB feed", ">= 30x; >= 200 MB/s native"))
    results.ratios.append(("msr 4 KiB chunks / 1 MiB feed", "msr wedge swipes native, 4 KiB chunks",
                           "msr wedge swipes native, 1 MiB feed", "close to 1"))


def test_msr_native_4kib_chunks(measure, corpus):
    data, events = corpus
    measure("msr wedge swipes native, 4 KiB chunks", _chunked("native", data), len(data), events, rounds=15)


def test_msr_reference_1mib(measure, corpus):
    data, events = corpus
    measure("msr wedge swipes reference, 1 MiB feed", _whole("reference", data), len(data), events, rounds=3)


def test_backends_agree_on_the_swipes(corpus):
    data, events = corpus
    out = _whole("native", data)()
    assert out == _whole("reference", data)()
    assert b"".join(_chunked("native", data)()) == out
    assert b"msr_bad_track" in out and b"msr.swipe" in out

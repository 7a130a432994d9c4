"""Scale throughput on realistic captures (docs/protocols/scale.md), 1 MiB each, native vs reference, fed whole and
in 4 KiB chunks: a polled NCI scale's replies (weights rising and settling in kg and lb, motion, zero, net with a
third status byte, the odd status-only reply) and a Magellan scanner-scale line (UPC-A, EAN-13, UPC-E, GS1 DataBar
labels between S144 weights and S141/S143 statuses). Target (issue, for the mixed peripheral corpus): >= 200 MB/s
native and >= 30x the reference."""

from __future__ import annotations

import random

import pytest

from protocols import Decoder
from protocols.events import iter_bodies
from feeding import chunked, whole
from simulator.gs1 import with_check_digit

MiB = 1 << 20


def nci_reply(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    unit = rng.choice([b"KG", b"LB", b"kg"])
    if kind == 0:
        return b"\n00\r\x03"
    if kind == 1:
        return b"\n" + b"0000.00" + unit + b"\r\n20\r\x03"
    motion = kind < 5
    weight = f"{rng.randrange(0, 3000):04d}.{rng.randrange(100):02d}".encode()
    status = (b"10" if motion else b"00") + (b"p4" if kind == 9 else b"")
    if kind == 9:
        status = status[:1] + b"p4"
    return b"\n" + weight + unit + b"\r\n" + status + b"\r\x03"


def magellan_line(rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    if kind < 4:
        return b"S08A" + with_check_digit(f"0{rng.randrange(10**10):010d}").encode() + b"\r"
    if kind < 6:
        return b"S08F" + with_check_digit(f"{rng.choice([400, 500, 760])}{rng.randrange(10**9):09d}").encode() + b"\r"
    if kind == 6:
        return b"S08E04252614\r"
    if kind == 7:
        return b"S08R01" + with_check_digit(f"0{rng.randrange(10**12):012d}").encode() + b"\r"
    if kind < 10:
        return f"S144{rng.randrange(10, 2000):04d}\r".encode()
    return rng.choice([b"S141\r", b"S143\r"])


def make_corpus(maker, seed: int) -> bytes:
    rng = random.Random(seed)
    parts, size = [], 0
    while size < MiB:
        m = maker(rng)
        parts.append(m)
        size += len(m)
    return b"".join(parts)


CORPORA = {"nci": ("scale-nci", nci_reply, 5), "magellan": ("magellan", magellan_line, 7)}


@pytest.fixture(scope="module")
def corpora():
    out = {}
    for key, (protocol, maker, seed) in CORPORA.items():
        data = make_corpus(maker, seed)
        dec = Decoder(protocol, "from_device", backend="reference")
        out[key] = (protocol, data, sum(1 for _ in iter_bodies(dec.feed(data) + dec.close())))
    return out


def _whole(protocol: str, backend: str, data: bytes):
    return whole(data, protocol, "from_device", backend=backend)


def _chunked(protocol: str, backend: str, data: bytes):
    return chunked(data, protocol, "from_device", backend=backend)


@pytest.mark.parametrize("key", sorted(CORPORA))
def test_scale_native_1mib(measure, corpora, results, key):
    protocol, data, events = corpora[key]
    measure(f"{key} scale native, 1 MiB feed", _whole(protocol, "native", data), len(data), events, rounds=15)
    results.ratios.append((f"{key} native / reference", f"{key} scale native, 1 MiB feed",
                           f"{key} scale reference, 1 MiB feed", ">= 30x; >= 200 MB/s native"))
    results.ratios.append((f"{key} 4 KiB chunks / 1 MiB feed", f"{key} scale native, 4 KiB chunks",
                           f"{key} scale native, 1 MiB feed", "close to 1"))


@pytest.mark.parametrize("key", sorted(CORPORA))
def test_scale_native_4kib_chunks(measure, corpora, key):
    protocol, data, events = corpora[key]
    measure(f"{key} scale native, 4 KiB chunks", _chunked(protocol, "native", data), len(data), events, rounds=15)


@pytest.mark.parametrize("key", sorted(CORPORA))
def test_scale_reference_1mib(measure, corpora, key):
    protocol, data, events = corpora[key]
    measure(f"{key} scale reference, 1 MiB feed", _whole(protocol, "reference", data), len(data), events, rounds=3)


@pytest.mark.parametrize("key", sorted(CORPORA))
def test_backends_agree_on_the_corpus(corpora, key):
    protocol, data, _ = corpora[key]
    out = _whole(protocol, "native", data)()
    assert out == _whole(protocol, "reference", data)()
    assert b"".join(_chunked(protocol, "native", data)()) == out
    assert b"protocol.error" not in out

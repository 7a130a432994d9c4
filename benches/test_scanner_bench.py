"""Barcode scanner throughput on a realistic label stream (docs/protocols/scanner.md): EAN-13, UPC-A, GS1-128 with
several AIs (GTIN, expiry, batch, net weight, price) and QR URLs, each with its AIM identifier and a CR suffix,
1 MiB, native vs reference, fed whole and in 4 KiB chunks. Target (issue, for the mixed peripheral corpus):
>= 200 MB/s native and >= 30x the reference."""

from __future__ import annotations

import random

import pytest

from protocols import Decoder
from protocols.events import iter_bodies
from feeding import chunked, whole
from simulator.gs1 import with_check_digit

MiB = 1 << 20


def label(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    if kind < 4:
        return b"]E0" + with_check_digit(f"{rng.choice([400, 500, 760, 890])}{rng.randrange(10**9):09d}").encode()
    if kind < 6:
        return b"]E0" + with_check_digit(f"0{rng.randrange(10**11):011d}").encode()
    if kind < 9:
        gtin = with_check_digit(f"0{rng.randrange(10**12):012d}")
        batch = f"L{rng.randrange(10**6):06d}"
        return (f"]C101{gtin}17{rng.randrange(24, 30):02d}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
                f"10{batch}\x1d3103{rng.randrange(10**6):06d}3922{rng.randrange(100, 99999)}").encode()
    return f"]Q1https://shop.example.com/p/{rng.randrange(10**8)}?ref=pos&lot={rng.randrange(10**4)}".encode()


def make_corpus() -> bytes:
    rng = random.Random(11)
    parts, size = [], 0
    while size < MiB:
        lab = label(rng) + b"\r"
        parts.append(lab)
        size += len(lab)
    return b"".join(parts)


@pytest.fixture(scope="module")
def corpus():
    data = make_corpus()
    dec = Decoder("scanner", backend="reference")
    events = sum(1 for _ in iter_bodies(dec.feed(data) + dec.close()))
    return data, events


def _whole(backend: str, data: bytes):
    return whole(data, "scanner", backend=backend)


def _chunked(backend: str, data: bytes):
    return chunked(data, "scanner", backend=backend)


def test_scanner_native_1mib(measure, corpus, results):
    data, events = corpus
    measure("scanner labels native, 1 MiB feed", _whole("native", data), len(data), events, rounds=15)
    results.ratios.append(("scanner native / reference", "scanner labels native, 1 MiB feed",
                           "scanner labels reference, 1 MiB feed", ">= 30x; >= 200 MB/s native"))
    results.ratios.append(("scanner 4 KiB chunks / 1 MiB feed", "scanner labels native, 4 KiB chunks",
                           "scanner labels native, 1 MiB feed", "close to 1"))


def test_scanner_native_4kib_chunks(measure, corpus):
    data, events = corpus
    measure("scanner labels native, 4 KiB chunks", _chunked("native", data), len(data), events, rounds=15)


def test_scanner_reference_1mib(measure, corpus):
    data, events = corpus
    measure("scanner labels reference, 1 MiB feed", _whole("reference", data), len(data), events, rounds=3)


def test_backends_agree_on_the_labels(corpus):
    data, events = corpus
    out = _whole("native", data)()
    assert out == _whole("reference", data)()
    assert b"".join(_chunked("native", data)()) == out
    assert b"protocol.error" not in out

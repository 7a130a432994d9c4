"""ESC/POS decode throughput on a 1 MiB corpus of realistic receipts (python-escpos generated, see
``simulator/receipts.py``): native vs reference, whole buffer vs 4 KiB chunks.

Reference points: the reference backend is the pure-Python twin; targets (issue #2) are native >= 400 MB/s,
native >= 50x reference, and 4 KiB chunks within 20% of a 1 MiB feed.
"""

from __future__ import annotations

import pytest

from protocols import Decoder
from protocols.events import iter_bodies
from feeding import chunked, whole

MiB = 1 << 20
CHUNK = 4096


@pytest.fixture(scope="module")
def corpus() -> bytes:
    from simulator.receipts import corpus as make_corpus

    return make_corpus(MiB, seed=2)[:MiB]


@pytest.fixture(scope="module")
def event_count(corpus) -> int:
    dec = Decoder("escpos", backend="reference")
    return sum(1 for _ in iter_bodies(dec.feed(corpus) + dec.close()))


def _whole(backend: str, data: bytes):
    return whole(data, "escpos", backend=backend)


def _chunked(backend: str, data: bytes, size: int):
    return chunked(data, "escpos", backend=backend, size=size)


def test_escpos_native_1mib(measure, corpus, event_count, results):
    measure("escpos native, 1 MiB feed", _whole("native", corpus), len(corpus), event_count, rounds=15)
    results.ratios.append(("escpos native / reference", "escpos native, 1 MiB feed",
                           "escpos reference, 1 MiB feed", ">= 50x"))


def test_escpos_native_4k_chunks(measure, corpus, event_count, results):
    measure("escpos native, 4 KiB chunks", _chunked("native", corpus, CHUNK), len(corpus), event_count, rounds=15)
    results.ratios.append(("escpos native 4 KiB / 1 MiB", "escpos native, 4 KiB chunks",
                           "escpos native, 1 MiB feed", ">= 0.80x"))


def test_escpos_reference_1mib(measure, corpus, event_count):
    measure("escpos reference, 1 MiB feed", _whole("reference", corpus), len(corpus), event_count, rounds=3)


def test_backends_agree_on_corpus(corpus):
    """Not a timing: the corpus the figures are measured on decodes identically on both backends."""
    assert _whole("native", corpus)() == _whole("reference", corpus)()

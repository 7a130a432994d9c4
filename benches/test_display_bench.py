"""Customer display throughput on a realistic 1 MiB stream (``simulator/displays.py``): per customer a welcome
message scrolling in, item lines with prices and the running subtotal, the total, cash and change, in the Epson
DM-D (CLR + rows + US $) and CD5220 (ESC Q A / ESC Q B string mode) command sets; native vs reference, fed whole
and in 4 KiB chunks. Target (issue 4): >= 200 MB/s native and >= 30x the reference."""

from __future__ import annotations

import pytest

from protocols import Decoder
from protocols.events import iter_bodies
from feeding import chunked, whole

MiB = 1 << 20


@pytest.fixture(scope="module", params=["epson", "cd5220"])
def corpus(request):
    from simulator.displays import corpus as make_corpus

    dialect = request.param
    data = make_corpus(MiB, dialect)  # whole baskets: a little over 1 MiB, no command cut at the end
    dec = Decoder(f"display-{dialect}", backend="reference")
    events = sum(1 for _ in iter_bodies(dec.feed(data) + dec.close()))
    return dialect, data, events


def _whole(protocol: str, backend: str, data: bytes):
    return whole(data, protocol, backend=backend)


def _chunked(protocol: str, backend: str, data: bytes):
    return chunked(data, protocol, backend=backend)


def test_display_native_1mib(measure, corpus, results):
    dialect, data, events = corpus
    name = f"display-{dialect} native, 1 MiB feed"
    measure(name, _whole(f"display-{dialect}", "native", data), len(data), events, rounds=15)
    results.ratios.append((f"display-{dialect} native / reference", name,
                           f"display-{dialect} reference, 1 MiB feed", ">= 30x; >= 200 MB/s native"))
    results.ratios.append((f"display-{dialect} 4 KiB chunks / 1 MiB feed", f"display-{dialect} native, 4 KiB chunks",
                           name, "close to 1"))


def test_display_native_4kib_chunks(measure, corpus):
    dialect, data, events = corpus
    measure(f"display-{dialect} native, 4 KiB chunks", _chunked(f"display-{dialect}", "native", data), len(data),
            events, rounds=15)


def test_display_reference_1mib(measure, corpus):
    dialect, data, events = corpus
    measure(f"display-{dialect} reference, 1 MiB feed", _whole(f"display-{dialect}", "reference", data), len(data),
            events, rounds=3)


def test_backends_agree_on_the_corpus(corpus):
    dialect, data, events = corpus
    out = _whole(f"display-{dialect}", "native", data)()
    assert out == _whole(f"display-{dialect}", "reference", data)()
    assert b"".join(_chunked(f"display-{dialect}", "native", data)()) == out
    assert b"protocol.error" not in out and events > 10_000

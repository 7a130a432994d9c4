"""The peripherals issue's target, stated for a mixed corpus: a till's scanner, scale and customer display traffic
decoded together, >= 200 MB/s native and >= 30x the reference. Each device's stream goes to its own decoder, as
in the bridge; the figure is all bytes over all the time. The corpora are the per-device benchmarks' own (about
1/3 MiB each): scanner labels with AIM ids, polled NCI scale replies and a Magellan scanner-scale line, Epson
display baskets."""

from __future__ import annotations

import pytest

from protocols import Decoder
from protocols.events import iter_bodies

THIRD = 350_000


@pytest.fixture(scope="module")
def streams():
    from simulator.displays import corpus as display_corpus
    from test_scale_bench import magellan_line, make_corpus as scale_corpus, nci_reply
    from test_scanner_bench import make_corpus as scanner_corpus

    def cut(data: bytes, end: bytes) -> bytes:
        k = data.find(end, THIRD)
        return data[:k + len(end)] if k >= 0 else data

    out = [
        ("scanner", "to_device", cut(scanner_corpus(), b"\r")),
        ("scale-nci", "from_device", cut(scale_corpus(nci_reply, 5), b"\x03")),
        ("magellan", "from_device", cut(scale_corpus(magellan_line, 7), b"\r")),
        ("display-epson", "to_device", display_corpus(THIRD, "epson")),
    ]
    events = 0
    for protocol, direction, data in out:
        dec = Decoder(protocol, direction, backend="reference")
        events += sum(1 for _ in iter_bodies(dec.feed(data) + dec.close()))
    return out, sum(len(d) for _, _, d in out), events


def _run(backend: str, streams):
    def run():
        return [Decoder(p, d, backend=backend).feed(data) for p, d, data in streams]

    return run


def test_peripherals_mixed_native(measure, streams, results):
    parts, nbytes, events = streams
    measure("peripherals mixed native", _run("native", parts), nbytes, events, rounds=15)
    results.ratios.append(("peripherals mixed native / reference", "peripherals mixed native",
                           "peripherals mixed reference", ">= 30x; >= 200 MB/s native"))


def test_peripherals_mixed_reference(measure, streams):
    parts, nbytes, events = streams
    measure("peripherals mixed reference", _run("reference", parts), nbytes, events, rounds=3)


def test_backends_agree_on_the_mixed_corpus(streams):
    for protocol, direction, data in streams[0]:
        a = Decoder(protocol, direction, backend="native")
        b = Decoder(protocol, direction, backend="reference")
        assert a.feed(data) + a.close() == b.feed(data) + b.close(), protocol

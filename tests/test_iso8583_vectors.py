"""Golden vectors for ISO 8583 (tests/vectors/iso8583/*.md) and the length framer (tests/vectors/lenframe/*.md),
same format as the ESC/POS vectors. Each is fed whole, byte by byte, cut at every single point and at sampled
pairs of points, on the backend TILLWIRE_BACKEND selects; every way must give the same msgpack bytes. A spec
option ending in ``.json`` is a file next to the vectors."""

from __future__ import annotations

import glob
import os
import random

import pytest

from protocols.decoder import unpack_events
from protocols.iso8583.tables import ERRORS
from streams import decode_split
from test_escpos_vectors import _show, parse_file  # tests/test_escpos_vectors.py: the format
from typed_equality import same

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "vectors")


def cases():
    out = []
    for protocol in ("iso8583", "lenframe"):
        for path in sorted(glob.glob(os.path.join(VECTORS, protocol, "*.md"))):
            for case in parse_file(path):
                for event in case.expected:
                    if event["type"] == "protocol.error":
                        event["data"]["reason"] = ERRORS[event["data"]["code"]]
                spec = case.options.get("spec")
                if isinstance(spec, str) and spec.endswith(".json"):
                    case.options["spec"] = os.path.join(VECTORS, protocol, spec)
                out.append((protocol, case))
    return out


CASES = cases()


def run(protocol: str, options: dict, data: bytes, cuts: list[int]) -> bytes:
    return decode_split(protocol, data, cuts, **options)


def plans(n: int) -> list[list[int]]:
    rng = random.Random(n)
    out = [list(range(1, n))] + [[i] for i in range(1, n)]
    out += [sorted(rng.sample(range(n + 1), 2)) for _ in range(min(100, n * n))]
    return out


@pytest.mark.parametrize(("protocol", "case"), CASES, ids=[f"{p}/{c.id}" for p, c in CASES])
def test_vector(protocol, case):
    whole = run(protocol, case.options, case.data, [])
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}")
    for cuts in plans(len(case.data)):
        assert run(protocol, case.options, case.data, cuts) == whole, (case.title, cuts)


def test_every_error_code_has_a_vector():
    codes = {e["data"]["code"] for _, c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) - codes == set()


def test_vectors_cover_every_framing():
    framings = {c.options.get("framing", "len2" if p == "iso8583" else "len4") for p, c in CASES}
    assert framings >= {"len2", "len4", "ascii4", "hex4", "bcd2", "vmlh", "none"}

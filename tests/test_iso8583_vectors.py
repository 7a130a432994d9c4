"""Golden vectors for ISO 8583 (tests/vectors/iso8583/*.md) and the length framer (tests/vectors/lenframe/*.md),
same format as the ESC/POS vectors. Each is fed whole, byte by byte, cut at every single point and at sampled
pairs of points, on the backend TILLWIRE_BACKEND selects; every way must give the same msgpack bytes. A spec
option ending in ``.json`` is a file next to the vectors."""

from __future__ import annotations

import os
import random

import pytest

from protocols.iso8583.tables import ERRORS
from vector_cases import VECTORS, check_vector, load_cases


def cases():
    out = []
    for case in load_cases(["iso8583", "lenframe"], ERRORS, lambda path: os.path.basename(os.path.dirname(path))):
        spec = case.options.get("spec")
        if isinstance(spec, str) and spec.endswith(".json"):  # a spec file next to the vectors
            case.options["spec"] = os.path.join(VECTORS, case.protocol, spec)
        out.append((case.protocol, case))
    return out


CASES = cases()


def plans(n: int) -> list[list[int]]:
    rng = random.Random(n)
    out = [list(range(1, n))] + [[i] for i in range(1, n)]
    out += [sorted(rng.sample(range(n + 1), 2)) for _ in range(min(100, n * n))]
    return out


@pytest.mark.parametrize(("protocol", "case"), CASES, ids=[f"{p}/{c.id}" for p, c in CASES])
def test_vector(protocol, case):
    check_vector(case, plans)


def test_every_error_code_has_a_vector():
    codes = {e["data"]["code"] for _, c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) - codes == set()


def test_vectors_cover_every_framing():
    framings = {c.options.get("framing", "len2" if p == "iso8583" else "len4") for p, c in CASES}
    assert framings >= {"len2", "len4", "ascii4", "hex4", "bcd2", "vmlh", "none"}

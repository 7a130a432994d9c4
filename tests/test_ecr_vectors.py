"""Golden vectors for the generic ECR link decoder (tests/vectors/ecr/*.md, the ESC/POS vector format): each fed
whole, byte by byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects. A file may give
default options on an ``options:`` line before its first case; a case's own ``options:`` line replaces them."""

from __future__ import annotations


import pytest

from protocols.ecr.tables import ERRORS
from vector_cases import check_vector, load_cases


def ecr_cases():
    return load_cases(["ecr"], ERRORS, lambda path: "ecr")


CASES = ecr_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    check_vector(case)


def test_every_ecr_error_and_event_has_a_vector():
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) <= codes
    types = {e["type"] for c in CASES for e in c.expected}
    assert {"link.ack", "link.nak", "link.enq", "link.eot", "link.checksum_error", "ecr.frame", "payment.request",
            "payment.result"} <= types
    presets = {c.options.get("preset") for c in CASES}
    assert {"concert", "transbank", "nexi", "pax", None} <= presets


def test_transbank_worked_example_is_byte_exact():
    """transbankdevelopers.cl: STX 0200|123| ETX -> LRC 0x31."""
    from protocols.ecr import tables as T

    assert T.frame(T.resolve({"preset": "transbank"}), b"0200|123|") == bytes.fromhex("02303230307c3132337c0331")

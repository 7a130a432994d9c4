"""Golden vectors for the MSR decoder (tests/vectors/msr/*.md, the ESC/POS vector format): each fed whole, byte by
byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects. A file may give default options
on an ``options:`` line before its first case; a case's own ``options:`` line replaces them."""

from __future__ import annotations


import pytest

from protocols.msr.tables import ERRORS
from vector_cases import check_vector, load_cases


def msr_cases():
    return load_cases(["msr"], ERRORS, lambda path: "msr")


CASES = msr_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    check_vector(case)


def test_every_msr_error_has_a_vector():
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) <= codes
    assert {c.options.get("separator", "cr") for c in CASES} >= {"cr", "crlf", "lf", "none"}
    assert any(c.options.get("lrc") == "on" for c in CASES)

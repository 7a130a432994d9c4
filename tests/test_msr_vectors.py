"""Golden vectors for the MSR decoder (tests/vectors/msr/*.md, the ESC/POS vector format): each fed whole, byte by
byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects. A file may give default options
on an ``options:`` line before its first case; a case's own ``options:`` line replaces them."""

from __future__ import annotations

import glob
import os

import pytest

from protocols.decoder import unpack_events
from protocols.msr.tables import ERRORS
from streams import decode_split
from test_ecr_vectors import file_options
from test_escpos_vectors import _show, parse_file, split_plans  # tests/test_escpos_vectors.py: the format
from typed_equality import same

HERE = os.path.dirname(os.path.abspath(__file__))


def msr_cases():
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "vectors", "msr", "*.md"))):
        default = file_options(path)
        for case in parse_file(path):
            if not case.options:
                case.options = dict(default)
            for event in case.expected:  # reasons come from the MSR table
                if event["type"] == "protocol.error":
                    event["data"]["reason"] = ERRORS[event["data"]["code"]]
            cases.append(case)
    return cases


CASES = msr_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    whole = decode_split("msr", case.data, [], **case.options)
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}")
    for cuts in split_plans(len(case.data)):
        assert decode_split("msr", case.data, cuts, **case.options) == whole, (case.title, cuts)


def test_every_msr_error_has_a_vector():
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) <= codes
    assert {c.options.get("separator", "cr") for c in CASES} >= {"cr", "crlf", "lf", "none"}
    assert any(c.options.get("lrc") == "on" for c in CASES)

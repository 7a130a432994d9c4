"""Golden vectors for the customer display decoders (tests/vectors/display/*.md, the ESC/POS vector format): each
fed whole, byte by byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects.
``cd5220*.md`` files run ``display-cd5220``, the others ``display-epson``. Contract: docs/protocols/display.md."""

from __future__ import annotations

import glob
import os

import pytest

from protocols.decoder import unpack_events
from protocols.display.tables import ERRORS
from streams import decode_split
from test_escpos_vectors import _show, parse_file, split_plans  # tests/test_escpos_vectors.py: the format
from typed_equality import same

HERE = os.path.dirname(os.path.abspath(__file__))


def display_cases():
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "vectors", "display", "*.md"))):
        protocol = "display-cd5220" if os.path.basename(path).startswith("cd5220") else "display-epson"
        for case in parse_file(path):
            case.protocol = protocol
            for event in case.expected:  # reasons come from the display table, not the ESC/POS contract
                if event["type"] == "protocol.error":
                    event["data"]["reason"] = ERRORS[event["data"]["code"]]
            cases.append(case)
    return cases


CASES = display_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    whole = decode_split(case.protocol, case.data, [], **case.options)
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}")
    for cuts in split_plans(len(case.data)):
        assert decode_split(case.protocol, case.data, cuts, **case.options) == whole, (case.title, cuts)


def test_every_display_error_event_and_setting_has_a_vector():
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) <= codes
    settings = {e["data"]["setting"] for c in CASES for e in c.expected if e["type"] == "display.control"}
    assert settings == {"mode", "cursor", "brightness", "blink", "reverse", "user_chars"}
    assert {c.protocol for c in CASES} == {"display-epson", "display-cd5220"}

"""Golden vectors for the barcode scanner decoders (tests/vectors/scanner/*.md, the ESC/POS vector format): each fed
whole, byte by byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects. A file may give
default options on an ``options:`` line before its first case; a case's own ``options:`` line replaces them.
``hidpos*.md`` files run ``scanner-hidpos``, the others ``scanner``."""

from __future__ import annotations

import glob
import os

import pytest

from protocols.decoder import unpack_events
from protocols.scanner.tables import ERRORS
from streams import decode_split
from test_ecr_vectors import file_options
from test_escpos_vectors import _show, parse_file, split_plans  # tests/test_escpos_vectors.py: the format
from typed_equality import same

HERE = os.path.dirname(os.path.abspath(__file__))


def scanner_cases():
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "vectors", "scanner", "*.md"))):
        default = file_options(path)
        protocol = "scanner-hidpos" if os.path.basename(path).startswith("hidpos") else "scanner"
        for case in parse_file(path):
            if not case.options:
                case.options = dict(default)
            case.protocol = protocol
            for event in case.expected:  # reasons come from the scanner table, not the ESC/POS contract
                if event["type"] == "protocol.error":
                    event["data"]["reason"] = ERRORS[event["data"]["code"]]
            cases.append(case)
    return cases


CASES = scanner_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    whole = decode_split(case.protocol, case.data, [], **case.options)
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}")
    for cuts in split_plans(len(case.data)):
        assert decode_split(case.protocol, case.data, cuts, **case.options) == whole, (case.title, cuts)


def test_every_scanner_error_and_event_has_a_vector():
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) <= codes
    types = {e["type"] for c in CASES for e in c.expected}
    assert {"scanner.data", "msr.swipe", "protocol.error"} <= types
    suffixes = {c.options.get("suffix", "cr") for c in CASES if c.protocol == "scanner"}
    assert {"cr", "crlf", "lf", "tab", "none"} <= suffixes

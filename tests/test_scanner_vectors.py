"""Golden vectors for the barcode scanner decoders (tests/vectors/scanner/*.md, the ESC/POS vector format): each fed
whole, byte by byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects. A file may give
default options on an ``options:`` line before its first case; a case's own ``options:`` line replaces them.
``hidpos*.md`` files run ``scanner-hidpos``, the others ``scanner``."""

from __future__ import annotations

import os

import pytest

from protocols.scanner.tables import ERRORS
from vector_cases import check_vector, load_cases


def scanner_cases():
    return load_cases(["scanner"], ERRORS, lambda path: "scanner-hidpos"
                      if os.path.basename(path).startswith("hidpos") else "scanner")


CASES = scanner_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    check_vector(case)


def test_every_scanner_error_and_event_has_a_vector():
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) <= codes
    types = {e["type"] for c in CASES for e in c.expected}
    assert {"scanner.data", "msr.swipe", "protocol.error"} <= types
    suffixes = {c.options.get("suffix", "cr") for c in CASES if c.protocol == "scanner"}
    assert {"cr", "crlf", "lf", "tab", "none"} <= suffixes

"""Golden vectors for the scale decoders (tests/vectors/scale/*.md, the ESC/POS vector format with a
``direction:`` line per case): each fed whole, byte by byte and at sampled pairs of cut points, on the backend
TILLWIRE_BACKEND selects. The file name gives the protocol: ``nci`` → scale-nci, ``toledo`` → scale-toledo,
``cas`` → scale-cas, ``magellan`` → magellan. Contract: docs/protocols/scale.md."""

from __future__ import annotations

import os

import pytest

from protocols.scale.tables import ERRORS
from protocols.scanner.tables import ERRORS as SCANNER_ERRORS
from vector_cases import check_vector, load_cases

PROTOCOL = {"nci": "scale-nci", "toledo": "scale-toledo", "cas": "scale-cas", "magellan": "magellan"}


def scale_cases():
    # reasons come from the scale table, or the scanner's for Magellan labels
    return load_cases(["scale"], {**SCANNER_ERRORS, **ERRORS}, lambda path: PROTOCOL[os.path.basename(path)[:-3]])


CASES = scale_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    check_vector(case)


def test_every_scale_error_and_event_has_a_vector():
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) <= codes
    types = {e["type"] for c in CASES for e in c.expected}
    assert {"scale.weight", "scale.status", "scale.request", "link.nak", "scanner.data", "protocol.error"} <= types
    for protocol in PROTOCOL.values():
        for direction in ("to_device", "from_device"):
            assert any(c.protocol == protocol and c.direction == direction for c in CASES), (protocol, direction)
    units = {e["data"]["unit"] for c in CASES for e in c.expected if e["type"] == "scale.weight"}
    assert units == {"kg", "g", "lb"}  # oz: in the properties (NCI and CAS take it)

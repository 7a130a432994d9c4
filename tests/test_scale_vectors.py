"""Golden vectors for the scale decoders (tests/vectors/scale/*.md, the ESC/POS vector format with a
``direction:`` line per case): each fed whole, byte by byte and at sampled pairs of cut points, on the backend
TILLWIRE_BACKEND selects. The file name gives the protocol: ``nci`` → scale-nci, ``toledo`` → scale-toledo,
``cas`` → scale-cas, ``magellan`` → magellan. Contract: docs/protocols/scale.md."""

from __future__ import annotations

import glob
import os

import pytest

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.scale.tables import ERRORS
from protocols.scanner.tables import ERRORS as SCANNER_ERRORS
from streams import feed_all, split
from test_ecr_vectors import file_options
from test_escpos_vectors import _show, parse_file, split_plans  # tests/test_escpos_vectors.py: the format
from typed_equality import same

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOL = {"nci": "scale-nci", "toledo": "scale-toledo", "cas": "scale-cas", "magellan": "magellan"}


def scale_cases():
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "vectors", "scale", "*.md"))):
        default = file_options(path)
        protocol = PROTOCOL[os.path.basename(path)[:-3]]
        for case in parse_file(path):
            if not case.options:
                case.options = dict(default)
            case.protocol = protocol
            for event in case.expected:  # reasons come from the scale (or scanner) table
                if event["type"] == "protocol.error":
                    code = event["data"]["code"]
                    event["data"]["reason"] = ERRORS.get(code) or SCANNER_ERRORS[code]
            cases.append(case)
    return cases


CASES = scale_cases()


def _decode(case, cuts) -> bytes:
    return feed_all(Decoder(case.protocol, case.direction, **case.options), split(case.data, cuts))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    whole = _decode(case, [])
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}")
    for cuts in split_plans(len(case.data)):
        assert _decode(case, cuts) == whole, (case.title, cuts)


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

"""Golden vectors for the generic ECR link decoder (tests/vectors/ecr/*.md, the ESC/POS vector format): each fed
whole, byte by byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects. A file may give
default options on an ``options:`` line before its first case; a case's own ``options:`` line replaces them."""

from __future__ import annotations

import glob
import json
import os

import pytest

from protocols.decoder import unpack_events
from protocols.ecr.tables import ERRORS
from streams import decode_split
from test_escpos_vectors import _show, parse_file, split_plans  # tests/test_escpos_vectors.py: the format
from typed_equality import same

HERE = os.path.dirname(os.path.abspath(__file__))


def file_options(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("## "):
                break
            if line.startswith("options:"):
                return json.loads(line.split(":", 1)[1])
    return {}


def ecr_cases():
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "vectors", "ecr", "*.md"))):
        default = file_options(path)
        for case in parse_file(path):
            if not case.options:
                case.options = dict(default)
            for event in case.expected:  # reasons come from the ECR table, not the ESC/POS contract
                if event["type"] == "protocol.error":
                    event["data"]["reason"] = ERRORS[event["data"]["code"]]
            cases.append(case)
    return cases


CASES = ecr_cases()


def run(options: dict, data: bytes, cuts: list[int]) -> bytes:
    return decode_split("ecr", data, cuts, **options)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    whole = run(case.options, case.data, [])
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}")
    for cuts in split_plans(len(case.data)):
        assert run(case.options, case.data, cuts) == whole, (case.title, cuts)


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

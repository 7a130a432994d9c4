"""Golden vectors for the ZVT link layer (tests/vectors/zvt-link/*.md, same format as the ESC/POS vectors): each
fed whole, byte by byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects."""

from __future__ import annotations

import glob
import os

import pytest

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.zvt.tables import ERRORS
from test_escpos_vectors import _show, parse_file, split_plans  # tests/test_escpos_vectors.py: the format
from typed_equality import same

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOL_OF_FILE = {"serial.md": "zvt-serial", "tcp.md": "zvt-tcp"}


def zvt_cases():
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "vectors", "zvt-link", "*.md"))):
        for case in parse_file(path):
            for event in case.expected:  # reasons come from the ZVT table, not the ESC/POS contract
                if event["type"] == "protocol.error":
                    event["data"]["reason"] = ERRORS[event["data"]["code"]]
            cases.append((PROTOCOL_OF_FILE[os.path.basename(path)], case))
    return cases


CASES = zvt_cases()


def run(protocol: str, data: bytes, cuts: list[int]) -> bytes:
    dec = Decoder(protocol)
    out = bytearray()
    prev = 0
    for cut in [*cuts, len(data)]:
        out += dec.feed(data[prev:cut])
        prev = cut
    return bytes(out + dec.close())


@pytest.mark.parametrize(("protocol", "case"), CASES, ids=[c.id for _, c in CASES])
def test_vector(protocol, case):
    whole = run(protocol, case.data, [])
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}")
    for cuts in split_plans(len(case.data)):
        assert run(protocol, case.data, cuts) == whole, (case.title, cuts)


def test_every_zvt_link_error_has_a_vector():
    codes = {e["data"]["code"] for _, c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) - codes <= {"frame_too_long"}  # 65 KiB frames: see test_zvt_link_bounds


def test_crc16_kermit_check_value():
    from protocols.zvt.tables import crc16_kermit

    assert crc16_kermit(b"123456789") == 0x2189


def test_c_and_python_command_tables_name_every_pair_alike():
    """The command table lives in protocols/zvt/tables.py and, for speed, in native/zvt_link.c: every one of the
    65536 (class, instr) pairs must get the same name from both."""
    from protocols.zvt.tables import command_name

    stream = b"".join(bytes([cls, instr, 0]) for cls in range(256) for instr in range(256))
    native, reference = Decoder("zvt-tcp", backend="native"), Decoder("zvt-tcp", backend="reference")
    out = native.feed(stream) + native.close()
    assert out == reference.feed(stream) + reference.close()
    names = [e["data"]["name"] for e in unpack_events(out)]
    assert names == [command_name(cls, instr) for cls in range(256) for instr in range(256)]
    assert names.count("unknown") == 65536 - 256 - 26  # 256 nack pairs (class 84), 26 named commands

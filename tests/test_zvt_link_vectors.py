"""Golden vectors for the ZVT link layer (tests/vectors/zvt-link/*.md) and the APDU layer (tests/vectors/zvt/*.md),
same format as the ESC/POS vectors (an `options:` line passes `strict`): each fed whole, byte by byte and at sampled
pairs of cut points, on the backend TILLWIRE_BACKEND selects."""

from __future__ import annotations

import os

import pytest

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.zvt.tables import ERRORS
from vector_cases import check_vector, load_cases

PROTOCOL_OF_FILE = {"serial.md": "zvt-serial", "tcp.md": "zvt-tcp", "negative.md": "zvt-tcp"}


def zvt_cases():
    cases = load_cases(["zvt-link", "zvt"], ERRORS, lambda path: PROTOCOL_OF_FILE[os.path.basename(path)])
    return [(case.protocol, case) for case in cases]


CASES = zvt_cases()


@pytest.mark.parametrize(("protocol", "case"), CASES, ids=[c.id for _, c in CASES])
def test_vector(protocol, case):
    check_vector(case)


def test_every_zvt_link_error_has_a_vector():
    codes = {e["data"]["code"] for _, c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) - codes <= {"frame_too_long"}  # 65 KiB frames: see test_zvt_link_bounds


def test_apdu_vectors_run_in_both_modes():
    modes = {bool(c.options.get("strict")) for _, c in CASES}
    assert modes == {False, True}


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
    names = [e["data"]["name"] for e in unpack_events(out) if e["type"] == "zvt.apdu"]
    assert names == [command_name(cls, instr) for cls in range(256) for instr in range(256)]
    assert names.count("unknown") == 65536 - 256 - 26  # 256 nack pairs (class 84), 26 named commands


def test_c_and_python_apdu_tables_agree_on_every_tag_and_status():
    """The BMP table, status texts and card-type names live in protocols/zvt/bmps.py and, for speed, in
    native/zvt_apdu.c: every BMP tag (with a fixed, LL and LLL shaped value), every status byte, every card-type id
    and every print-line byte goes through both backends."""
    parts = []
    for tag in range(256):
        for value in (b"\x12\x34\x56\x78\x90\x12\x34\x56", b"\xf0\xf3\x41\x42\x43", b"\xf0\xf0\xf2\x41\x42"):
            data = bytes([0x27, 0x00, tag]) + value
            parts.append(bytes([0x04, 0x0F, len(data)]) + data)
    parts += [bytes([0x04, 0xFF, 1, s]) for s in range(256)]
    parts += [bytes([0x04, 0x0F, 2, 0x8A, t]) for t in range(256)]
    parts.append(bytes([0x06, 0xD1, 0xFF, 0x00, 0x01, 0x00]) + bytes(range(255)))
    stream = b"".join(parts)
    for strict in (False, True):
        native = Decoder("zvt-tcp", backend="native", strict=strict)
        reference = Decoder("zvt-tcp", backend="reference", strict=strict)
        assert native.feed(stream) + native.close() == reference.feed(stream) + reference.close()


def test_strict_option_is_checked():
    with pytest.raises(ValueError):
        Decoder("zvt-serial", strict="maybe")
    with pytest.raises(ValueError):
        Decoder("zvt-tcp", stricter=True)
    assert Decoder("zvt-tcp", strict=True).feed(b"\x80\x00\x00")

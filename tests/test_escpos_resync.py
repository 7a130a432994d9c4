"""Decoding resynchronises: unknown commands, bad parameters and stray control bytes never swallow the text
that follows them (contract section 2). Arbitrary bytes can, legitimately, open a long payload (an image
header announcing megabytes), so the property is stated for the garbage a decoder must step over."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from protocols.card import scrub_text
from protocols.escpos import tables as T

KNOWN = {T.ESC: set(T.ESC_FIXED) | {0x26, 0x28, 0x2A, 0x44, 0x70},
         T.GS: set(T.GS_FIXED) | {0x28, 0x38, 0x44, 0x51, 0x56, 0x67, 0x6B, 0x76},
         T.FS: set(T.FS_FIXED) | {0x28, 0x67},
         T.DLE: {0x04, 0x05, 0x14}}
STRAY_CONTROLS = [b for b in range(0x20) if b not in (0x00, 0x07, 0x09, 0x0A, 0x0C, 0x0D, 0x18) and b not in KNOWN]

unknown_command = st.sampled_from(sorted(KNOWN)).flatmap(
    lambda prefix: st.sampled_from([fn for fn in range(0x20, 0x100) if fn not in KNOWN[prefix]]).map(
        lambda fn: bytes([prefix, fn])))
bad_parameter = st.sampled_from([
    b"\x1b-\x07", b"\x1ba\x09", b"\x1bM\x44", b"\x1bV\x05", b"\x1bt\xfe", b"\x1bR\xfe", b"\x1dV\x07",
    b"\x1dk\x20", b"\x1dr\x09", b"\x1d!\x88", b"\x10\x04\x09", b"\x10\x14\x09", b"\x1dv\x31", b"\x1dQ\x31",
    b"\x1d8\x41", b"\x1dg\x35", b"\x1cg\x33", b"\x1b*\x05", b"\x1bp\x07",
])
stray_control = st.sampled_from(STRAY_CONTROLS).map(lambda b: bytes([b]))
garbage = st.lists(st.one_of(unknown_command, bad_parameter, stray_control), min_size=1, max_size=20).map(b"".join)
text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,-", min_size=1,
               max_size=40)


@given(junk=garbage, line=text)
def test_text_after_unknown_and_bad_commands_is_decoded(junk, line):
    dec = Decoder("escpos")
    events = dec.events(junk + line.encode() + b"\n") + dec.close_events()
    lines = [e["data"]["text"] for e in events if e["type"] == "printer.line"]
    errors = [e for e in events if e["type"] == "protocol.error"]
    assert lines == [scrub_text(line)]  # a 13+ digit run is masked as a card number would be
    assert errors, "garbage must be reported, never ignored silently"
    assert all(0 <= e["data"]["offset"] < len(junk) for e in errors)

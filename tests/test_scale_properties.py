"""Scale decoder properties on the backend TILLWIRE_BACKEND selects: option parsing, weights as exact integers
(never floats), the UnifiedPOS status mapping, bounds (memory and frames), errors without raw bytes, Magellan labels
decoded exactly as the scanner decoder decodes their AIM label, and the C command table against the Python one.
Contract: docs/protocols/scale.md."""

from __future__ import annotations

from decimal import Decimal

import msgpack
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.scale import tables as T


def weights(events):
    return [(e["data"]["value_milli"], e["data"]["unit"]) for e in events if e["type"] == "scale.weight"]


# ------------------------------------------------------------------------------------------------ options

@pytest.mark.parametrize("protocol, opts, word", [
    ("scale-toledo", {"unit": "st"}, "unit"), ("magellan", {"unit": 2}, "unit"), ("scale-nci", {"unit": "kg"}, "unit"),
    ("scale-cas", {"baud": 9600}, "baud"), ("magellan", {"suffix": "cr"}, "suffix"),
])
def test_bad_options_name_the_option(protocol, opts, word):
    with pytest.raises(ValueError, match=word):
        Decoder(protocol, "from_device", **opts)


def test_cli_strings_are_accepted():
    d = Decoder("magellan", "from_device", unit=" KG ")
    assert weights(d.events(b"S14401250\r")) == [(1250, "kg")]
    d = Decoder("scale-toledo", "from_device", unit="kg")
    assert weights(d.events(b"\x0201.500\r")) == [(1500, "kg")]


# ------------------------------------------------------------------------------------ weights (§1), exact

@given(st.integers(0, 999_999_999), st.integers(0, 3), st.booleans(), st.sampled_from(sorted(T.UNITS)))
def test_weights_are_exact_integers(digits, decimals, negative, unit_text):
    text = str(digits).rjust(decimals + 1, "0")
    if decimals:
        text = text[:-decimals] + "." + text[-decimals:]
    expected = int(Decimal(("-" if negative else "") + text) * 1000)
    sign = "-" if negative else "+"
    for protocol, line in (
        ("scale-cas", f"ST,GS,{sign}  {text}".encode() + unit_text + b"\r\n"),
        ("scale-nci", b"\n" + f"{'-' if negative else ''}{text}".encode() + unit_text + b"\r\n00\r\x03"),
    ):
        events = Decoder(protocol, "from_device").events(line) + []
        got = [e for e in events if e["type"] == "scale.weight"]
        assert len(got) == 1, (protocol, line, events)
        assert type(got[0]["data"]["value_milli"]) is int
        assert got[0]["data"]["value_milli"] == expected
        assert got[0]["data"]["unit"] == T.UNITS[unit_text]


def test_the_largest_weight_and_no_float_anywhere():
    out = Decoder("scale-nci", "from_device").feed(b"\n999999.999kg\r\n00\r\x03\n1234567890kg\r\n00\r\x03")
    events = unpack_events(out)
    assert weights(events) == [(999_999_999, "kg")]
    assert [e["data"]["code"] for e in events if e["type"] == "protocol.error"] == ["scale_bad_weight"]
    for obj in msgpack.Unpacker(__import__("io").BytesIO(out), raw=False):
        assert "float" not in repr(type(obj))
    assert b"\xca" not in out and b"\xcb" not in out  # no msgpack float32/float64 tags in these events


# ------------------------------------------------------------------------------------- UnifiedPOS status

@given(st.integers(0, 15), st.integers(0, 15), st.integers(0, 15))
def test_upos_status_follows_the_flags(b1, b2, b3):
    status = bytes([0x30 | b1, 0x70 | b2, 0x30 | b3])
    (event,) = Decoder("scale-nci", "from_device").events(b"\n" + status + b"\r\x03")
    d = event["data"]
    assert d["error"] == bool(d["faults"]) == bool(b1 & 12 or b2 & 12 or b3 & 8)
    want = 15 if d["error"] else 14 if d["over"] else 16 if d["under"] else 12 if d["motion"] else \
        13 if d["zero"] else 11
    assert d["upos_status"] == want
    assert (d["motion"], d["zero"], d["under"], d["over"], d["net"]) == (
        bool(b1 & 1), bool(b1 & 2), bool(b2 & 1), bool(b2 & 2), bool(b3 & 4))


# ------------------------------------------------------------------------------------------------ bounds

@pytest.mark.parametrize("protocol, direction, frame", [
    ("scale-nci", "from_device", b"\n" + b"1" * 300 + b"\r\x03"), ("scale-toledo", "from_device", b"\x02" + b"1" * 300 + b"\r"),
    ("scale-cas", "from_device", b"9" * 300 + b"\r\n"), ("magellan", "from_device", b"S08B1" + b"A" * 300 + b"\r"),
    ("magellan", "to_device", b"S" * 300 + b"\r"), ("scale-nci", "to_device", b"W" * 300 + b"\r"),
])
def test_overlong_frames_are_dropped_and_decoding_resumes(protocol, direction, frame):
    ok = {"scale-nci": (b"\n00\r\x03", b"W\r"), "scale-toledo": (b"\x02?@\r", b"W"), "scale-cas": (b"ST,GS,+1kg\r\n", b""),
          "magellan": (b"S143\r", b"S11\r")}[protocol][direction == "to_device"]
    events = Decoder(protocol, direction).events(frame + ok)
    assert events[0]["data"]["code"] == "scale_frame_too_long" and events[0]["data"]["offset"] == 0
    assert events[1]["type"].startswith("scale.")
    exact = frame[:1] + frame[1:-3][: T.MAX_FRAME - 4]  # a frame at the bound still decodes (as what it is)
    assert all(e["data"].get("code") != "scale_frame_too_long"
               for e in Decoder(protocol, direction).events(exact + frame[-2:]))


def test_a_long_stream_decodes_in_constant_memory():
    d = Decoder("magellan", "from_device")
    block = b"S08A036000291452\rS1440125\rS141\r" * 2000
    n = 0
    for _ in range(20):
        n += len(d.events(block))
    assert n == 3 * 2000 * 20


@given(st.binary(max_size=300), st.sampled_from(T.PROTOCOLS), st.sampled_from(["to_device", "from_device"]))
def test_errors_quote_no_bytes(data, protocol, direction):
    d = Decoder(protocol, direction)
    for e in d.events(data) + d.close_events():
        if e["type"] == "protocol.error":
            assert e["data"]["raw"] == b""
            assert 0 <= e["data"]["offset"] <= len(data)


# -------------------------------------------------------------------------- Magellan labels (§6) = scanner

@given(st.sampled_from(T.LABELS), st.one_of(st.text("0123456789", max_size=20).map(str.encode),
                                          st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)))
def test_magellan_labels_decode_as_the_scanner_decodes_their_aim_label(entry, data):
    prefix, aim = entry
    # a longer prefix that extends this one (S08F + F = S08FF, EAN-8) is another label type
    assume(not any(other != prefix and (prefix + data).startswith(other) for other, _ in T.LABELS))
    magellan = Decoder("magellan", "from_device").events(prefix + data + b"\r")
    scanner = Decoder("scanner").events(aim + data + b"\r")
    assert magellan == scanner  # both start at offset 0


def test_magellan_reuses_the_scanner_tables():
    import protocols.scale.reference as ref
    import protocols.scanner.reference as scanner_ref

    assert ref.decode_label is scanner_ref.decode_label


# -------------------------------------------------------------------------------------- C tables = Python

def test_c_command_table_equals_the_python_table():
    native = pytest.importorskip("protocols.scale.native")
    ffi, lib = native.ffi, native.lib
    n = ffi.new("unsigned *")
    table = lib.tw_scale_command_table(n)
    names = {0: "scale-nci", 1: "scale-toledo", 2: "scale-cas", 3: "magellan"}
    c = [(names[table[i].protocol], ffi.string(table[i].command).decode(), ffi.string(table[i].name).decode())
         for i in range(n[0])]
    assert c == T.COMMANDS

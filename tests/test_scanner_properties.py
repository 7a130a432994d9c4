"""Scanner decoder properties on the backend TILLWIRE_BACKEND selects: option parsing, the time rule of
suffix=none (docs/protocols/scanner.md section 2), the label bound, card data, and the C tables against the Python
tables."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.scanner import tables as T

MS = 1_000_000


def labels(events):
    return [e["data"]["label"] for e in events if e["type"] == "scanner.data"]


# ------------------------------------------------------------------------------------------------ options

@pytest.mark.parametrize("opts, word", [
    ({"suffix": "cr+lf"}, "suffix"), ({"gap_ms": "fast"}, "gap_ms"), ({"gap_ms": 0}, "gap_ms"),
    ({"gap_ms": True}, "gap_ms"), ({"aim": "maybe"}, "aim"), ({"prefix": "123456789"}, "prefix"),
    ({"prefix": "\u20ac"}, "prefix"), ({"prefix": 3}, "prefix"), ({"prefix": "hex:zz"}, "prefix"),
    ({"colour": "red"}, "colour"),
])
def test_bad_options_name_the_option(opts, word):
    with pytest.raises(ValueError, match=word):
        Decoder("scanner", **opts)


def test_cli_strings_are_accepted():
    d = Decoder("scanner", suffix="CRLF", gap_ms="20", aim="true", prefix="\x02")
    assert labels(d.events(b"\x02]E496385074\r\n")) == ["96385074"]
    d = Decoder("scanner", prefix="hex:02 41")
    assert labels(d.events(b"\x02A96385074\r")) == ["96385074"]
    with pytest.raises(ValueError, match="suffix"):
        Decoder("scanner-hidpos", suffix="cr")


# -------------------------------------------------------------------------------------------- time (§2)

def test_gap_ends_a_label_only_after_a_quiet_tick():
    d = Decoder("scanner", suffix="none", gap_ms=50)
    assert d.events(b"9638") == []
    assert d.tick(0) == b""             # records the bytes' time
    assert d.events(b"5074") == []
    assert d.tick(40 * MS) == b""       # new bytes again: their time is 40 ms
    assert d.tick(90 * MS) == b""       # 50 ms after them: not more than the gap
    out = unpack_events(d.tick(91 * MS))
    assert labels(out) == ["96385074"]
    assert d.tick(500 * MS) == b""      # nothing pending
    d.feed(b"4006381333931")
    d.tick(600 * MS)
    assert d.tick(599 * MS) == b""      # a clock going back ends nothing
    assert labels(d.close_events()) == ["4006381333931"]  # close() ends the label with suffix none


def test_labels_fed_without_a_tick_between_them_are_one_label():
    d = Decoder("scanner", suffix="none")
    d.feed(b"1234")
    d.feed(b"5678")
    d.tick(0)
    assert labels(unpack_events(d.tick(51 * MS))) == ["12345678"]


def test_tick_does_nothing_with_a_suffix():
    d = Decoder("scanner")
    d.feed(b"1234")
    assert d.tick(0) == b"" and d.tick(10**12) == b""
    assert [e["data"]["code"] for e in d.close_events()] == ["truncated"]


def test_overlong_label_with_gap_framing_resumes_after_the_gap():
    d = Decoder("scanner", suffix="none")
    out = d.events(b"A" * (T.MAX_LABEL + 5))
    assert [e["data"]["code"] for e in out] == ["label_too_long"]
    d.tick(0)
    assert d.tick(100 * MS) == b""      # the dropped label ends silently
    d.feed(b"96385074")
    d.tick(200 * MS)
    assert labels(unpack_events(d.tick(300 * MS))) == ["96385074"]


# ----------------------------------------------------------------------------------------------- bounds

def test_a_label_at_the_bound_is_decoded_and_one_byte_more_is_not():
    d = Decoder("scanner")
    assert labels(d.events(b"Q" * T.MAX_LABEL + b"\r")) == ["Q" * T.MAX_LABEL]
    out = d.events(b"Q" * (T.MAX_LABEL + 1) + b"\r")
    assert [e["type"] for e in out] == ["protocol.error"]


def test_hid_label_bound():
    r = bytearray(64)
    r[0], r[1], r[63] = 2, 56, 1
    r[5:61] = b"x" * 56
    last = bytearray(r)
    last[63] = 0
    n = T.MAX_LABEL // 56 + 1
    out = Decoder("scanner-hidpos").events(bytes(r) * n + bytes(last) + bytes(last))
    assert [e["type"] for e in out] == ["protocol.error", "scanner.data"]
    assert out[0]["data"]["code"] == "label_too_long"


# ------------------------------------------------------------------------------------------- card data

@given(st.text("0123456789", min_size=13, max_size=19), st.sampled_from([b"", b"]C0", b"]Q1", b"]C1\x1d21", b"]X0 "]),
       st.sampled_from([b"", b"GIFT ", b"9", b"A"]))
def test_pans_never_leave_outside_validated_codes(pan, aim, before):
    data = aim + before + pan.encode() + b"\r"
    blob = Decoder("scanner").feed(data)
    events = unpack_events(blob)
    digits = re.findall(rb"[0-9]{7,}", blob)
    for e in events:
        if e["type"] == "scanner.data" and e["data"]["symbology"] in ("EAN-13", "UPC-A", "EAN-8"):
            return  # a 13-digit number with a valid EAN check digit is a product code (scanner.md §4 step 6)
    assert not [run for run in digits if run in pan.encode() or pan.encode()[:7] in run], (data, events)


@given(st.text("0123456789", min_size=12, max_size=19))
def test_tracks_leave_only_the_masked_pan(pan):
    for track in (b"%B" + pan.encode() + b"^DOE/JOHN^2512101123456789?", b";" + pan.encode() + b"=2512101123456789?"):
        blob = Decoder("scanner").feed(track + b"\r")
        # the expiry and discretionary data never leave (the masked PAN's own digits may hold "2512")
        assert b"2512101123456789" not in blob and b"DOE" not in blob
        assert b"2512" not in blob.replace(f"{pan[:6]}".encode(), b"").replace(pan[-4:].encode(), b"")
        assert not re.findall(rb"[0-9]{7,}", blob)


# ---------------------------------------------------------------------------------------- C tables

def test_c_tables_equal_the_python_tables():
    native = pytest.importorskip("protocols.scanner.native")
    ffi, lib = native.ffi, native.lib
    n = ffi.new("unsigned *")
    table = lib.tw_scanner_aim_table(n)
    c_aim = [(table[i].code.decode(), table[i].mod.decode().replace("\0", ""), ffi.string(table[i].name).decode(),
              table[i].upos, bool(table[i].gs1)) for i in range(n[0])]
    assert c_aim == T.aim_list()
    table = lib.tw_scanner_ai_table(n)
    kinds = {0: "", 1: "dec", 2: "cur_dec"}
    c_ai = [(ffi.string(table[i].ai).decode(), table[i].fixed, table[i].max, table[i].charset.decode(),
             kinds[table[i].kind]) for i in range(n[0])]
    assert c_ai == T.ai_list()


def test_ai_table_is_prefix_free():
    keys = sorted(T.AI_TABLE)
    for a in keys:
        for b in keys:
            assert a == b or not b.startswith(a), (a, b)


# ------------------------------------------------------------------------------------- HID-POS = serial

def hid_reports(label: bytes) -> bytes:
    aim, data = (label[:3], label[3:]) if label[:1] == b"]" and len(label) >= 3 else (b"\0\0\0", label)
    chunks = [data[i:i + T.HID_DATA_MAX] for i in range(0, len(data), T.HID_DATA_MAX)] or [b""]
    out = bytearray()
    for k, c in enumerate(chunks):
        r = bytearray(T.HID_REPORT)
        r[0], r[1] = T.HID_REPORT_ID, len(c)
        r[2:5] = aim
        r[5:5 + len(c)] = c
        r[63] = 1 if k + 1 < len(chunks) else 0
        out += r
    return bytes(out)


@given(st.lists(st.one_of(
    st.sampled_from([b"]E04006381333931", b"]E001234565", b"]C10109506000134352172512311", b"96385074",
                     b"]Q1https://example.com/" + b"x" * 80, b"%B4111111111111111^X^2512?"]),
    st.binary(max_size=150).filter(lambda b: b"\r" not in b and b[:1] != b"]")), max_size=5))
def test_hid_pos_labels_decode_like_serial_labels(labels):
    """The same labels over HID-POS and over a CR-terminated serial line give the same data events."""
    def data_events(blob):
        return [e for e in unpack_events(blob) if e["type"] != "protocol.error"]

    serial = Decoder("scanner")
    hid = Decoder("scanner-hidpos")
    assert data_events(hid.feed(b"".join(hid_reports(lab) for lab in labels)) + hid.close()) == \
        data_events(serial.feed(b"".join(lab + b"\r" for lab in labels)) + serial.close())


PLAIN_NUMERIC_AIS = sorted(ai for ai, (fixed, top, charset, kind) in T.AI_TABLE.items()
                           if charset == "N" and not kind and not ai.startswith(("11", "12", "13", "15", "16", "17")))


@pytest.mark.parametrize("ai", PLAIN_NUMERIC_AIS)
def test_c_and_python_agree_on_which_ais_carry_a_check_digit(ai):
    """A numeric value (not a date or a measure) whose last digit is wrong for GS1 mod 10 is bad_check_digit
    exactly for the GS1 keys (tables.CHECK_DIGIT_AIS; native/scanner.c ai_has_check_digit)."""
    fixed, top, charset, kind = T.AI_TABLE[ai]
    n = fixed or min(top, 13)
    body = "4" * (n - 1)
    good = str((10 - sum(int(c) * (3 if k % 2 == 0 else 1) for k, c in enumerate(reversed(body))) % 10) % 10)
    wrong = str((int(good) + 1) % 10)
    label = f"]C1{ai}{body}{wrong}\r".encode()
    native = Decoder("scanner", backend="native").events(label)
    reference = Decoder("scanner", backend="reference").events(label)
    assert native == reference
    assert (native[0]["type"] == "protocol.error" and native[0]["data"]["code"] == "bad_check_digit") == (
        ai in T.CHECK_DIGIT_AIS)

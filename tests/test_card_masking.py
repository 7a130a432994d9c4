"""The card-data rules every payment decoder applies (docs/protocols/payment.md section 2): C (native/tw_card.c)
and Python (protocols/card.py) agree, and no PAN-length digit run survives."""

from __future__ import annotations

import re

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols._native import ffi, lib
from protocols.card import mask_pan, scrub, scrub_text


def c_scrub(data: bytes) -> bytes:
    buf = ffi.new("uint8_t[]", data or b"\0")
    lib.tw_card_scrub(buf, len(data))
    return bytes(ffi.buffer(buf, len(data)))


def c_mask(pan: str) -> str:
    raw = pan.encode()
    dst = ffi.new("uint8_t[]", len(raw) or 1)
    lib.tw_card_mask_pan(raw, len(raw), dst)
    return bytes(ffi.buffer(dst, len(raw))).decode()


def c_scrubbed_str(text: str) -> str:
    out = ffi.new("tw_out *")
    lib.tw_out_init(out)
    raw = text.encode()
    lib.tw_mp_str_scrubbed(out, raw, len(raw))
    blob = bytes(ffi.buffer(out.data, out.len))
    lib.tw_out_free(out)
    return msgpack.unpackb(blob, raw=False)


@pytest.mark.parametrize("pan, masked", [
    ("4111111111111111", "411111******1111"),
    ("5500000000000004", "550000******0004"),
    ("6759649826438453117", "675964*********3117"),   # 19 digits
    ("4222222222222", "422222***2222"),                 # 13 digits: the shortest that keeps the first six
    ("672000001234", "********1234"),                   # 12 digits: only the last four
    ("6720EEEE1234".replace("E", "*"), "********1234"), # masked by the terminal already
])
def test_mask_pan(pan, masked):
    assert mask_pan(pan) == masked
    assert c_mask(pan) == masked


@pytest.mark.parametrize("text, scrubbed", [
    (b"CARD 4111111111111111 VISA", b"CARD 411111******1111 VISA"),
    (b"4111 1111 1111 1111", b"4111 11** **** 1111"),
    (b"4111-1111-1111-1111", b"4111-11**-****-1111"),
    (b"TOTAL 1234567890123.45", b"TOTAL 123456***0123.45"),    # 13 digits before the '.' count as a PAN
    (b"TRACE 000123 TID 52500038", b"TRACE 000123 TID 52500038"),  # groups of 6 and 8 digits, not joined
    (b"12 34 56 78 90 12 34", b"12 34 56 ** ** 12 34"),           # 14 digits in single-space groups
    (b"12  34567890123456", b"12  345678****3456"),             # two spaces end a sequence
    (b"1234567890123-", b"123456***0123-"),
    (b"", b""),
])
def test_scrub_examples(text, scrubbed):
    assert scrub(text) == scrubbed
    assert c_scrub(text) == scrubbed
    assert scrub_text(text.decode()) == scrubbed.decode()


@given(st.binary(max_size=200) | st.text(alphabet="0123456789 -ab\u00e9", max_size=120).map(str.encode))
def test_c_and_python_scrub_agree(data):
    assert c_scrub(data) == scrub(data)


@given(st.text(alphabet="0123456789 -x\u00fc\u20ac", max_size=120))
def test_scrubbed_text_writer_matches_scrub_text(text):
    assert c_scrubbed_str(text) == scrub_text(text)


@given(st.text(alphabet="0123456789*", min_size=1, max_size=25))
def test_c_and_python_mask_agree(pan):
    assert c_mask(pan) == mask_pan(pan)


@given(st.from_regex(r"\A[0-9]{13,19}\Z"), st.text(alphabet="ab -x=", max_size=40),
       st.text(alphabet="ab -x=", max_size=40))
def test_no_seven_digit_run_of_a_pan_survives_scrubbing(pan, before, after):
    out = scrub(f"{before} {pan} {after}".encode())
    assert not re.search(rb"[0-9]{7}", out)
    assert pan[:6].encode() in out and pan[-4:].encode() in out


@given(st.text(alphabet="0123456789 -x.,\u00fc", max_size=80))
def test_display_scrub_agrees_in_c_and_python_and_leaves_no_five_digits(text):
    from protocols.card import scrub_display_text

    out = ffi.new("tw_out *")
    lib.tw_out_init(out)
    raw = text.encode()
    lib.tw_mp_str_display_scrubbed(out, raw, len(raw))
    c = msgpack.unpackb(bytes(ffi.buffer(out.data, out.len)), raw=False)
    lib.tw_out_free(out)
    assert c == scrub_display_text(text)
    assert not re.search(r"[0-9]{5}", c)

"""The cffi wrapper guards what C must trust: table shapes and consistency of a profile handed to it."""

from __future__ import annotations

import dataclasses

import pytest

from protocols.escpos.native import NativeEscposDecoder
from protocols.escpos.profiles import load_profile


def test_a_profile_with_wrongly_sized_tables_is_refused_before_c_sees_it():
    bad = dataclasses.replace(load_profile("generic"), name="broken", kanji_double=(1,))
    with pytest.raises(ValueError, match="wrong size: kanji_double"):
        NativeEscposDecoder("to_device", bad, False)


def test_an_inconsistent_profile_is_a_value_error_not_out_of_memory():
    base = load_profile("generic")
    index = list(base.codepage_index)
    index[0] = 200  # ESC t 0 would name table slot 200, which does not exist
    bad = dataclasses.replace(base, name="inconsistent", codepage_index=tuple(index))
    with pytest.raises(ValueError, match="inconsistent"):
        NativeEscposDecoder("to_device", bad, False)


def test_close_releases_the_decoder_and_further_use_raises():
    from protocols import DecoderClosed

    dec = NativeEscposDecoder("to_device", load_profile("generic"), True)
    dec.feed(b"\x1dv0\x00\x02\x00\x02\x00\xff\xff\x00\x00")
    assert dec.close() == b""
    with pytest.raises(DecoderClosed):
        dec.feed(b"x")

"""The C msgpack writer encodes exactly like msgpack-python's ``packb(obj, use_bin_type=True)``: the contract
that lets the two backends be compared byte for byte. Checked value by value, at every size boundary."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from protocols._native import ffi, lib


def written(write) -> bytes:
    out = ffi.new("tw_out *")
    lib.tw_out_init(out)
    try:
        write(out)
        assert not out.oom
        return ffi.buffer(out.data, out.len)[:]
    finally:
        lib.tw_out_free(out)


def pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


BOUNDARIES = [0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1]
SIZES = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]


def test_unsigned_ints_at_every_boundary():
    for v in BOUNDARIES + [2**64 - 1]:
        assert written(lambda o: lib.tw_mp_uint(o, v)) == pack(v), v


def test_signed_ints_at_every_boundary():
    for v in [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)] + BOUNDARIES:
        assert written(lambda o: lib.tw_mp_int(o, v)) == pack(v), v


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_int64(v):
    assert written(lambda o: lib.tw_mp_int(o, v)) == pack(v)


@given(st.text(max_size=300))
def test_any_string(s):
    raw = s.encode("utf-8", "surrogatepass")
    assert written(lambda o: lib.tw_mp_str(o, raw, len(raw))) == pack(raw.decode("utf-8", "surrogatepass"))


def test_string_and_binary_headers_at_every_size():
    for n in SIZES:
        text, blob = "x" * n, b"\x00" * n
        assert written(lambda o: lib.tw_mp_str(o, text.encode(), n)) == pack(text), n
        assert written(lambda o: lib.tw_mp_bin(o, blob, n)) == pack(blob), n


def test_containers_nil_and_bools():
    for n in SIZES:
        header = written(lambda o: lib.tw_mp_array(o, n))
        assert header == pack([None] * n)[: len(header)], n      # an array/map header, then its items
        header = written(lambda o: lib.tw_mp_map(o, n))
        assert header == pack({i: None for i in range(n)})[: len(header)], n
    assert written(lib.tw_mp_nil) == pack(None)
    assert written(lambda o: lib.tw_mp_bool(o, 1)) == pack(True)
    assert written(lambda o: lib.tw_mp_bool(o, 0)) == pack(False)


def test_a_whole_event_built_from_parts():
    def event(o):
        lib.tw_mp_map(o, 2)
        lib.tw_mp_str(o, b"type", 4)
        lib.tw_mp_str(o, b"printer.feed", 12)
        lib.tw_mp_str(o, b"data", 4)
        lib.tw_mp_map(o, 1)
        lib.tw_mp_str(o, b"lines", 5)
        lib.tw_mp_int(o, -3)

    assert written(event) == pack({"type": "printer.feed", "data": {"lines": -3}})

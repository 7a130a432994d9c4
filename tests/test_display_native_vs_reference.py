"""Differential test: the C display decoder and the pure-Python reference give byte-identical msgpack for random
options (dialect, columns, rows, profile) and random streams built from the command table (every command with
good and bad parameters, text in several code pages, PAN-like digits, random bytes), split at random points with
ticks between the pieces. Contract: docs/protocols/display.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("protocols.display.native", reason="the C core is not built (make native)")

from protocols.display import resolve  # noqa: E402
from protocols.display import tables as T  # noqa: E402
from protocols.display.native import NativeDisplayDecoder  # noqa: E402
from protocols.display.reference import ReferenceDisplayDecoder  # noqa: E402
from streams import split  # noqa: E402

COMMANDS = [cmd + bytes(n) for _, cmd, n, _, _ in T.COMMANDS]
TEXT = st.sampled_from([b"Milk 1L", b"TOTAL", b"   12.99", b"4111 1111 1111 1111", b"\x80\x9a\xe9", b"CHANGE"])


@st.composite
def piece(draw) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 2:
        return draw(TEXT) * draw(st.integers(1, 4))
    if kind <= 5:
        cmd = draw(st.sampled_from([c for _, c, _, _, _ in T.COMMANDS]))
        n = next(n for _, c, n, _, _ in T.COMMANDS if c == cmd)
        params = draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 16, 20, 21, 32, 33, 0x41, 0x7e, 255]),
                               min_size=n, max_size=n))
        return cmd + bytes(params)
    if kind == 6:
        return b"\x1bQ" + draw(st.sampled_from(b"ABDCZ")).to_bytes(1, "big") + draw(st.binary(max_size=45)) + \
            draw(st.sampled_from([b"\r", b"", b"\n"]))
    if kind == 7:
        return b"\x1b&\x01" + bytes([draw(st.integers(0x1f, 0x24)), draw(st.integers(0x1f, 0x24))]) + \
            draw(st.binary(max_size=40))
    return draw(st.binary(max_size=24))


@st.composite
def options(draw) -> dict:
    opts: dict = {}
    if draw(st.booleans()):
        opts["columns"] = draw(st.sampled_from([1, 2, 16, 20, "40"]))
    if draw(st.booleans()):
        opts["rows"] = draw(st.sampled_from([1, 2, "4"]))
    if draw(st.integers(0, 3)) == 0:
        opts["profile"] = draw(st.sampled_from(["generic", "tm-t88"]))
    return opts


@given(st.sampled_from(T.DIALECTS), options(), st.lists(piece(), max_size=30),
       st.lists(st.integers(0, 10_000), max_size=6), st.lists(st.booleans(), max_size=8))
def test_native_equals_reference(dialect, opts, pieces, cuts, ticks):
    try:
        cfg = resolve(opts, dialect)
    except ValueError:
        return
    data = b"".join(pieces)
    nat, ref = NativeDisplayDecoder(cfg), ReferenceDisplayDecoder(cfg)
    out_n, out_r = [], []
    for k, chunk in enumerate(split(data, cuts)):
        out_n.append(nat.feed(chunk))
        out_r.append(ref.feed(chunk))
        if k < len(ticks) and ticks[k]:
            for _ in range(2):
                out_n.append(nat.tick(k))
                out_r.append(ref.tick(k))
    out_n.append(nat.close())
    out_r.append(ref.close())
    assert out_n == out_r


@given(st.sampled_from(T.DIALECTS), st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=5))
def test_arbitrary_bytes_chunk_invariant(dialect, data, cuts):
    cfg = resolve({}, dialect)
    whole = NativeDisplayDecoder(cfg).feed(data)
    nat = NativeDisplayDecoder(cfg)
    ref = ReferenceDisplayDecoder(cfg)
    n = b"".join(nat.feed(c) for c in split(data, cuts)) + nat.close()
    r = b"".join(ref.feed(c) for c in split(data, cuts)) + ref.close()
    assert n == r
    assert n.startswith(whole)

"""Differential test: the C MSR decoder and the pure-Python reference give byte-identical msgpack, for random
options (separator, lrc, tracks, gap) and random streams built from a grammar of swipes (good tracks 1, 2, 3 with
and without LRC, cut tracks, bad characters, overlong tracks, reader errors, separators, stray bytes, random
bytes), split at random points with ticks at random times between the pieces. Contract: docs/protocols/msr.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("protocols.msr.native", reason="the C core is not built (make native)")

from protocols.msr import tables as T  # noqa: E402
from protocols.msr.native import NativeMsrDecoder  # noqa: E402
from protocols.msr.reference import ReferenceMsrDecoder  # noqa: E402
from streams import split  # noqa: E402

MS = 1_000_000
digits = st.text("0123456789", min_size=0, max_size=22).map(str.encode)
name = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ /.", min_size=0, max_size=28).map(str.encode)


def lrc_char(track: bytes, n: int) -> bytes:
    x = 0
    for c in track:
        x ^= (c - T.BASE[n]) & 0xFF
    return bytes([(x + T.BASE[n]) & 0xFF])


@st.composite
def track(draw) -> bytes:
    kind = draw(st.integers(0, 9))
    pan, disc = draw(digits), draw(digits)
    if kind <= 2:
        t, n = b"%B" + pan + b"^" + draw(name) + b"^2512101" + disc + b"?", 1
    elif kind <= 5:
        t, n = b";" + pan + b"=2512101" + disc + b"?", 2
    elif kind == 6:
        t, n = b";01" + pan + b"=" + disc * 4 + b"?", 3
    elif kind == 7:
        t, n = draw(st.sampled_from([b"%E?", b";E?", b"%?", b";?", b"%AT3?", b";0?"])), 1
    elif kind == 8:
        t, n = draw(st.sampled_from([b"%", b";"])) + draw(st.binary(max_size=120)), 1
    else:
        return draw(st.binary(max_size=12))
    if draw(st.booleans()):
        t += draw(st.sampled_from([lrc_char(t, n), b"0", b"\r"]))
    return t + draw(st.sampled_from([b"", b"\r", b"\r\n", b"\n"]))


@st.composite
def options(draw) -> dict:
    opts: dict = {}
    if draw(st.booleans()):
        opts["separator"] = draw(st.sampled_from(sorted(T.SEPARATORS)))
    if draw(st.booleans()):
        opts["lrc"] = draw(st.sampled_from(["on", "off"]))
    if draw(st.booleans()):
        opts["tracks"] = draw(st.sampled_from(["1", "2", "3", "12", "13", "23", "123"]))
    if draw(st.booleans()):
        opts["gap_ms"] = draw(st.integers(1, 100))
    return opts


def run(cls, opts, pieces, ticks) -> bytes:
    d = cls(T.resolve(opts))
    out = []
    for k, piece in enumerate(pieces):
        out.append(d.feed(piece))
        for t in ticks.get(k, ()):
            out.append(d.tick(t))
    out.append(d.close())
    return b"".join(out)


@given(options(), st.lists(track(), max_size=12).map(b"".join), st.lists(st.integers(0, 2000), max_size=12),
       st.dictionaries(st.integers(0, 12), st.lists(st.integers(-5 * MS, 400 * MS), max_size=3), max_size=6))
def test_native_matches_reference(opts, data, cuts, ticks):
    pieces = split(data, cuts)
    assert run(NativeMsrDecoder, opts, pieces, ticks) == run(ReferenceMsrDecoder, opts, pieces, ticks)


@given(options(), st.binary(max_size=400), st.lists(st.integers(0, 500), max_size=8))
def test_random_bytes(opts, data, cuts):
    pieces = split(data, cuts)
    whole = run(NativeMsrDecoder, opts, [data], {})
    assert run(NativeMsrDecoder, opts, pieces, {}) == whole
    assert run(ReferenceMsrDecoder, opts, pieces, {}) == whole

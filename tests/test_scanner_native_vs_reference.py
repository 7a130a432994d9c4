"""Differential test: the C scanner decoder and the pure-Python reference give byte-identical msgpack, for random
options (prefix, suffix, gap, aim) and random streams built from a grammar of labels (EAN/UPC with good and bad
check digits, UPC-E, AIM ids, GS1 element strings good and bad, MSR tracks, PANs, random bytes), split at random
points with ticks at random times between the pieces; and for HID-POS report streams. Contract:
docs/protocols/scanner.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("protocols.scanner.native", reason="the C core is not built (make native)")

from protocols.scanner import tables as T  # noqa: E402
from protocols.scanner.native import NativeScannerDecoder  # noqa: E402
from protocols.scanner.reference import ReferenceHidPosDecoder, ReferenceScannerDecoder  # noqa: E402
from simulator.gs1 import check_digit  # noqa: E402
from streams import split  # noqa: E402

DIGITS = st.text("0123456789", min_size=1, max_size=20).map(str.encode)
AIMS = [b"]" + c.encode() + m.encode() for c, m in T.AIM] + [b"]E0", b"]E4", b"]E3", b"]C1", b"]Y9", b"]e5", b"]Q1"]
AI_KEYS = sorted(T.AI_TABLE)


@st.composite
def product(draw) -> bytes:
    n = draw(st.sampled_from([7, 11, 12]))
    body = draw(st.text("0123456789", min_size=n, max_size=n)).encode()
    code = body + check_digit(body.decode()).encode()
    if draw(st.integers(0, 4)) == 0:
        code = code[:-1] + str((code[-1] - 0x30 + 1) % 10).encode()
    return code


@st.composite
def element(draw) -> bytes:
    ai = draw(st.sampled_from(AI_KEYS))
    fixed, top, charset, kind = T.AI_TABLE[ai]
    alphabet = "0123456789" if charset == "N" else "0123456789ABCxyz-/ %"
    n = fixed or draw(st.integers(4 if kind == "cur_dec" else 1, top))
    if draw(st.integers(0, 8)) == 0:
        n = draw(st.integers(0, top + 2))
    value = draw(st.text(alphabet, min_size=n, max_size=n)).encode()
    sep = b"\x1d" if not fixed or draw(st.integers(0, 3)) == 0 else b""
    return ai.encode() + value + sep


@st.composite
def label(draw) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        body = product()
        return draw(st.sampled_from([b"", b"]E0", b"]E4"])) + draw(body)
    if kind == 1:  # UPC-E
        six = draw(st.text("0123456789", min_size=6, max_size=6)).encode()
        check = draw(st.sampled_from([bytes([c]) for c in b"0123456789"]))
        return b"]E0" + draw(st.sampled_from([b"0", b"1", b"2"])) + six + check
    if kind in (2, 3):
        els = draw(st.lists(element(), min_size=1, max_size=5))
        return draw(st.sampled_from([b"]C1", b"]d2", b"]Q3", b"]e0", b"\x1d", b"]C1\x1d"])) + b"".join(els)
    if kind == 4:  # a track
        pan = draw(st.text("0123456789", min_size=12, max_size=19)).encode()
        return draw(st.sampled_from([b"%B" + pan + b"^DOE/J^2512101?", b";" + pan + b"=2512101?", b"%X?"]))
    if kind == 5:
        return draw(st.sampled_from(AIMS)) + draw(st.binary(max_size=30))
    if kind == 6:
        return draw(st.sampled_from(AIMS)) + draw(DIGITS) + draw(st.sampled_from([b"", b" ", b"-"])) + draw(DIGITS)
    return draw(st.binary(max_size=40))


@st.composite
def options(draw) -> dict:
    opts: dict = {}
    if draw(st.booleans()):
        opts["suffix"] = draw(st.sampled_from(sorted(T.SUFFIXES)))
    if draw(st.integers(0, 3)) == 0:
        opts["prefix"] = draw(st.binary(min_size=1, max_size=3))
    if draw(st.booleans()):
        opts["gap_ms"] = draw(st.sampled_from([1, "5", 50, 1000]))
    if draw(st.booleans()):
        opts["aim"] = draw(st.sampled_from(["auto", "on", "off", True, False, "true"]))
    return opts


def term(cfg: T.Config) -> bytes:
    return {"cr": b"\r", "crlf": b"\r\n", "lf": b"\n", "tab": b"\t", "none": b""}[cfg.suffix]


@st.composite
def serial_streams(draw):
    cfg = T.resolve(draw(options()))
    parts = []
    for lab in draw(st.lists(label(), max_size=8)):
        pre = cfg.prefix if draw(st.integers(0, 5)) else b""
        parts.append(pre + lab + (term(cfg) if draw(st.integers(0, 6)) else b""))
    if draw(st.integers(0, 10)) == 0:
        parts.append(b"Z" * draw(st.integers(T.MAX_LABEL - 2, T.MAX_LABEL + 3)) + term(cfg))
    data = b"".join(parts)
    cuts = draw(st.lists(st.integers(0, len(data) + 1), max_size=12))
    ticks = draw(st.lists(st.integers(-5_000_000, 2_000_000_000), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    return cfg, data, cuts, ticks


def run(impl, chunks, ticks) -> bytes:
    out = []
    now = 0
    for chunk, dt in zip(chunks, ticks):
        out.append(impl.feed(chunk))
        now += dt
        out.append(impl.tick(now))
        out.append(impl.tick(now + abs(dt) // 3))
    out.append(impl.close())
    return b"".join(out)


@given(serial_streams())
def test_serial_native_equals_reference(case):
    cfg, data, cuts, ticks = case
    chunks = split(data, cuts)
    native = run(NativeScannerDecoder(cfg), chunks, ticks)
    reference = run(ReferenceScannerDecoder(cfg), chunks, ticks)
    assert native == reference


@given(serial_streams())
def test_chunking_does_not_matter_without_ticks(case):
    cfg, data, cuts, _ = case
    if cfg.suffix == "none":
        return  # there, ticks are the framing; without ticks every split is one label, checked above
    whole = NativeScannerDecoder(cfg)
    expected = whole.feed(data) + whole.close()
    pieces = NativeScannerDecoder(cfg)
    assert b"".join(pieces.feed(c) for c in split(data, cuts)) + pieces.close() == expected


@st.composite
def reports(draw) -> bytes:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        lab = draw(label())
        aim, data = (lab[:3], lab[3:]) if lab[:1] == b"]" and len(lab) >= 3 else (b"\0\0\0", lab)
        chunks = [data[i:i + 56] for i in range(0, len(data), 56)] or [b""]
        for k, c in enumerate(chunks):
            r = bytearray(64)
            r[0] = 2 if draw(st.integers(0, 15)) else draw(st.integers(0, 255))
            r[1] = len(c) if draw(st.integers(0, 15)) else draw(st.integers(0, 255))
            r[2:5] = aim
            r[5:5 + len(c)] = c
            r[61] = draw(st.integers(0, 255))
            r[63] = (1 if k + 1 < len(chunks) else 0) if draw(st.integers(0, 10)) else draw(st.integers(0, 255))
            out.append(bytes(r))
    blob = b"".join(out)
    if draw(st.integers(0, 5)) == 0:
        blob += draw(st.binary(max_size=70))
    return blob


@given(reports(), st.lists(st.integers(0, 2000), max_size=10), st.sampled_from(["auto", "on", "off"]))
def test_hidpos_native_equals_reference(data, cuts, aim):
    cfg = T.resolve({"aim": aim}, hid=True)
    chunks = split(data, cuts)
    n, r = NativeScannerDecoder(cfg), ReferenceHidPosDecoder(cfg)
    assert b"".join(n.feed(c) for c in chunks) + n.close() == b"".join(r.feed(c) for c in chunks) + r.close()


@given(st.binary(max_size=400), st.lists(st.integers(0, 500), max_size=8), options())
def test_arbitrary_bytes(data, cuts, opts):
    cfg = T.resolve(opts)
    chunks = split(data, cuts)
    ticks = [10_000_000 * (k + 1) for k in range(len(chunks))]
    assert run(NativeScannerDecoder(cfg), chunks, ticks) == run(ReferenceScannerDecoder(cfg), chunks, ticks)
    hid = T.resolve({}, hid=True)
    n, r = NativeScannerDecoder(hid), ReferenceHidPosDecoder(hid)
    assert b"".join(n.feed(c) for c in chunks) + n.close() == b"".join(r.feed(c) for c in chunks) + r.close()

"""Differential test: the C ZVT link decoder and the pure-Python reference give byte-identical msgpack.

Serial streams are fully random bytes, or built from a grammar of valid and near-valid ZVT serial framing
(frames with a correct CRC around random APDUs with stuffed DLEs and extended lengths, frames with a wrong CRC,
bad escapes, restarted frames, ACK/NAK, garbage runs, lone DLEs, truncated tails); TCP streams are random APDUs
back to back, with a truncated tail. Each stream is split at random points and both backends must agree; each
backend must also give the same output for the stream fed whole and fed byte by byte. Contract:
docs/protocols/zvt-link.md.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

native = pytest.importorskip("protocols.zvt.native", reason="the C core is not built (make native)")

import msgpack  # noqa: E402

from protocols import checksums  # noqa: E402
from protocols._native import ffi, lib  # noqa: E402
from protocols.decoder import DecoderClosed  # noqa: E402
from protocols.zvt import tables as T  # noqa: E402
from protocols.zvt.link_reference import ReferenceZvtLinkDecoder  # noqa: E402
from protocols.zvt.native import NativeZvtLinkDecoder  # noqa: E402
from streams import split  # noqa: E402

BACKENDS = (NativeZvtLinkDecoder, ReferenceZvtLinkDecoder)
u8 = st.integers(0, 255)


# ----------------------------------------------------------------------------------------------- helpers

def kermit(data: bytes, crc: int = 0) -> int:
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def xmodem(data: bytes, crc: int = 0) -> int:
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def stuff(apdu: bytes) -> bytes:
    return apdu.replace(b"\x10", b"\x10\x10")


def frame(apdu: bytes, crc: int | None = None) -> bytes:
    if crc is None:
        crc = kermit(apdu + b"\x03")
    return b"\x10\x02" + stuff(apdu) + b"\x10\x03" + bytes((crc & 0xFF, crc >> 8))


def run(cls, framing: str, chunks, strict: bool = False) -> bytes:
    d = cls(framing, strict)
    return b"".join(d.feed(c) for c in chunks) + d.close()


def events(blob: bytes) -> list[dict]:
    u = msgpack.Unpacker(raw=False)
    u.feed(blob)
    return list(u)


def check_all(framing: str, data: bytes, cuts: list[int], strict: bool = False) -> None:
    chunks = split(data, cuts)
    outs = [run(cls, framing, chunks, strict) for cls in BACKENDS]
    assert outs[0] == outs[1], (framing, strict, data.hex(), [len(c) for c in chunks])
    for cls, out in zip(BACKENDS, outs):
        assert run(cls, framing, [data], strict) == out, (cls.__name__, "whole")
        assert run(cls, framing, [data[i:i + 1] for i in range(len(data))], strict) == out, (cls.__name__, "bytewise")


# --------------------------------------------------------------------------------------------- grammar

KNOWN = list(T.COMMANDS) + [(0x84, 0x00), (0x84, 0x9C)]
class_instr = st.one_of(st.sampled_from(KNOWN), st.tuples(u8, u8), st.tuples(st.just(0x10), u8),
                        st.tuples(u8, st.just(0x10)))
# data with plenty of DLE (stuffed) and link control bytes
data_bytes = st.lists(st.one_of(u8, st.sampled_from([0x10, 0x10, 0x02, 0x03, 0x06, 0x15, 0xFF])),
                      max_size=300).map(bytes)


@st.composite
def apdu(draw):
    cls, instr = draw(class_instr)
    data = draw(data_bytes)
    n = len(data)
    form = draw(st.sampled_from(["short", "ext", "ext_short", "wrong", "wrong_ext", "cut"]))
    if form == "short" and n <= 254:
        return bytes((cls, instr, n)) + data
    if form in ("ext", "ext_short") or (form == "short" and n > 254):
        return bytes((cls, instr, 0xFF, n & 0xFF, n >> 8)) + data
    if form == "wrong":
        return bytes((cls, instr, draw(st.integers(0, 254).filter(lambda x: x != n)))) + data
    if form == "wrong_ext":
        return bytes((cls, instr, 0xFF)) + draw(st.integers(0, 0xFFFF)).to_bytes(2, "little") + data
    # cut: shorter than a header (0..2 bytes, or an extended length cut off)
    whole = bytes((cls, instr, 0xFF, 0x10, 0x10))
    return whole[:draw(st.integers(0, 4))]


@st.composite
def serial_token(draw):
    kind = draw(st.sampled_from(["frame", "frame", "frame", "bad_crc", "bad_escape", "restart", "ack", "nak",
                                 "garbage", "dle", "dle_dle", "etx_in_ground"]))
    if kind == "frame":
        return frame(draw(apdu()))
    if kind == "bad_crc":
        a = draw(apdu())
        good = kermit(a + b"\x03")
        return frame(a, draw(st.integers(0, 0xFFFF).filter(lambda c: c != good)))
    if kind == "bad_escape":
        esc = draw(st.one_of(u8.filter(lambda b: b not in (0x10, 0x02, 0x03)), st.sampled_from([0x06, 0x15])))
        return b"\x10\x02" + stuff(draw(data_bytes)[:20]) + bytes((0x10, esc))
    if kind == "restart":
        return b"\x10\x02" + stuff(draw(data_bytes)[:20])
    if kind == "ack":
        return b"\x06"
    if kind == "nak":
        return b"\x15"
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=20))
    if kind == "dle":
        return b"\x10"
    if kind == "dle_dle":
        return b"\x10\x10"
    return b"\x10\x03"


@st.composite
def serial_stream(draw):
    data = b"".join(draw(st.lists(serial_token(), max_size=12)))
    if draw(st.booleans()):  # a truncated tail: part of a frame
        tail = frame(draw(apdu()))
        data += tail[:draw(st.integers(0, len(tail)))]
    return data


@st.composite
def tcp_stream(draw):
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        cls, instr = draw(class_instr)
        data = draw(data_bytes)
        n = len(data)
        if n <= 254 and draw(st.booleans()):
            parts.append(bytes((cls, instr, n)) + data)
        else:
            parts.append(bytes((cls, instr, 0xFF, n & 0xFF, n >> 8)) + data)
    data = b"".join(parts)
    if draw(st.booleans()):
        data += draw(st.binary(max_size=10))
    return data


cuts = st.lists(st.integers(0, 1 << 20), max_size=8)


# ------------------------------------------------------------------------------ APDU grammar (zvt.md)

from protocols.zvt import bmps as B  # noqa: E402


def _llvar(v: bytes, k: int) -> bytes:
    n = len(v)
    digits = f"{n:0{k}d}"[-k:]
    return bytes(0xF0 + int(c) for c in digits) + v


def _ber(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else (b"\x81" + bytes([n]) if n < 256 else b"\x82" + n.to_bytes(2, "big"))


bcd_bytes = st.lists(st.integers(0, 9), min_size=2, max_size=24).map(
    lambda ds: bytes(ds[i] << 4 | ds[i + 1] for i in range(0, len(ds) - 1, 2)))
nibble_bytes = st.lists(st.sampled_from([0, 1, 4, 7, 9, 0xD, 0xE, 0xF, 0xA]), min_size=2, max_size=40).map(
    lambda ns: bytes(ns[i] << 4 | ns[i + 1] for i in range(0, len(ns) - 1, 2)))
text_bytes = st.one_of(st.binary(max_size=30), st.text("0123456789 -ABCü", max_size=30).map(
    lambda t: t.encode("cp437")))
# AIDs and near-AIDs: 5-16 bytes, first nibble A or D (kept), or one nibble or byte off (withheld)
aid_bytes = st.tuples(st.sampled_from([0xA0, 0xD2, 0xAF, 0x47, 0x0A, 0xB0, 0xC0, 0xE0]),
                      st.binary(min_size=3, max_size=16)).map(lambda t: bytes([t[0]]) + t[1])
TLV_TAGS = [b"\x07", b"\x09", b"\x5a", b"\x57", b"\x56", b"\x4f", b"\x1f\x12", b"\x5f\x20", b"\x5f\x24", b"\x9f\x1f",
            b"\x9f\x6b", b"\x14", b"\x1f\x07", b"\x1f\x81\x81\x01", b"\x1f\x81\x81\x81\x01"]
CONSTRUCTED = [b"\x24", b"\x25", b"\x2f", b"\x60", b"\x26", b"\xbf\x01"]


@st.composite
def tlv_objects(draw, depth=0):
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        if depth < 9 and draw(st.integers(0, 3)) == 0:
            inner = draw(tlv_objects(depth + 1))
            tag = draw(st.sampled_from(CONSTRUCTED))
        else:
            tag = draw(st.sampled_from(TLV_TAGS))
            inner = draw(st.one_of(text_bytes, bcd_bytes, nibble_bytes, st.binary(max_size=4), aid_bytes))
        n = len(inner)
        if draw(st.integers(0, 15)) == 0:
            n = draw(st.integers(0, 300))  # a wrong length
        out += tag + (_ber(n) if draw(st.integers(0, 20)) else b"\x83") + inner
    return out


@st.composite
def bmp(draw):
    tag = draw(st.one_of(st.sampled_from(sorted(B.BMPS)), st.sampled_from(sorted(B.BMPS)), u8))
    spec = B.BMPS.get(tag)
    if spec is None:
        return bytes([tag]) + draw(st.binary(max_size=4))
    length, kind = spec
    if kind == B.TLV:
        inner = draw(tlv_objects())
        return b"\x06" + _ber(len(inner)) + inner
    if kind == B.TOTALS and draw(st.booleans()):
        v = draw(bcd_bytes.filter(lambda b: len(b) >= 4))[:4] + b"".join(
            bytes([draw(u8)]) + draw(bcd_bytes.filter(lambda b: len(b) >= 6))[:6] for _ in range(7))
    elif kind in (B.TEXT, B.TRACK1):
        v = draw(st.one_of(text_bytes, st.just(b"B4761739001010010^DOE/J^2512")))
    elif kind in (B.PAN, B.TRACK):
        v = draw(nibble_bytes)
    elif kind == B.AID:
        v = draw(st.one_of(aid_bytes, bcd_bytes, st.binary(max_size=8)))
    else:
        v = draw(st.one_of(bcd_bytes, st.binary(max_size=8)))
    if length > 0:
        v = (v + bytes(length))[:length] if draw(st.integers(0, 10)) else v
        return bytes([tag]) + v
    k = -length
    return bytes([tag]) + (_llvar(v, k) if draw(st.integers(0, 15)) else bytes([0xF1, 0x3A, 0xF0][:k])) + v


APDU_COMMANDS = sorted(set(B.LAYOUTS) | {(0x84, 0x83), (0x84, 0x9C), (0x07, 0x77)})


@st.composite
def decoded_apdu(draw):
    cls, instr = draw(st.sampled_from(APDU_COMMANDS))
    layout = B.layout_of(cls, instr)
    head = b""
    if layout == B.L_PASSWORD:
        head = b"\x12\x34\x56"
    elif layout == B.L_REGISTRATION:
        head = b"\x12\x34\x56\xba" + draw(st.sampled_from([b"", b"\x09\x78", b"\x0a\x78"]))
    elif layout == B.L_STATUS:
        head = bytes([draw(u8)]) + draw(st.sampled_from([b"", b"\x05", b"\x06"]))
    elif layout == B.L_PRINT_LINE:
        return bytes([cls, instr]), b"\x00" + draw(text_bytes)
    elif layout == B.L_RESULT:
        head = bytes([draw(u8)])
    head = head[:draw(st.integers(0, len(head)))] if draw(st.integers(0, 12)) == 0 else head
    body = b"".join(draw(st.lists(bmp(), max_size=6)))
    return bytes([cls, instr]), head + body


@st.composite
def apdu_dialogue(draw, serial: bool):
    out = b""
    for _ in range(draw(st.integers(1, 5))):
        ci, data = draw(decoded_apdu())
        n = len(data)
        length = bytes([n]) if n < 0xFF and draw(st.integers(0, 5)) else b"\xff" + n.to_bytes(2, "little")
        if serial and draw(st.integers(0, 8)) == 0:
            length = bytes([draw(st.integers(0, 254))])  # disagrees with the data
        a = ci + length + data
        out += (frame(a) + draw(st.sampled_from([b"", b"\x06"]))) if serial else a
    return out


@settings()
@given(st.data(), cuts, st.booleans(), st.booleans())
def test_apdu_dialogues(data, cut, serial, strict):
    stream = data.draw(apdu_dialogue(serial))
    check_all("serial" if serial else "tcp", stream, cut, strict)


@settings()
@given(st.binary(max_size=300), cuts, st.booleans())
def test_random_apdu_bodies(body, cut, strict):
    for ci in ((0x04, 0x0F), (0x04, 0xFF), (0x06, 0xD3), (0x06, 0x00)):
        stream = bytes(ci) + b"\xff" + len(body).to_bytes(2, "little") + body
        check_all("tcp", stream, cut, strict)


# ---------------------------------------------------------------------------------------------- properties

@settings()
@given(st.binary(max_size=400), cuts, st.sampled_from(["serial", "tcp"]))
def test_random_bytes(data, cut, framing):
    check_all(framing, data, cut)


@settings()
@given(serial_stream(), cuts)
def test_serial_grammar(data, cut):
    check_all("serial", data, cut)


@settings()
@given(tcp_stream(), cuts)
def test_tcp_grammar(data, cut):
    check_all("tcp", data, cut)


@settings()
@given(st.binary(max_size=200), st.integers(0, 0xFFFF), st.integers(0, 0xFF))
def test_checksums_match_their_bitwise_definitions(data, start, start8):
    assert lib.tw_crc16_kermit(start, data, len(data)) == kermit(data, start) == T.crc16_kermit(data, start)
    assert lib.tw_crc16_xmodem(start, data, len(data)) == xmodem(data, start) == checksums.crc16_xmodem(data, start)
    lrc = start8
    total = start8
    for b in data:
        lrc ^= b
        total = (total + b) & 0xFF
    assert lib.tw_lrc_xor(start8, data, len(data)) == lrc == checksums.lrc_xor(data, start8)
    assert lib.tw_sum8(start8, data, len(data)) == total == checksums.sum8(data, start8)
    # incremental: any split gives the same value
    k = len(data) // 3
    assert lib.tw_crc16_kermit(lib.tw_crc16_kermit(0, data[:k], k), data[k:], len(data) - k) == kermit(data)


# ------------------------------------------------------------------------------------------ fixed cases

def test_check_values():
    assert lib.tw_crc16_kermit(0, b"123456789", 9) == 0x2189
    assert lib.tw_crc16_xmodem(0, b"123456789", 9) == 0x31C3


def test_zvt_error_codes_match_the_c_list():
    c = {ffi.string(lib.tw_error_name(k)).decode(): ffi.string(lib.tw_error_reason(k)).decode()
         for k in range(1, lib.tw_error_count())}
    for code, reason in T.ERRORS.items():
        assert c.get(code) == reason, code


@pytest.mark.parametrize("cls", BACKENDS)
def test_registration_frame(cls):
    reg = bytes.fromhex("060006000000080978")  # password 000000, config 08, EUR
    assert events(run(cls, "serial", [frame(reg), b"\x06"])) == [
        {"type": "zvt.apdu", "data": {"class": 6, "instr": 0, "name": "registration", "length": 6, "config": 8,
                                      "currency": "0978"}},
        {"type": "payment.request", "data": {"protocol": "zvt", "kind": "registration", "currency": "978"}},
        {"type": "link.ack", "data": {}},
    ]


@pytest.mark.parametrize("cls", BACKENDS)
@pytest.mark.parametrize("size, code", [(65535, None), (65536, "frame_too_long")])
def test_frame_length_bound(cls, size, code):
    # 5 + 65535 unstuffed bytes is the largest frame; one byte more is frame_too_long (here a stuffed DLE)
    body = bytes((0x06, 0xD3, 0xFF, 0xFF, 0xFF)) + b"\x10" * size
    out = events(run(cls, "serial", [frame(body) + b"\x15"]))
    if code is None:
        assert out[1]["data"]["length"] == 65535 and out[1]["type"] == "zvt.apdu"
        assert [e["type"] for e in out] == ["protocol.error", "zvt.apdu", "link.nak"]  # bmp_overrun: 10 10 ...
    else:
        assert out[0]["data"]["code"] == "frame_too_long" and out[0]["data"]["raw"] == b"\x10\x02"
        assert out[0]["data"]["offset"] == 0
        assert [e["type"] for e in out] == ["protocol.error", "link.nak"]


def test_frame_length_bound_agrees_split():
    body = bytes((0x06, 0xD3, 0xFF, 0x00, 0x00)) + bytes(range(256)) * 257
    data = frame(body[:65541]) + frame(body[:65540]) + b"\x06"
    outs = [run(cls, "serial", split(data, [3, 1000, 65539, 65542, 65546, 70000, 131000])) for cls in BACKENDS]
    assert outs[0] == outs[1]


@pytest.mark.parametrize("cls", BACKENDS)
def test_no_data_byte_reaches_an_event(cls):
    secret = b"\x47\x11\x11\x11\x11\x11\x11\x11"  # a PAN-like marker
    streams = [("serial", frame(b"\x06\x01\x03" + secret)),
               ("serial", frame(b"\x06\x01\x03" + secret)[:-3]),
               ("serial", b"\x10\x02\x06\x01\x03" + secret + b"\x10\x41"),
               ("tcp", b"\x06\x01\x20" + secret)]
    for framing, data in streams:
        out = run(cls, framing, [data])
        assert secret[:3] not in out, (framing, out)


@pytest.mark.parametrize("framing", ["serial", "tcp"])
def test_wrapper(framing):
    d = NativeZvtLinkDecoder(framing)
    assert d.feed(b"") == b""
    a = d.feed(bytearray(b"\x06\x15"))
    b = d.feed(memoryview(b"\x06\x15\x00"))
    whole = run(NativeZvtLinkDecoder, framing, [b"\x06\x15\x06\x15\x00"])
    assert a + b + d.close() == whole
    with pytest.raises(DecoderClosed):
        d.feed(b"\x06")
    with pytest.raises(DecoderClosed):
        d.close()


def test_wrapper_rejects_a_bad_framing():
    with pytest.raises(ValueError):
        NativeZvtLinkDecoder("usb")


def test_large_output_is_trimmed():
    d = NativeZvtLinkDecoder("serial")
    out = d.feed(b"\x06" * 200_000)
    assert len(out) == 200_000 * len(msgpack.packb({"type": "link.ack", "data": {}}))
    assert d.feed(b"\x15") == msgpack.packb({"type": "link.nak", "data": {}})

"""Differential test: the C ISO 8583 and lenframe decoders and their pure-Python twins give byte-identical
msgpack. Streams are random bytes, or built from a grammar of framed messages for every framing and built-in
spec (valid messages with random bitmaps, and near-valid ones: bad length digits, cut fields, extra bytes,
bad MTIs, bad hex, broken TLV, prefix junk, truncated tails). Each stream is split at random points; each backend
must also give the same output fed whole and byte by byte. Contract: docs/protocols/iso8583.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("protocols.iso8583.native", reason="the C core is not built (make native)")

from protocols.decoder import unpack_events  # noqa: E402
from protocols.iso8583 import spec as S  # noqa: E402
from protocols.iso8583 import tables as T  # noqa: E402
from protocols.iso8583.native import NativeIso8583Decoder, NativeLenframeDecoder  # noqa: E402
from protocols.iso8583.reference import ReferenceIso8583Decoder, ReferenceLenframeDecoder  # noqa: E402
from streams import split  # noqa: E402

import os  # noqa: E402

SPECS = ["iso87-binary", "iso87-ascii", "iso87-bcd",
         os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors", "iso8583", "ebcdic.json")]
FRAMINGS = list(T.FRAMINGS)
u8 = st.integers(0, 255)


def run(make, chunks) -> bytes:
    d = make()
    return b"".join(d.feed(c) for c in chunks) + d.close()


def check(makers, data: bytes, cuts: list[int]) -> None:
    chunks = split(data, cuts)
    outs = [run(m, chunks) for m in makers]
    assert outs[0] == outs[1], (data.hex(), [len(c) for c in chunks])
    for m, out in zip(makers, outs):
        assert run(m, [data]) == out
        assert run(m, [data[i:i + 1] for i in range(len(data))]) == out


def iso_makers(spec_name, framing, header, strict):
    spec = S.load(spec_name)
    return (lambda: NativeIso8583Decoder(spec, framing, header, strict),
            lambda: ReferenceIso8583Decoder(spec, framing, header, strict))


# ------------------------------------------------------------------------------------------------ grammar


@st.composite
def field_bytes(draw, f, n: int):
    """Wire bytes of field n under spec field f, mostly valid, sometimes broken."""
    if f.data == 2:          # bcd
        ln = draw(st.integers(0 if f.kind else f.max, f.max if f.kind else f.max)) if f.kind else f.max
        ln = min(ln, 40) if f.kind else ln
        wire = (ln + 1) // 2 if f.digits else ln
        data = draw(st.one_of(st.binary(min_size=wire, max_size=wire),
                              st.just(bytes.fromhex(("4761739001010010D2812" * 8)[:2 * wire].ljust(2 * wire, "0")))))
    else:
        hi = min(f.max, 60) if f.kind else f.max
        ln = draw(st.integers(0, hi)) if f.kind else f.max
        if f.tlv:
            tlv = draw(st.sampled_from([
                bytes.fromhex("9F02060000000012344F07A0000000031010"),
                bytes.fromhex("5A0847617390010100105F2403281231570F4761739001010010D2812201"),
                bytes.fromhex("700C5A08476173900101001084015F"),
                bytes.fromhex("9F0206000000"), b"", bytes.fromhex("9F0206000000001234" * 2),
                bytes.fromhex("7F81020000"), bytes.fromhex("DF8F8F8F0100"), bytes.fromhex("5A80"),
                bytes.fromhex("70037002700070"),
            ]))
            data = tlv.hex().upper().encode() if f.data == 4 else tlv
            if draw(st.integers(0, 9)) == 0:
                data = data[:-1]
            ln = len(data) if f.kind else f.max
            data = data[:ln].ljust(ln, b"0")
        elif f.data == 3:
            data = draw(st.binary(min_size=ln, max_size=ln))
        elif f.data == 4:
            data = draw(st.text("0123456789abcdefABCDEFg", min_size=ln, max_size=ln)).encode()
        else:
            alphabet = "0123456789 -=^BDX%" if n in (2, 35, 36, 45) else "0123456789 -ABCxyz\u00e9"
            text = draw(st.text(alphabet, min_size=ln, max_size=ln))
            if n in (2, 35, 36, 45) and draw(st.booleans()):
                text = ("B" if n == 45 else "") + "4761739001010010" + ("^" if n == 45 else "=") + "2812"
                text = text[:ln].ljust(ln, "0")
            data = text.encode("latin-1")
            if f.data == 1:
                data = bytes(b ^ 0x80 for b in data)
            if len(data) != ln:
                data = data[:ln]
        if f.digits:
            ln = 2 * len(data)
    if not f.kind:
        return data
    count = ln if (f.data == 2 and f.digits) else len(data)
    if f.prefix == 0:
        pre = b"%0*d" % (f.prefix_width, count)
    elif f.prefix == 1:
        pre = bytes(0xF0 + int(c) for c in "%0*d" % (f.prefix_width, count))
    elif f.prefix == 2:
        pre = bytes.fromhex("%0*d" % (2 * f.prefix_width, count))
    else:
        pre = count.to_bytes(f.prefix_width, "big")
    if draw(st.integers(0, 14)) == 0:
        pre = pre[:-1] + b"X"           # a bad length digit
    return pre + data


@st.composite
def message(draw, spec_name: str):
    spec = S.load(spec_name)
    defined = [n for n in range(2, 129) if spec.fields[n] is not None]
    nums = sorted(draw(st.sets(st.sampled_from(defined), max_size=10)))
    if draw(st.integers(0, 9)) == 0:
        nums = sorted(set(nums) | {draw(st.integers(2, 128))})     # maybe an unknown field
    bm = bytearray(16)
    for n in nums:
        bm[(n - 1) // 8] |= 0x80 >> ((n - 1) % 8)
    if any(n > 64 for n in nums):
        bm[0] |= 0x80
    mti_digits = draw(st.sampled_from(["0200", "0210", "0100", "0110", "0400", "0410", "0800", "0220"]))
    if spec.mti == 2:
        mti = bytes.fromhex(mti_digits)
    elif spec.mti == 1:
        mti = bytes(0xF0 + int(c) for c in mti_digits)
    else:
        mti = mti_digits.encode()
    nb = 16 if bm[0] & 0x80 else 8
    bitmap = bm[:nb].hex().upper().encode() if spec.bitmap_hex else bytes(bm[:nb])
    body = mti + bitmap
    for n in nums:
        f = spec.fields[n]
        if f is None:
            body += draw(st.binary(max_size=6))
            continue
        body += draw(field_bytes(f, n))
    fault = draw(st.integers(0, 11))
    if fault == 0:
        body = body[:draw(st.integers(0, len(body)))]
    elif fault == 1:
        body += draw(st.binary(min_size=1, max_size=4))
    elif fault == 2:
        body = b"02A0" + body[4:]
    return body


def frame(body: bytes, framing: str, header: bytes) -> bytes:
    body = header + body
    n = len(body)
    prefix = {"len2": lambda: n.to_bytes(2, "big"), "len4": lambda: n.to_bytes(4, "big"),
              "ascii4": lambda: b"%04d" % n, "hex4": lambda: b"%04x" % n, "bcd2": lambda: bytes.fromhex("%04d" % n),
              "vmlh": lambda: n.to_bytes(2, "big") + b"\0\0", "none": lambda: b""}[framing]
    return prefix() + body


@st.composite
def iso_stream(draw):
    spec_name = draw(st.sampled_from(SPECS))
    framing = draw(st.sampled_from(FRAMINGS))
    header = draw(st.sampled_from([b"", b"\x60\x00\x03\x00\x00"]))
    parts = []
    for _ in range(1 if framing == "none" else draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            parts.append(draw(st.binary(max_size=8)))               # junk between frames
        else:
            parts.append(frame(draw(message(spec_name)), framing, header))
    data = b"".join(parts)
    if framing != "none" and draw(st.booleans()):
        tail = frame(draw(message(spec_name)), framing, header)
        data += tail[:draw(st.integers(0, len(tail)))]
    return spec_name, framing, len(header), data


cuts = st.lists(st.integers(0, 1 << 16), max_size=8)


# ------------------------------------------------------------------------------------------------ properties


@given(iso_stream(), cuts, st.booleans())
def test_iso_grammar(stream, cut, strict):
    spec_name, framing, header, data = stream
    check(iso_makers(spec_name, framing, header, strict), data, cut)


@given(st.binary(max_size=400), cuts, st.sampled_from(SPECS), st.sampled_from(FRAMINGS), st.sampled_from([0, 5]),
       st.booleans())
def test_iso_random_bytes(data, cut, spec_name, framing, header, strict):
    check(iso_makers(spec_name, framing, header, strict), data, cut)


@given(st.binary(max_size=400), cuts, st.sampled_from([f for f in FRAMINGS if f != "none"]), st.sampled_from([0, 2]))
def test_lenframe_random_bytes(data, cut, framing, header):
    check((lambda: NativeLenframeDecoder(framing, header), lambda: ReferenceLenframeDecoder(framing, header)),
          data, cut)


@given(st.lists(st.binary(max_size=60), max_size=5), cuts, st.sampled_from([f for f in FRAMINGS if f != "none"]),
       st.binary(max_size=6))
def test_lenframe_frames(payloads, cut, framing, junk):
    data = junk + b"".join(frame(p, framing, b"") for p in payloads)
    check((lambda: NativeLenframeDecoder(framing, 0), lambda: ReferenceLenframeDecoder(framing, 0)), data, cut)


def test_frame_bounds_agree():
    """A 65535-byte iso8583 frame is decoded; a lenframe frame of exactly 1 MiB passes, one byte more does not."""
    big = b"x" * (1 << 20)
    for framing_len, ok in ((1 << 20, True), ((1 << 20) + 1, False)):
        data = framing_len.to_bytes(4, "big") + big[:framing_len] + (b"x" if not ok else b"")
        outs = [run(m, [data]) for m in (lambda: NativeLenframeDecoder("len4", 0),
                                         lambda: ReferenceLenframeDecoder("len4", 0))]
        assert outs[0] == outs[1]
        first = unpack_events(outs[0])[0]
        assert first["type"] == ("ecr.frame" if ok else "protocol.error")
    body = b"0800" + bytes(8) + b"x" * (65535 - 12)
    outs = [run(m, [frame(body, "len2", b"")]) for m in iso_makers("iso87-binary", "len2", 0, False)]
    assert outs[0] == outs[1] and b"extra_data" in outs[0]
    stream = b"0800" + bytes(8) + b"x" * 65536
    outs = [run(m, [stream]) for m in iso_makers("iso87-binary", "none", 0, False)]
    assert outs[0] == outs[1] and b"length_too_large" in outs[0]


# ------------------------------------------------------------------------------------ large TLV levels
# A custom LLLL TLV field holds up to ~2,500 elements at one level. C checks a level for a repeated tag by
# comparing each new tag with the ones before it up to 32 elements and by sorting a larger level's tags
# (O(k log k)); Python keeps a set. Both must answer alike at and around the switch (iso8583.md section 5).

BIG_TLV_SPEC = {"name": "big-tlv", "mti": "ascii", "bitmap": "binary",
                "fields": {"3": {"length": "fixed", "max": 6, "data": "ascii"},
                           "60": {"length": "LLLL", "max": 9999, "prefix": "ascii", "data": "binary", "tlv": True}}}


def big_tlv_message(tlv: bytes) -> bytes:
    body = b"0200" + bytes.fromhex("2000000000000010") + b"000000" + b"%04d" % len(tlv) + tlv
    return len(body).to_bytes(2, "big") + body


def tag3(i: int) -> bytes:
    """A distinct 3-byte tag for i < 16384 (1F, then two bytes: the first with its top bit set)."""
    return bytes([0x1F, 0x80 | (i >> 7), i & 0x7F])


@pytest.fixture(scope="module")
def big_tlv_makers(tmp_path_factory):
    import json
    path = tmp_path_factory.mktemp("spec") / "big-tlv.json"
    path.write_text(json.dumps(BIG_TLV_SPEC))
    return iso_makers(str(path), "len2", 0, False)


@pytest.mark.parametrize("k", [1, 2, 31, 32, 33, 34, 100, 2499])
@pytest.mark.parametrize("repeat", [None, "first-last", "last-two", "middle"])
def test_large_tlv_levels_agree(big_tlv_makers, k, repeat):
    tags = [tag3(i) for i in range(k)]
    if repeat == "first-last" and k > 1:
        tags[-1] = tags[0]
    elif repeat == "last-two" and k > 1:
        tags[-1] = tags[-2]
    elif repeat == "middle" and k > 2:
        tags[k // 2] = tags[k // 2 - 1]
    data = big_tlv_message(b"".join(t + b"\x00" for t in tags))
    outs = [run(m, [data]) for m in big_tlv_makers]
    assert outs[0] == outs[1]
    events = unpack_events(outs[0])
    repeated = len(set(tags)) < len(tags)
    assert [e["data"]["code"] for e in events if e["type"] == "protocol.error"] == (["bad_tlv"] if repeated else [])
    msg = next(e["data"] for e in events if e["type"] == "iso8583.message")
    assert ("60" in msg["fields"]) == (not repeated)
    if not repeated:
        assert len(msg["fields"]["60"]) == k


@pytest.mark.parametrize("repeat", [False, True])
def test_large_nested_tlv_level_agrees(big_tlv_makers, repeat):
    """A constructed tag (BF01) holding 600 elements next to 600 top-level ones: each level is checked apart (the
    same tag at two levels is not a repeat); a repeat inside the nested level is."""
    inner_tags = [tag3(i) for i in range(600)]
    if repeat:
        inner_tags[599] = inner_tags[0]
    inner = b"".join(t + b"\x00" for t in inner_tags)
    outer = b"".join(tag3(i) + b"\x00" for i in range(600)) + b"\xbf\x01\x82" + len(inner).to_bytes(2, "big") + inner
    data = big_tlv_message(outer)
    outs = [run(m, [data]) for m in big_tlv_makers]
    assert outs[0] == outs[1]
    codes = [e["data"]["code"] for e in unpack_events(outs[0]) if e["type"] == "protocol.error"]
    assert codes == (["bad_tlv"] if repeat else [])

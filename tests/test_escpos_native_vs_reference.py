"""Differential test: the C decoder and the pure-Python reference give byte-identical msgpack.

Streams are fully random bytes, or built from a grammar of valid and near-valid ESC/POS (every command family of
docs/protocols/escpos.md, code-table switches, Kanji, images, barcodes, 2D codes, unknown and truncated
commands); printer replies likewise, interleaved with note_request() calls. Each stream is split at random
points, and both backends must agree for both directions, with and without image bits, on every profile.
Each backend must also give the same output for the stream fed whole and fed byte by byte.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

native = pytest.importorskip("protocols.escpos.native", reason="the C core is not built (make native)")

from protocols.escpos.native import NativeEscposDecoder  # noqa: E402
from protocols.escpos.profiles import load_profile  # noqa: E402
from protocols.escpos.reference import ReferenceEscposDecoder  # noqa: E402
from streams import split  # noqa: E402

PROFILES = ("generic", "tm-t88")
BACKENDS = (NativeEscposDecoder, ReferenceEscposDecoder)
REQUEST_KINDS = ("printer", "offline", "error", "paper", "ink", "peeler", "interface", "drawer", "paper_sensor",
                 "id", "asb", "asb_ink", "counter", "code2d_size", "process_id", "realtime_asb", "clear_buffer",
                 "asb_ext", "something_else")

u8 = st.integers(0, 255)


def le16(n: int) -> bytes:
    return bytes((n & 0xFF, n >> 8 & 0xFF))


def le32(n: int) -> bytes:
    return n.to_bytes(4, "little")


# ------------------------------------------------------------------------------------------ to_device grammar

ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40).map(
    lambda s: s.encode("ascii"))
high_text = st.binary(min_size=1, max_size=12).map(lambda b: bytes(x | 0x80 for x in b))
long_text = st.integers(1000, 1100).map(lambda n: b"x" * n)
controls = st.sampled_from([b"\n", b"\r", b"\r\n", b"\t", b"\x0c", b"\x18", b"\x00", b"\x07", b"\x01", b"\x1f",
                            b"\x1b\x0c"])
text = st.one_of(ascii_text, ascii_text, high_text, long_text, controls)

# fixed-length commands: prefix, function, parameter count (known values, with random parameters)
FIXED = [
    (0x1B, fn, n) for fn, n in {0x20: 1, 0x21: 1, 0x24: 2, 0x25: 1, 0x2D: 1, 0x32: 0, 0x33: 1, 0x3C: 0, 0x3F: 1,
                                0x40: 0, 0x42: 2, 0x45: 1, 0x47: 1, 0x4A: 1, 0x4B: 1, 0x4C: 0, 0x4D: 1, 0x52: 1,
                                0x53: 0, 0x54: 1, 0x55: 1, 0x56: 1, 0x57: 8, 0x5C: 2, 0x61: 1, 0x63: 2, 0x64: 1,
                                0x65: 1, 0x69: 0, 0x6D: 0, 0x70: 3, 0x72: 1, 0x74: 1, 0x75: 1, 0x76: 0,
                                0x7B: 1}.items()
] + [
    (0x1D, fn, n) for fn, n in {0x21: 1, 0x23: 1, 0x24: 2, 0x2F: 1, 0x3A: 0, 0x42: 1, 0x48: 1, 0x49: 1, 0x4C: 2,
                                0x50: 2, 0x54: 1, 0x56: 1, 0x57: 2, 0x5C: 2, 0x5E: 3, 0x61: 1, 0x62: 1, 0x63: 0,
                                0x66: 1, 0x67: 4, 0x68: 1, 0x6A: 1, 0x72: 1, 0x77: 1, 0x7A: 3}.items()
] + [
    (0x1C, fn, n) for fn, n in {0x21: 1, 0x26: 0, 0x2D: 1, 0x2E: 0, 0x3F: 2, 0x43: 1, 0x53: 2, 0x57: 1,
                                0x70: 2}.items()
]


@st.composite
def fixed_command(draw):
    prefix, fn, n = draw(st.sampled_from(FIXED))
    params = draw(st.one_of(st.binary(min_size=n, max_size=n),
                            st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 7, 8, 16, 17, 19, 32, 33, 48, 49, 50, 51,
                                                      52, 65, 66, 97, 98, 99, 0x77, 0x88, 255]),
                                     min_size=n, max_size=n).map(bytes)))
    return bytes((prefix, fn)) + params


@st.composite
def unknown_command(draw):
    prefix = draw(st.sampled_from([0x1B, 0x1D, 0x1C, 0x10]))
    return bytes((prefix, draw(u8)))


code_tables = st.builds(lambda n: b"\x1bt" + bytes([n]), st.one_of(st.sampled_from([0, 1, 2, 16, 19, 40, 53]), u8))
charsets = st.builds(lambda n: b"\x1bR" + bytes([n]), st.one_of(st.integers(0, 17), u8))
kanji = st.one_of(
    st.just(b"\x1c&"), st.just(b"\x1c."),
    st.builds(lambda lead, t: bytes([lead, t]), st.integers(0x81, 0xFE), st.integers(0x20, 0xFF)),
    st.integers(0x80, 0xFF).map(lambda b: bytes([b])),
)
selects = st.sampled_from([b"\x1b=\x00", b"\x1b=\x01", b"\x1b=\x02", b"\x1b=\x03", b"\x1b", b"\x1b\x1b=\x01",
                           b"\x10", b"\x10\x04\x01", b"\x10\x05\x02", b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08"])


@st.composite
def bit_image(draw):
    m = draw(st.sampled_from([0, 1, 32, 33, 2, 48]))
    n = draw(st.integers(0, 20))
    size = n * (3 if m in (32, 33) else 1)
    data = draw(st.binary(min_size=size, max_size=size))
    return b"\x1b*" + bytes([m]) + le16(n) + data + draw(st.sampled_from([b"", b"\n", b"\n\n", b"x"]))


@st.composite
def raster(draw):
    fn = draw(st.sampled_from([b"\x1dv", b"\x1dQ"]))
    third = draw(st.sampled_from([0x30, 0x30, 0x31]))
    x, y = draw(st.integers(0, 4)), draw(st.integers(0, 6))
    if draw(st.integers(0, 9)) == 0:
        x, y = 4096, 2048  # image_too_large: the (absent) payload is skipped
    data = draw(st.binary(min_size=min(x * y, 24), max_size=min(x * y, 24)))
    return fn + bytes([third, draw(u8)]) + le16(x) + le16(y) + data


@st.composite
def graphics(draw):
    fn = draw(st.sampled_from([0x70, 0x71, 0x32, 0x45, 0x55, 0x30, 0x41]))
    x, y = draw(st.integers(0, 20)), draw(st.integers(0, 20))
    if fn == 0x70:
        body = bytes([0x30, fn, 0x30, 1, 1, 0x31]) + le16(x) + le16(y) + bytes(((x + 7) // 8) * y)
    elif fn == 0x71:
        body = bytes([0x30, fn, 0x30, 1, 1]) + le16(x) + le16(y) + draw(
            st.binary(min_size=x * ((y + 7) // 8), max_size=x * ((y + 7) // 8)))
    elif fn in (0x45, 0x55):
        body = bytes([0x30, fn]) + draw(st.binary(min_size=0, max_size=4))
    else:
        body = bytes([0x30, fn])
    cut = draw(st.sampled_from([0, 0, 0, 1, 3, -1]))  # a payload of the wrong size: bad_length
    if cut > 0:
        body = body[:-cut] if len(body) > cut else body
    elif cut < 0:
        body += b"\xaa"
    print_it = draw(st.sampled_from([b"", b"\x1d(L\x02\x000\x32", b"\x1d8L\x02\x00\x00\x000\x32"]))
    if draw(st.booleans()):
        return b"\x1d(L" + le16(len(body)) + body + print_it
    third = draw(st.sampled_from([0x4C, 0x4C, 0x4D]))
    size = len(body) if draw(st.integers(0, 7)) else 0x7FFFFFFF
    return b"\x1d8" + bytes([third]) + le32(size) + body + print_it


@st.composite
def downloaded(draw):
    x, y = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    data = draw(st.binary(min_size=x * y * 8, max_size=x * y * 8))
    return b"\x1d*" + bytes([x, y]) + data + draw(st.sampled_from([b"", b"\x1d/\x00", b"\x1d/\x00\x1d/\x03"]))


@st.composite
def bmp_graphics(draw):
    """GS D with a BMP file: good, wrong function, wrong signature, impossible or oversized file size."""
    fn = draw(st.sampled_from([0x43, 0x53, 0x43, 0x44]))
    body = draw(st.binary(max_size=40))
    signature = draw(st.sampled_from([b"BM", b"BM", b"BX"]))
    size = draw(st.sampled_from([6 + len(body), 6 + len(body), 5, 13, 14, 0x7FFFFFFF]))
    return b"\x1dD0" + bytes([fn]) + b"0AB11" + signature + le32(size) + body


@st.composite
def barcode(draw):
    m = draw(st.one_of(st.integers(0, 6), st.integers(65, 79), st.sampled_from([7, 64, 80, 200])))
    if m <= 6:
        alphabet = b"0123456789" if m not in (4, 6) else b" $%*+-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd:"
        data = bytes(draw(st.lists(st.sampled_from(list(alphabet)), max_size=20)))
        if draw(st.integers(0, 5)) == 0:
            data += bytes([draw(u8)])
        if draw(st.integers(0, 12)) == 0:
            data = b"1" * draw(st.integers(250, 260))
        end = draw(st.sampled_from([b"\x00", b"\x00", b""]))
        return b"\x1dk" + bytes([m]) + data + end
    code128 = st.lists(st.sampled_from([b"{A", b"{B", b"{C", b"{S", b"{1", b"{2", b"{3", b"{4", b"{{", b"{",
                                        b"{x", b"12", b"\x05", b"\x63", b"\x64", b"\xe9", b"AB"]), max_size=8)
    data = b"".join(draw(code128)) if m in (73, 74, 79) else draw(st.binary(max_size=12))
    data = data[:255]
    return b"\x1dk" + bytes([m, len(data)]) + data


@st.composite
def code2d(draw):
    cn = draw(st.sampled_from([0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37]))
    fn = draw(st.sampled_from([0x50, 0x51, 0x52, 0x41, 0x43, 0x45]))
    if fn == 0x50:
        data = draw(st.one_of(st.text(max_size=20).map(lambda s: s.encode()), st.binary(max_size=20)))
        if draw(st.integers(0, 15)) == 0:
            data = b"9" * 7090
        payload = bytes([cn, fn, 0x30]) + data
    else:
        payload = bytes([cn, fn, draw(u8)])
    payload = payload[:draw(st.sampled_from([len(payload)] * 4 + [0, 1, 2]))]
    return b"\x1d(k" + le16(len(payload)) + payload


@st.composite
def paren(draw):
    prefix = draw(st.sampled_from([b"\x1b(", b"\x1d(", b"\x1c("]))
    letter = draw(st.sampled_from(list(b"AYCDEHKMNPQzLe") + [draw(u8)]))
    payload = draw(st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"0\x02", b"0\x32", b"0\x01", b"0\x02\x02", b"0", b"3\x07", b"\x30\x30\x00"]),
    ))
    declared = len(payload) if draw(st.integers(0, 5)) else draw(st.integers(0, 70))
    return prefix + bytes([letter]) + le16(declared) + payload


@st.composite
def odd_lengths(draw):
    kind = draw(st.integers(0, 4))
    if kind == 0:  # ESC D tabs
        values = draw(st.lists(st.integers(0, 255), max_size=36))
        return b"\x1bD" + bytes(values)
    if kind == 1:  # ESC & y c1 c2 then x + y*x per character
        y = draw(st.integers(0, 4))
        c1 = draw(st.sampled_from([31, 32, 65, 126, 127]))
        c2 = c1 + draw(st.integers(-1, 2))
        out = b"\x1b&" + bytes([y, c1 & 0xFF, c2 & 0xFF])
        for _ in range(draw(st.integers(0, 3))):
            x = draw(st.sampled_from([0, 1, 2, 12, 13]))
            out += bytes([x]) + bytes(min(y * x, 40))
        return out
    if kind == 2:  # FS q n blocks
        n = draw(st.integers(0, 2))
        out = b"\x1cq" + bytes([n])
        for _ in range(n):
            x, y = draw(st.integers(0, 2)), draw(st.integers(0, 2))
            out += le16(x) + le16(y) + bytes(x * y * 8)
        return out
    if kind == 3:  # FS 2 c1 c2 + 72, FS g 1/2
        if draw(st.booleans()):
            return b"\x1c2\xfe\xa1" + bytes(draw(st.sampled_from([72, 10])))
        m = draw(st.sampled_from([0x31, 0x32, 0x33]))
        k = draw(st.integers(0, 5))
        return b"\x1cg" + bytes([m, 0, 0, 0, 0, 0]) + le16(k) + bytes(k)
    # DLE EOT / DLE DC4 / GS V / GS g with every branch
    return draw(st.sampled_from([
        b"\x10\x04\x01", b"\x10\x04\x04", b"\x10\x04\x07\x01", b"\x10\x04\x12\x01", b"\x10\x04\x05",
        b"\x10\x14\x01\x00\x05", b"\x10\x14\x01\x01\x05", b"\x10\x14\x01\x02\x05", b"\x10\x14\x02\x01\x08",
        b"\x10\x14\x03\x01\x02\x03\x04\x05", b"\x10\x14\x07\x01", b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08",
        b"\x10\x14\x09", b"\x1dV\x00", b"\x1dV\x01", b"\x1dVA\x10", b"\x1dVh\x03", b"\x1dV\x02",
        b"\x1dg2\x00\x10\x27", b"\x1dg0\x00\x00\x00", b"\x1dg1", b"\x1dr\x01", b"\x1dr\x03", b"\x1b=\x01",
    ]))


@st.composite
def scenario(draw):
    """Sequences a random mix of tokens rarely produces: store then print a 2D code, an over-long function-A
    barcode, a UTF-8 switch, a styled line."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        cn = draw(st.sampled_from([0x30, 0x31, 0x32, 0x35, 0x36]))
        data = draw(st.one_of(st.text(max_size=30).map(lambda s: s.encode()), st.binary(max_size=30)))
        store = b"\x1d(k" + le16(len(data) + 3) + bytes([cn, 0x50, 0x30]) + data
        return store + draw(st.sampled_from([b"", b"abc", b"\x1b@"])) + b"\x1d(k\x03\x00" + bytes([cn, 0x51, 0x30])
    if kind == 1:
        m = draw(st.integers(0, 6))
        return b"\x1dk" + bytes([m]) + b"1" * draw(st.integers(254, 258)) + draw(st.sampled_from([b"\x00", b"x"]))
    if kind == 2:
        return b"\x1c(C" + draw(st.sampled_from([b"\x02\x000\x02", b"\x02\x000\x32", b"\x03\x000\x02\x02",
                                                   b"\x02\x000\x01"]))
    if kind == 3:
        styles = st.sampled_from([b"\x1b!\x08", b"\x1b!\xb9", b"\x1bE\x01", b"\x1b-\x02", b"\x1bG\x01",
                                  b"\x1dB\x01", b"\x1bM\x61", b"\x1d!\x77", b"\x1b{\x01", b"\x1bV\x01",
                                  b"\x1b@", b"\x1b!\x00", b"\x1ba\x01"])
        parts = draw(st.lists(st.one_of(styles, ascii_text), max_size=12))
        return b"".join(parts) + b"\n"
    return b"\x1c&" + draw(st.binary(max_size=16).map(lambda b: bytes(x | 0x80 for x in b))) + b"\x1c.\n"


command = st.one_of(fixed_command(), unknown_command(), code_tables, charsets, kanji, selects, bit_image(),
                    raster(), graphics(), downloaded(), bmp_graphics(), barcode(), code2d(), paren(), odd_lengths(),
                    scenario())


@st.composite
def truncated(draw, token):
    """A token cut short (the stream goes on with whatever comes next)."""
    t = draw(token)
    return t[:draw(st.integers(0, max(0, len(t) - 1)))] if t else t


token = st.one_of(text, text, command, command, truncated(command))
to_device_stream = st.lists(token, max_size=30).map(b"".join)
random_stream = st.binary(max_size=600)


# ------------------------------------------------------------------------------------------ from_device grammar

@st.composite
def reply(draw):
    kind = draw(st.integers(0, 9))
    if kind == 0:  # DLE EOT status bytes
        return bytes([draw(u8) & 0x6C | 0x12])
    if kind == 1:  # ASB, XON/XOFF in between, sometimes broken
        body = [draw(u8) & 0x6C | 0x10] + [draw(u8) & 0x6F for _ in range(3)]
        out = bytearray()
        for b in body:
            out.append(b)
            if draw(st.integers(0, 4)) == 0:
                out += draw(st.sampled_from([b"\x11", b"\x13", b"\x11\x13"]))
        if draw(st.integers(0, 4)) == 0:
            out[draw(st.integers(1, len(out) - 1))] = draw(u8)
        return bytes(out)
    if kind == 2:  # one-byte replies
        return bytes([draw(u8) & 0x6F])
    if kind == 3:  # block replies
        header = draw(st.sampled_from([0x5F, 0x3D, 0x37]))
        n = draw(st.one_of(st.integers(0, 10), st.integers(78, 83)))
        body = bytes(draw(st.lists(st.integers(1, 255), min_size=n, max_size=n)))
        return bytes([header]) + body + draw(st.sampled_from([b"\x00", b"\x00", b""]))
    if kind == 4:
        return b"\x39" + draw(st.binary(min_size=0, max_size=3))
    if kind == 5:
        return draw(st.sampled_from([b"\x3b\x30\x00", b"\x3b\x30", b"\x3b", b"\x3b\x31", b"\x3b\x30\x01"]))
    if kind == 6:
        return draw(st.sampled_from([b"\x11", b"\x13"]))
    if kind == 7:  # printer identification reply: text block or one byte
        return draw(st.sampled_from([b"_TM-T88V\x00", b"=EPSON\x00", b"\x20", b"\x02", b"\x42"]))
    return draw(st.binary(min_size=1, max_size=4))


note = st.tuples(st.just("note"), st.one_of(st.sampled_from(REQUEST_KINDS),
                                             st.sampled_from(("id", "printer", "drawer", "paper_sensor"))),
                 st.one_of(st.sampled_from([0, 1, 2, 3, 4, 7, 8, 18, 48, 49, 50, 52, 64, 65, 66, 67, 69]),
                           st.integers(-5, 300)))
feed_op = st.one_of(reply(), st.binary(min_size=1, max_size=20)).map(lambda b: ("feed", b))
from_device_ops = st.lists(st.one_of(note, feed_op, feed_op), max_size=40)


# ------------------------------------------------------------------------------------------ running

def run_to_device(cls, data_chunks, profile: str, images: bool) -> bytes:
    dec = cls("to_device", load_profile(profile), images)
    out = bytearray()
    for chunk in data_chunks:
        out += dec.feed(chunk)
    out += dec.close()
    return bytes(out)


def run_from_device(cls, ops, profile: str) -> bytes:
    dec = cls("from_device", load_profile(profile), False)
    out = bytearray()
    for op in ops:
        if op[0] == "note":
            dec.note_request(op[1], op[2])
        else:
            for chunk in op[1]:
                out += dec.feed(chunk)
    out += dec.close()
    return bytes(out)


def assert_same(data: bytes, cuts: list[int], profile: str, images: bool) -> None:
    chunks = split(data, cuts)
    native_out = run_to_device(NativeEscposDecoder, chunks, profile, images)
    reference_out = run_to_device(ReferenceEscposDecoder, chunks, profile, images)
    assert native_out == reference_out, f"input {data.hex()} split {[len(c) for c in chunks]}"


cuts = st.lists(st.integers(0, 1 << 16), max_size=12)
profiles = st.sampled_from(PROFILES)


@settings()
@given(data=random_stream, cuts=cuts, profile=profiles, images=st.booleans())
def test_random_bytes_to_device(data, cuts, profile, images):
    assert_same(data, cuts, profile, images)


@settings()
@given(data=to_device_stream, cuts=cuts, profile=profiles, images=st.booleans())
def test_grammar_streams_to_device(data, cuts, profile, images):
    assert_same(data, cuts, profile, images)


@settings()
@given(ops=from_device_ops, cuts=cuts, profile=profiles)
def test_replies_from_device(ops, cuts, profile):
    split_ops = [op if op[0] == "note" else ("feed", split(op[1], cuts)) for op in ops]
    assert run_from_device(NativeEscposDecoder, split_ops, profile) == run_from_device(
        ReferenceEscposDecoder, split_ops, profile), f"ops {ops!r}"


@settings()
@given(data=st.one_of(to_device_stream, random_stream), profile=profiles, images=st.booleans())
def test_whole_equals_byte_by_byte_to_device(data, profile, images):
    for cls in BACKENDS:
        whole = run_to_device(cls, [data], profile, images)
        single = run_to_device(cls, [data[i:i + 1] for i in range(len(data))], profile, images)
        assert whole == single, f"{cls.__name__}: input {data.hex()}"


@settings()
@given(ops=from_device_ops, profile=profiles)
def test_whole_equals_byte_by_byte_from_device(ops, profile):
    for cls in BACKENDS:
        whole = run_from_device(cls, [op if op[0] == "note" else ("feed", [op[1]]) for op in ops], profile)
        single = run_from_device(
            cls, [op if op[0] == "note" else ("feed", [op[1][i:i + 1] for i in range(len(op[1]))]) for op in ops],
            profile)
        assert whole == single, f"{cls.__name__}: ops {ops!r}"


EDGE_STREAMS = {
    # GS 8 L raster graphics whose consistent length declares more than 4 MiB: image_too_large, payload skipped
    "graphics too large": b"\x1d8L" + le32(10 + 8192 * 1024) + b"0p0\x01\x011" + le16(65535) + le16(1024)
                          + bytes(100) + b"text\n",
    "column graphics too large": b"\x1d8L" + le32(9 + 65535 * 128) + b"0q0\x01\x01" + le16(65535) + le16(1024)
                                 + bytes(50),
    # ESC D ends after 32 values; the 33rd is decoded as text
    "32 tab stops": b"\x1bD" + bytes(range(1, 34)) + b"\n",
    "tab stops then NUL": b"\x1bD\x08\x10\x00abc\n",
    "tab stop not ascending": b"\x1bD\x08\x08abc\n",
    # a header cut at every possible point of the longest ones
    "ESC ( A with 40 bytes": b"\x1b(A" + le16(40) + bytes(range(40)) + b"x\n",
    "GS 8 L column graphics": b"\x1d8L" + le32(9 + 3 * 2) + b"0q0\x01\x01\x03\x00\x09\x00" + bytes(range(6))
                              + b"\x1d(L\x02\x0002",
    # more than 15 spans (array16) and every style key at once
    "many spans": b"".join(b"\x1bE\x01a\x1bE\x00b" for _ in range(40)) + b"\x1b!\xb9\x1d!\x77\x1bG\x01\x1dB\x01"
                  b"\x1b{\x01\x1bV\x01\x1bM\x61\x1b-\x02all\n",
    # Kanji lead bytes at the end of the stream and before controls
    "kanji leads": b"\x1c&\x81\x40\x81\x0a\x81\x1b@\x81",
    # deselected printer: real-time commands still decoded, an ESC that is not ESC = skipped alone
    "deselected": b"\x1b=\x00abc\x10\x04\x01\x1b\x1b=\x01shown\n\x1b=\x02\x10\x14\x01\x00\x03\x1b",
}


@pytest.mark.parametrize("name", sorted(EDGE_STREAMS))
@pytest.mark.parametrize("images", [False, True])
def test_edge_streams(name, images):
    """Streams the grammar rarely or never produces, split at every point of their first 64 bytes."""
    data = EDGE_STREAMS[name]
    for cut in range(min(len(data), 64) + 1):
        assert_same(data, [cut], "generic", images)
    assert_same(data, list(range(0, len(data), 3)), "tm-t88", images)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("images", [False, True])
def test_large_images_and_groups(profile, images):
    """Image paths too big for the random streams: a group split at 4 MiB, a full-size raster, a long line."""
    stripe = b"\x1b*\x21" + le16(4096) + bytes(range(256)) * 48  # 24-dot stripe, 4096 columns, 12 KiB of rows
    stripes = (stripe + b"\n") * 345  # 345 stripes of 12 KiB exceed 4 MiB: the group is split
    big_raster = b"\x1dv0\x00" + le16(1024) + le16(4096) + bytes(range(256)) * 16384  # exactly 4 MiB
    text_line = b"y" * 3000 + b"\n"
    data = stripes + b"after\n" + big_raster + text_line
    for cut in ([], [7, 1 << 16, 1 << 20, 3 << 20, 4_300_000]):
        assert_same(data, cut, profile, images)

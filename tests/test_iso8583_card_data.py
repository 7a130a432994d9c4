"""Card data never leaks from the ISO 8583 and lenframe decoders (payment.md section 2): messages are built around
random PANs in every place a PAN can sit (field 2, tracks 35/36/45, free text 48 and 102, EMV tags 5A, 57, 56,
9F1F, 9F6B, 9F20, nested in constructed tags, a lenframe payload), also cut short and strict; on both backends
no run of 7 consecutive PAN digits appears in the output, as ASCII digits or as packed BCD, and expiry, PIN block
and cardholder name never appear."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from streams import decode_split

PAN = st.text(alphabet="0123456789", min_size=13, max_size=19)
BACKENDS = ("native", "reference")


def leaks(out: bytes, pan: str) -> list[str]:
    """7 consecutive PAN digits as ASCII, or 8 as packed BCD (4 bytes), anywhere in the output."""
    found = [pan[i:i + 7] for i in range(len(pan) - 6) if pan[i:i + 7].encode() in out]
    found += ["bcd:" + pan[i:i + 8] for i in range(0, len(pan) - 7, 2) if bytes.fromhex(pan[i:i + 8]) in out]
    return found


def tlv(tag: str, value: bytes) -> bytes:
    return bytes.fromhex(tag) + bytes([len(value)]) + value


def bcd(digits: str) -> bytes:
    return bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))


def var(n: int, data: bytes) -> bytes:
    return b"%0*d" % (n, len(data)) + data


@given(PAN, st.sampled_from(["iso87-binary", "iso87-ascii"]), st.booleans(), st.integers(0, 400),
       st.sampled_from(["0200", "0210"]))
def test_no_pan_digits_leave_the_iso8583_decoder(pan, spec, strict, cut, mti):
    inner = tlv("5A", bcd(pan)) + tlv("5F20", b"DOE/JOHN")
    icc = (tlv("5A", bcd(pan)) + tlv("57", bytes.fromhex(pan + "D2812201" + ("F" if len(pan) % 2 else "")))
           + tlv("56", b"B" + pan.encode() + b"^DOE/JOHN^2812") + tlv("9F1F", pan.encode())
           + tlv("9F6B", bcd(pan + "D2812")) + tlv("9F20", bcd(pan)) + tlv("5F24", bytes.fromhex("281231"))
           + tlv("9F0B", b"DOE/JOHN ALEXANDER")
           + bytes.fromhex("70") + bytes([len(inner)]) + inner)
    fields = {2: var(2, pan.encode()), 14: b"2812", 35: var(2, pan.encode() + b"=2812201"),
              36: var(3, b"01" + pan.encode() + b"=2812"), 45: var(2, b"B" + pan.encode() + b"^DOE/JOHN^2812"),
              48: var(3, b"CARD " + pan.encode() + b" / " + " ".join(pan[i:i + 4] for i in range(0, len(pan), 4)).encode()),
              52: bytes.fromhex("0123456789ABCDEF") if spec == "iso87-binary" else b"0123456789ABCDEF",
              55: var(3, icc if spec == "iso87-binary" else icc.hex().encode()),
              102: var(2, pan.encode())}
    bm = bytearray(16)
    for n in fields:
        bm[(n - 1) // 8] |= 0x80 >> ((n - 1) % 8)
    bm[0] |= 0x80
    bitmap = bytes(bm) if spec == "iso87-binary" else bytes(bm).hex().upper().encode()
    msg = mti.encode() + bitmap + b"".join(fields[n] for n in sorted(fields))
    for data in (len(msg).to_bytes(2, "big") + msg, (len(msg) + 5).to_bytes(2, "big") + msg[:cut]):
        for backend in BACKENDS:
            d = Decoder("iso8583", backend=backend, spec=spec, strict=strict)
            out = d.feed(data) + d.close()
            assert not leaks(out, pan), (backend, leaks(out, pan))
            assert b"DOE/JOHN" not in out
            assert b"\x01\x23\x45\x67\x89\xab\xcd\xef" not in out and b"0123456789ABCDEF" not in out


@given(PAN, st.sampled_from(["len4", "len2", "ascii4"]))
def test_no_pan_digits_leave_the_lenframe_decoder(pan, framing):
    groups = " ".join(pan[i:i + 4] for i in range(0, len(pan), 4))
    doc = f'{{"pan":"{pan}","text":"card {groups}","dashed":"{pan[:8]}-{pan[8:]}"}}'.encode()
    n = len(doc)
    prefix = {"len4": n.to_bytes(4, "big"), "len2": n.to_bytes(2, "big"), "ascii4": b"%04d" % n}[framing]
    for backend in BACKENDS:
        d = Decoder("lenframe", backend=backend, framing=framing)
        out = d.feed(prefix + doc) + d.close()
        assert not leaks(out, pan)


# ------------------------------------------------------------------------------------- out of step (misframing)
# A length framing has no resynchronisation point: with a wrong length prefix, or a tap that joins mid-stream, the
# framer reads message bytes (a PAN's middle digits) as a prefix or an MTI. Its errors therefore carry an empty raw
# (payment.md section 2, iso8583.md section 1).

FRAMINGS = ("len2", "len4", "ascii4", "hex4", "bcd2", "vmlh")
LONG_PAN = st.text(alphabet="0123456789", min_size=16, max_size=19)


def prefix_of(framing: str, n: int) -> bytes:
    """The prefix for a length n (taken modulo what the framing can express)."""
    if framing == "len2":
        return (n % 65536).to_bytes(2, "big")
    if framing == "len4":
        return n.to_bytes(4, "big")
    if framing == "ascii4":
        return b"%04d" % (n % 10000)
    if framing == "hex4":
        return b"%04X" % (n % 65536)
    if framing == "bcd2":
        return bytes.fromhex("%04d" % (n % 10000))
    return (n % 65536).to_bytes(2, "big") + b"\x00\x00"   # vmlh


def middle_runs(pan: str) -> tuple[set[bytes], set[bytes]]:
    """6-digit runs of the PAN's middle digits (positions 6 .. len-4): as ASCII, and as packed BCD (3 bytes) at
    both nibble alignments."""
    mid = pan[6:len(pan) - 4]
    ascii_runs = {mid[i:i + 6].encode() for i in range(len(mid) - 5)}
    bcd_runs = {bytes.fromhex(mid[i:i + 6]) for i in range(len(mid) - 5)}
    return ascii_runs, bcd_runs


def error_raws(out: bytes) -> list[bytes]:
    from protocols.decoder import unpack_events
    return [e["data"]["raw"] for e in unpack_events(out) if e["type"] == "protocol.error"]


def iso_body(pan: str, spec: str, k: int) -> bytes:
    icc = tlv("5A", bcd(pan)) + tlv("9F02", bytes.fromhex("000000001250"))
    fields = {2: var(2, pan.encode()), 3: b"000000", 4: b"%012d" % (1250 + k), 11: b"%06d" % k,
              41: b"TERM0001", 55: var(3, icc if spec == "iso87-binary" else icc.hex().encode())}
    bm = bytearray(8)
    for n in fields:
        bm[(n - 1) // 8] |= 0x80 >> ((n - 1) % 8)
    bitmap = bytes(bm) if spec == "iso87-binary" else bytes(bm).hex().upper().encode()
    return b"0200" + bitmap + b"".join(fields[n] for n in sorted(fields))


def lenframe_body(pan: str, k: int) -> bytes:
    return b"ABCD" + pan.encode() + b"|" + bcd(pan) + b"|%d" % k


@given(pan=LONG_PAN, framing=st.sampled_from(FRAMINGS), spec=st.sampled_from(["iso87-binary", "iso87-ascii", None]),
       wrong=st.lists(st.one_of(st.none(), st.integers(0, 1 << 20)), min_size=1, max_size=4),
       start=st.integers(0, 1 << 16), cuts=st.lists(st.integers(0, 1 << 16), max_size=5))
def test_out_of_step_errors_never_quote_pan_digits(pan, framing, spec, wrong, start, cuts):
    """ISO 8583 (spec set) and lenframe (spec None) streams around a random PAN, each message's length prefix
    either right or a random wrong one, fed from a random starting offset (a tap that joins mid-stream) in random
    chunks: no error raw shows 6 consecutive middle digits of the PAN, as ASCII or packed BCD."""
    stream = b""
    for k, bad in enumerate(wrong + [None, None]):
        body = lenframe_body(pan, k) if spec is None else iso_body(pan, spec, k)
        stream += prefix_of(framing, len(body) if bad is None else bad) + body
    data = stream[start % len(stream):]
    ascii_runs, bcd_runs = middle_runs(pan)
    for backend in BACKENDS:
        options = {"framing": framing} if spec is None else {"framing": framing, "spec": spec}
        out = decode_split("lenframe" if spec is None else "iso8583", data, cuts, backend=backend, **options)
        for raw in error_raws(out):
            assert not any(r in raw for r in ascii_runs | bcd_runs), (backend, raw)
            assert raw == b""    # the rule itself (payment.md section 2)


def test_cut_length_prefix_repro():
    """The review's repro: ISO len2 iso87-binary, field 2 = 4111112345678901, the frame's length cut to 20 bytes,
    more traffic following. The framer reads `23` as the next prefix and `4567` as an MTI; before the fix the
    errors quoted b'234567'. Now every error's raw is empty, the offsets still locate them."""
    pan = "4111112345678901"
    body = (b"0200" + bytes.fromhex("7000000000800000") + var(2, pan.encode()) + b"000000" + b"000000001234"
            + b"TERM0001")
    data = (20).to_bytes(2, "big") + body + (len(body).to_bytes(2, "big") + body) * 300
    outs = [decode_split("iso8583", data, [], backend=b) for b in BACKENDS]
    assert outs[0] == outs[1]
    from protocols.decoder import unpack_events
    errors = [e["data"] for e in unpack_events(outs[0]) if e["type"] == "protocol.error"]
    assert [(e["code"], e["offset"], e.get("field")) for e in errors[:2]] == [
        ("field_truncated", 0, "2"), ("bad_field_length", 22, "44")]
    assert all(e["raw"] == b"" for e in errors)
    assert b"234567" not in outs[0] and b"2345678" not in outs[0]


def test_lenframe_wrong_length_repro():
    """len4 `00 00 00 0A "ABCD411111" "2345678901"`: before the fix length_too_large quoted b'2345' and truncated
    b'901'."""
    data = bytes.fromhex("0000000a") + b"ABCD411111" + b"2345678901"
    for backend in BACKENDS:
        out = decode_split("lenframe", data, [], backend=backend)
        assert error_raws(out) == [b"", b""]
        assert b"2345" not in out and b"901" not in out

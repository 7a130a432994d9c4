"""Card data never leaks from the ISO 8583 and lenframe decoders (payment.md section 2): messages are built around
random PANs in every place a PAN can sit (field 2, tracks 35/36/45, free text 48 and 102, EMV tags 5A, 57, 56,
9F1F, 9F6B, 9F20, nested in constructed tags, a lenframe payload), also cut short and strict; on both backends
no run of 7 consecutive PAN digits appears in the output, as ASCII digits or as packed BCD, and expiry, PIN block
and cardholder name never appear."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder

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

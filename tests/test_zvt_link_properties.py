"""ZVT properties: bounded frames, and card data never reaches the output (payment.md section 2): PANs, track data
and CVVs placed in BMPs 22/23/24/3A/BA (and EMV tags in the TLV container) never appear as a run of 7 or more of
their digits, nor as 10 of them packed, whatever the framing, the mode or the split; and no error's raw quotes 6 of a PAN's middle digits,
wherever the PAN sits and wherever the tap joins the stream."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from protocols.zvt.tables import crc16_kermit
from streams import split


def serial_frame(apdu: bytes) -> bytes:
    crc = crc16_kermit(apdu + b"\x03")
    return b"\x10\x02" + apdu.replace(b"\x10", b"\x10\x10") + b"\x10\x03" + bytes([crc & 0xFF, crc >> 8])


def apdu(cls: int, instr: int, data: bytes) -> bytes:
    n = len(data)
    length = bytes([n]) if n < 0xFF else b"\xff" + bytes([n & 0xFF, n >> 8])
    return bytes([cls, instr]) + length + data


def decode(protocol: str, data: bytes) -> list[dict]:
    dec = Decoder(protocol)
    return dec.events(data) + dec.close_events()


def test_a_frame_longer_than_the_largest_apdu_is_dropped_and_the_next_frame_decodes():
    oversized = b"\x10\x02" + b"\x06\x01\xff\xff\xff" + b"\x01" * 65536 + b"\x10\x03\x00\x00"
    events = decode("zvt-serial", oversized + serial_frame(apdu(0x80, 0x00, b"")))
    assert [e["type"] for e in events] == ["protocol.error", "zvt.apdu"]
    assert events[0]["data"]["code"] == "frame_too_long" and events[0]["data"]["offset"] == 0
    assert events[1]["data"]["name"] == "ack"


def test_the_largest_apdu_fits():
    events = decode("zvt-serial", serial_frame(apdu(0x06, 0xD1, b"\x00" + b"A" * 65534)))
    assert [e["type"] for e in events] == ["zvt.apdu", "payment.receipt_line"]
    assert events[0]["data"]["length"] == 65535 and events[1]["data"]["text"] == "A" * 65534


def ll(v: bytes) -> bytes:
    return bytes([0xF0 + len(v) // 10, 0xF0 + len(v) % 10]) + v


def lll(v: bytes) -> bytes:
    return bytes([0xF0 + len(v) // 100, 0xF0 + len(v) // 10 % 10, 0xF0 + len(v) % 10]) + v


def bcd(digits: str) -> bytes:
    return bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))


def runs(digits: str, k: int = 7) -> set[str]:
    return {digits[i:i + k] for i in range(len(digits) - k + 1)}


def packed_runs(digits: str) -> set[bytes]:
    """5-byte packed-BCD windows of the digits at both nibble alignments, holding at least 4 different digits (a
    window of few distinct digits also occurs in msgpack headers by chance)."""
    out = set()
    for shift in (0, 1):
        s = digits[shift:]
        out |= {bytes.fromhex(s[i:i + 10]) for i in range(0, len(s) - 9, 2) if len(set(s[i:i + 10])) >= 4}
    return out


pans = st.text("0123456789", min_size=13, max_size=19)


@given(pan=pans, cvv=st.text("0123456789", min_size=3, max_size=4), exp=st.text("0123456789", min_size=4, max_size=4),
       cls_instr=st.sampled_from([(0x04, 0x0F), (0x06, 0x01), (0x06, 0x31), (0x06, 0x22)]),
       framing=st.sampled_from(["zvt-serial", "zvt-tcp"]), strict=st.booleans(), cut=st.integers(0, 400),
       tail=st.binary(max_size=6), mode=st.sampled_from(["bmp", "tlv", "text"]))
def test_card_data_never_reaches_the_output(pan, cvv, exp, cls_instr, framing, strict, cut, tail, mode):
    cls, instr = cls_instr
    prefix = b"\x12\x34\x56" if (cls, instr) == (0x06, 0x31) else b""
    track2 = bcd(pan + "D" + exp + "1010000")
    if mode == "bmp":
        body = (b"\x22" + ll(bcd(pan)) + b"\x23" + ll(track2) + b"\x24" + lll(track2) + b"\x3a" + bcd(cvv[:4].ljust(4, "F"))
                + b"\x0e" + bytes.fromhex(exp) + b"\x2d" + ll(b"B" + pan.encode() + b"^DOE/JOHN^" + exp.encode())
                + b"\xba" + bcd(pan)[:5])
    elif mode == "tlv":
        inner = (b"\x5a" + bytes([len(bcd(pan))]) + bcd(pan) + b"\x57" + bytes([len(track2)]) + track2
                 + b"\x9f\x6b" + bytes([len(track2)]) + track2 + b"\x4f" + bytes([len(bcd(pan))]) + bcd(pan)
                 + b"\x5f\x24\x03" + bytes.fromhex(exp + "31") + b"\x25\x80")
        body = b"\x06" + bytes([len(inner)]) + inner
    else:
        line = b"\x07" + bytes([len(pan) + 5]) + b"PAN " + pan.encode() + b" "
        body = b"\x06" + bytes([len(line) + 2, 0x25, len(line)]) + line
    wire = apdu(cls, instr, prefix + body + tail)
    if framing == "zvt-serial":
        wire = serial_frame(wire)
    wire = wire[: len(wire) - cut % 3]
    dec = Decoder(framing, strict=strict)
    out = dec.feed(wire[:cut]) + dec.feed(wire[cut:]) + dec.close()
    text = out.decode("latin-1")
    for run in runs(pan) | (runs(pan + exp) if len(pan) < 19 else set()):
        assert run not in text, f"PAN digits {run} leaked"
    for window in packed_runs(pan):
        assert window not in out, f"packed PAN digits {window.hex()} leaked"


@given(pad=st.integers(0, 16), pan=pans, high=st.booleans(), sep=st.sampled_from(["", " ", "-"]))
def test_pans_in_print_lines_are_scrubbed_at_any_alignment(pad, pan, high, sep):
    """The C writer counts a line's digits eight bytes at a time before deciding to scrub it: a PAN must be masked
    wherever it starts and whatever bytes surround it."""
    grouped = sep.join(pan[i:i + 4] for i in range(0, len(pan), 4))
    text = b"x" * pad + (b"\x81" if high else b"") + grouped.encode() + b" EUR"
    dec = Decoder("zvt-tcp")
    events = dec.events(apdu(0x06, 0xD1, b"\x00" + text)) + dec.close_events()
    line = events[-1]["data"]["text"]
    assert line.replace("*", "").replace(sep, "").count(pan) == 0 or len(pan) < 13
    digits = [c for c in line if c.isdigit() or c == "*"]
    assert "".join(digits[6:len(pan) - 4]) == "*" * (len(pan) - 10)


# ------------------------------------------------------------------- error raw never quotes card data (payment.md §2)

def middle_runs(pan: str, k: int = 6) -> set[str]:
    """Runs of k of the PAN's middle digits (positions 6 .. len-4: what masking hides)."""
    middle = pan[6:len(pan) - 4]
    return {middle[i:i + k] for i in range(len(middle) - k + 1)}


def tlv(tag: bytes, value: bytes) -> bytes:
    return tag + bytes([len(value)]) + value


def pan_apdus(pan: str, junk: bytes, at: int, cut_len: int) -> list[bytes]:
    """APDUs carrying the PAN wherever ZVT puts one, and where it does not belong: BMP 22/23/BA, TLV 5A/57/9F6B/4F
    and an unknown tag, a print line, the PAN (packed and ASCII) at any position of random bytes, and an APDU whose
    declared length stops inside the PAN so that the decoder reads on out of step."""
    packed = bcd(pan)
    track2 = bcd(pan + "D2812101" + "1234")
    emv = (tlv(b"\x5a", packed) + tlv(b"\x57", track2) + tlv(b"\x9f\x6b", track2) + tlv(b"\x4f", packed)
           + tlv(b"\xdf\x01", packed) + tlv(b"\x5f\x20", b"DOE/JOHN"))
    status = (b"\x27\x00\x22" + ll(packed) + b"\x23" + ll(track2) + b"\xba" + packed[:5]
              + b"\x06" + bytes([len(emv)]) + emv)
    at %= len(junk) + 1
    raw_pan = junk[:at] + packed + pan.encode() + junk[at:]
    cut_short = b"\x27\x00\x22" + ll(packed)
    return [apdu(0x04, 0x0F, status),
            apdu(0x06, 0xD1, b"\x00Karte " + pan.encode()),
            apdu(0x06, 0x01, raw_pan),
            apdu(0x04, 0xFF, raw_pan),
            bytes([0x04, 0x0F, min(cut_len, len(cut_short))]) + cut_short,
            apdu(0x06, 0x0F, b"")]


@given(pan=st.text("0123456789", min_size=16, max_size=19), framing=st.sampled_from(["zvt-serial", "zvt-tcp"]),
       strict=st.booleans(), junk=st.binary(max_size=12), at=st.integers(0, 12), cut_len=st.integers(0, 12),
       order=st.permutations(range(6)), start=st.integers(0, 1 << 16), cuts=st.lists(st.integers(0, 1 << 16),
                                                                                        max_size=5))
def test_error_raw_never_quotes_pan_digits(pan, framing, strict, junk, at, cut_len, order, start, cuts):
    """Wherever a PAN sits and wherever the tap joins the stream (mid-APDU, mid-frame), no protocol.error's raw shows
    6 or more of its middle digits, as ASCII or as packed BCD at either nibble alignment. On TCP (no
    resynchronisation point) raw is at most one tag byte."""
    apdus = pan_apdus(pan, junk, at, cut_len)
    apdus = [apdus[i] for i in order]
    if framing == "zvt-serial":
        apdus = [serial_frame(a) for a in apdus]
    stream = b"".join(apdus)
    stream = stream[start % len(stream):]
    dec = Decoder(framing, strict=strict)
    events = []
    for chunk in split(stream, cuts):
        events += dec.events(chunk)
    events += dec.close_events()
    secrets = middle_runs(pan)
    for e in events:
        if e["type"] != "protocol.error":
            continue
        raw = e["data"]["raw"]
        if framing == "zvt-tcp":
            assert len(raw) <= 1, e
        shown = raw.hex() + " " + raw.decode("latin-1")
        assert not [r for r in secrets if r in shown], e

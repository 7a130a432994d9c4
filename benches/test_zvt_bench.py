"""ZVT throughput, link framing and APDU decoding together, on a corpus of realistic dialogues for zvt-serial and
zvt-tcp: registration; authorisations (06 01 with amount and currency → 80 00 00 → several 04 FF, some with TLV
display texts → 04 0F with BMPs: PAN, trace, TID, receipt no, auth code, card name, date, time, AID, TLV → receipt
as 06 D1 print lines or 06 D3 text blocks → 06 0F completion), link ACKs on serial; and an end of day (06 50 →
04 0F with BMP 60 totals). Native vs reference. Targets: >= 300 MB/s native, >= 30x the reference."""

from __future__ import annotations

import random

import pytest

from protocols import Decoder
from protocols.events import iter_bodies
from protocols.zvt.tables import crc16_kermit
from feeding import whole

MiB = 1 << 20


def frame(apdu: bytes) -> bytes:
    crc = crc16_kermit(apdu + b"\x03")
    return b"\x10\x02" + apdu.replace(b"\x10", b"\x10\x10") + b"\x10\x03" + bytes([crc & 0xFF, crc >> 8])


def apdu(cls: int, instr: int, data: bytes) -> bytes:
    n = len(data)
    return bytes([cls, instr]) + (bytes([n]) if n < 0xFF else b"\xff" + bytes([n & 0xFF, n >> 8])) + data


def ll(v: bytes) -> bytes:
    return bytes([0xF0 + len(v) // 10, 0xF0 + len(v) % 10]) + v


def lll(v: bytes) -> bytes:
    return bytes([0xF0 + len(v) // 100, 0xF0 + len(v) // 10 % 10, 0xF0 + len(v) % 10]) + v


def tlv(tag: bytes, v: bytes) -> bytes:
    n = len(v)
    return tag + (bytes([n]) if n < 0x80 else b"\x81" + bytes([n]) if n < 256 else b"\x82" + n.to_bytes(2, "big")) + v


def bcd(n: int, width: int) -> bytes:
    return bytes.fromhex(f"{n:0{2 * width}d}")


def dialogue(rng: random.Random) -> list[bytes]:
    """The APDUs of one payment (or an end of day), in order."""
    if rng.random() < 0.05:
        totals = bcd(1, 2) + bcd(rng.randrange(100, 9999), 2) + b"".join(
            bytes([rng.randrange(0, 60)]) + bcd(rng.randrange(0, 10 ** 7), 6) for _ in range(7))
        return [apdu(0x06, 0x50, bcd(0, 3)), apdu(0x80, 0x00, b""),
                apdu(0x04, 0x0F, b"\x27\x00\x04" + bcd(rng.randrange(10 ** 8), 6) + b"\x0c" + bcd(220130, 3)
                     + b"\x0d" + bcd(1123, 2) + b"\x60" + lll(totals)),
                apdu(0x06, 0x0F, b"")]
    amount = rng.randrange(1, 100000)
    out = [apdu(0x06, 0x01, b"\x04" + bcd(amount, 6) + b"\x49\x09\x78"), apdu(0x80, 0x00, b"")]
    for status in (0x17, 0x0A, 0x0E, 0x17):
        if rng.random() < 0.3:
            shown = tlv(b"\x24", tlv(b"\x07", b"Bitte Karte") + tlv(b"\x07", b"einstecken"))
            out.append(apdu(0x04, 0xFF, bytes([status, 0x05]) + tlv(b"\x06", shown)))
        else:
            out.append(apdu(0x04, 0xFF, bytes([status])))
    pan = b"\x47\x61\x73\x90\x01\x01\x00\x10"
    info = (b"\x27\x00\x04" + bcd(amount, 6) + b"\x49\x09\x78\x0b" + bcd(rng.randrange(999999), 3)
            + b"\x0c\x13\x45\x02\x0d\x11\x23\x29\x52\x50\x00\x38\x87" + bcd(rng.randrange(9999), 2)
            + b"\x3b12345678\x22" + ll(pan) + b"\x8a\x0a\x8b" + ll(b"VISA") + b"\xba\xa0\x00\x00\x00\x03"
            + tlv(b"\x06", tlv(b"\x1f\x12", b"\x02") + tlv(b"\x4f", b"\xa0\x00\x00\x00\x03\x10\x10")))
    out += [apdu(0x04, 0x0F, info), apdu(0x80, 0x00, b"")]
    lines = [f"{'BETRAG EUR':<20}{amount / 100:>10.2f}".encode(), b"Karte 476173******0010",
             b"  Zahlung erfolgt", b"Terminal-ID 52500038", b"TA-Nr. 000123  BNr. 0042"] * rng.randrange(3, 6)
    if rng.random() < 0.5:
        out += [apdu(0x06, 0xD1, b"\x00" + line) for line in lines]
    else:
        out.append(apdu(0x06, 0xD3, tlv(b"\x06", tlv(b"\x25", b"".join(tlv(b"\x07", line) for line in lines)))))
    out.append(apdu(0x06, 0x0F, b"\x27\x00"))
    return out


def make_corpus(framing: str) -> bytes:
    rng = random.Random(3)
    parts, size = [], 0
    if framing == "serial":
        parts.append(frame(apdu(0x06, 0x00, b"\x00\x00\x00\xba\x09\x78\x03\x00")) + b"\x06")
    while size < MiB:
        for a in dialogue(rng):
            part = frame(a) + b"\x06" if framing == "serial" else a
            parts.append(part)
            size += len(part)
    return b"".join(parts)


@pytest.fixture(scope="module", params=["serial", "tcp"])
def framing(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def corpus(framing) -> bytes:
    return make_corpus(framing)


@pytest.fixture(scope="module")
def event_count(framing, corpus) -> int:
    dec = Decoder(f"zvt-{framing}", backend="reference")
    return sum(1 for _ in iter_bodies(dec.feed(corpus) + dec.close()))


def _whole(protocol: str, backend: str, data: bytes):
    return whole(data, protocol, backend=backend)


def test_zvt_native_1mib(measure, framing, corpus, event_count, results):
    name = f"zvt-{framing}"
    measure(f"{name} native, 1 MiB feed", _whole(name, "native", corpus), len(corpus), event_count, rounds=15)
    results.ratios.append((f"{name} native / reference", f"{name} native, 1 MiB feed",
                           f"{name} reference, 1 MiB feed", ">= 30x; native >= 300 MB/s"))


def test_zvt_reference_1mib(measure, framing, corpus, event_count):
    name = f"zvt-{framing}"
    measure(f"{name} reference, 1 MiB feed", _whole(name, "reference", corpus), len(corpus), event_count, rounds=3)


def test_backends_agree_on_the_dialogues(framing, corpus):
    name = f"zvt-{framing}"
    out = _whole(name, "native", corpus)()
    assert out == _whole(name, "reference", corpus)()
    assert b"protocol.error" not in out  # the corpus is well-formed

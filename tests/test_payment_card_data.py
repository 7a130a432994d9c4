"""Card data never leaks (docs/protocols/payment.md section 2), tested on both backends for every payment
protocol: messages are built around random PANs and track data, fed in random chunks, whole or cut short, and
no run of 7 or more consecutive digits of the PAN or the track's discretionary data may appear anywhere in the
output bytes as ASCII digits, nor 10 of them as packed BCD.

The messages are assembled here from the protocols' specifications (ZVT PA00P015, ISO 8583 through pyiso8583, ECR
dialect layouts), not by the decoders under test.
"""

from __future__ import annotations

import json

import iso8583
import iso8583.specs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import BACKENDS
from simulator.zvt_dialogues import apdu, bcd, llvar, serial_frame
from streams import decode_split

DIGITS = "0123456789"
pans = st.text(alphabet=DIGITS, min_size=13, max_size=19).filter(lambda p: p[0] != "0")
secrets = st.text(alphabet=DIGITS, min_size=8, max_size=12)   # discretionary data, PIN-verification values, ...
names = st.sampled_from(["MUSTERMANN/ERIKA", "DOE/JANE MS", "O'BRIEN/PAT"])


def digit_runs(secret: str, n: int = 7) -> set[str]:
    return {secret[i:i + n] for i in range(len(secret) - n + 1)}


def packed_runs(secret: str) -> set[bytes]:
    """5-byte packed-BCD windows of the secret at both nibble alignments, holding at least 4 different digits: a
    window of few distinct digits (`06 00 00 00 00`) also occurs in msgpack headers and BCD amounts by chance."""
    out = set()
    for shift in (0, 1):
        s = secret[shift:]
        for i in range(0, len(s) - 9, 2):
            if len(set(s[i:i + 10])) >= 4:
                out.add(bytes.fromhex(s[i:i + 10]))
    return out


#: every digit string the messages below carry besides the card data (amounts, dates, ids, the PIN block's hex):
#: a run of the card data that also occurs here proves nothing, so it is not looked for
PUBLIC = " ".join(["000000001250", "0978", "2812", "2812101", "1231", "143005", "1123", "000000", "000123", "051",
                   "0001", "0200", "0210", "597029414300", "70000001", "123456", "0123456789ABCDEF", "1250", "1.39"])


def leaks(output: bytes, *secret_strings: str) -> list:
    found = []
    for secret in secret_strings:
        found += [r for r in digit_runs(secret) if r.encode() in output and r not in PUBLIC]
        found += [r.hex() for r in packed_runs(secret) if r in output and r.hex() not in PUBLIC]
    return found


def decode_all(protocol: str, stream: bytes, cuts: list[int], backend: str, **options) -> bytes:
    return decode_split(protocol, stream, cuts, backend=backend, **options)


def nibbles(digits: str) -> bytes:
    """Packed BCD, odd lengths padded with F (the ZVT/EMV convention); 'D' is the track-2 separator."""
    text = digits + ("F" if len(digits) % 2 else "")
    return bytes.fromhex(text)


# ----------------------------------------------------------------------------------------------- ZVT
def zvt_status_information(pan: str, disc: str, name: str) -> bytes:
    track2 = nibbles(f"{pan}D2812101{disc}")
    track3 = nibbles(f"01{pan}D{disc}2812")
    emv = (b"\x5a" + bytes([len(nibbles(pan))]) + nibbles(pan)
           + b"\x57" + bytes([len(track2)]) + track2
           + b"\x5f\x20" + bytes([len(name)]) + name.encode()
           + b"\x5f\x24\x03\x28\x12\x31")
    tlv = b"\x06" + bytes([len(emv)]) + emv
    data = (b"\x27\x00" + b"\x04" + bcd("000000001250") + b"\x22" + llvar(nibbles(pan))
            + b"\x23" + llvar(track2) + b"\x24" + llvar(track3, 3) + b"\x3a\x12\x3f" + b"\x0e\x28\x12"
            + b"\x49\x09\x78" + tlv)
    return apdu(0x04, 0x0F, data)


def zvt_stream(pan: str, disc: str, name: str, framing: str) -> bytes:
    apdus = [zvt_status_information(pan, disc, name),
             apdu(0x06, 0xD1, b"\x00" + f"Karte {pan}".encode()),
             apdu(0x06, 0xD1, b"\x00" + " ".join(pan[i:i + 4] for i in range(0, len(pan), 4)).encode())]
    if framing == "serial":
        return b"".join(serial_frame(a) for a in apdus)
    return b"".join(apdus)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("framing", ["serial", "tcp"])
@pytest.mark.parametrize("strict", [False, True])
@given(pan=pans, disc=secrets, name=names, cuts=st.lists(st.integers(0, 10_000), max_size=6),
       cut_short=st.integers(0, 400))
def test_zvt_never_emits_card_data(backend, framing, strict, pan, disc, name, cuts, cut_short):
    stream = zvt_stream(pan, disc, name, framing)
    for data in (stream, stream[:cut_short]):    # whole, and cut short (errors must not quote card data)
        out = decode_all(f"zvt-{framing}", data, cuts, backend, strict=strict)
        assert not leaks(out, pan, disc)
        assert name.encode() not in out and name.split("/")[0].encode() not in out
    # decoded, so the test is not passing on an empty output
    whole = decode_all(f"zvt-{framing}", stream, cuts, backend, strict=strict)
    assert b"payment.result" in whole and f"{pan[:6]}*".encode() in whole


# ----------------------------------------------------------------------------------------------- ISO 8583
def iso_message(pan: str, disc: str, name: str, spec: dict, ascii_spec: bool) -> bytes:
    track2 = nibbles(f"{pan}D2812101{disc}")
    icc = (b"\x5a" + bytes([len(nibbles(pan))]) + nibbles(pan) + b"\x57" + bytes([len(track2)]) + track2
           + b"\x5f\x20" + bytes([len(name)]) + name.encode() + b"\x5f\x24\x03\x28\x12\x31"
           + b"\x9f\x1f" + bytes([len(disc)]) + disc.encode() + b"\x9f\x02\x06\x00\x00\x00\x00\x12\x50")
    doc = {
        "t": "0200", "2": pan, "3": "000000", "4": "000000001250", "11": "000123", "14": "2812",
        "22": "051", "35": f"{pan}=2812101{disc}"[:37], "36": f"01{pan}={disc}2812", "41": "TERM0001",
        "45": f"B{pan}^{name}^2812101{disc}", "48": f"NOTE CARD {pan}", "49": "978",
        # pyiso8583 takes binary fields as hex (default); default_ascii carries them as hex text
        "52": "0123456789ABCDEF",
        "55": icc.hex().upper(),
    }
    raw, _ = iso8583.encode(doc, spec)
    return bytes(raw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec_name", ["iso87-binary", "iso87-ascii"])
@given(pan=pans, disc=secrets, name=names, cuts=st.lists(st.integers(0, 10_000), max_size=6),
       cut_short=st.integers(0, 400))
def test_iso8583_never_emits_card_data(backend, spec_name, pan, disc, name, cuts, cut_short):
    ascii_spec = spec_name == "iso87-ascii"
    spec = iso8583.specs.default_ascii if ascii_spec else iso8583.specs.default
    msg = iso_message(pan, disc, name, spec, ascii_spec)
    stream = len(msg).to_bytes(2, "big") + msg
    for data in (stream, stream[:cut_short]):
        for strict in (False, True):
            out = decode_all("iso8583", data, cuts, backend, spec=spec_name, framing="len2", strict=strict)
            assert not leaks(out, pan, disc)
            assert name.encode() not in out
            assert b"0123456789" not in out.upper()      # the PIN block, in either spec
    # the message is decoded (so the test is not passing on an empty output)
    assert b"iso8583.message" in decode_all("iso8583", stream, [], backend, spec=spec_name, framing="len2")


# ----------------------------------------------------------------------------------------------- ECR links
def ecr_frame(payload: bytes, seed: int = 0, include_stx: bool = False) -> bytes:
    lrc = seed
    for b in (b"\x02" if include_stx else b"") + payload + b"\x03":
        lrc ^= b
    return b"\x02" + payload + b"\x03" + bytes([lrc])


@pytest.mark.parametrize("backend", BACKENDS)
@given(pan=pans, cuts=st.lists(st.integers(0, 10_000), max_size=6), cut_short=st.integers(0, 120))
def test_ecr_links_never_emit_a_pan(backend, pan, cuts, cut_short):
    streams = {
        "transbank": ecr_frame(f"0210|00|597029414300|70000001|123456|A1B2C3|1250|{pan}|CR".encode()),
        "nexi": ecr_frame(f"RESULT OK CARD {pan} AMT 1250".encode(), seed=0x7F),
        "pax": ecr_frame(f"0\x1cT01\x1c1.39\x1c000000\x1cOK\x1c01\x1f{pan}\x1f1250".encode()),
    }
    for preset, stream in streams.items():
        for data in (stream, stream[:cut_short]):
            out = decode_all("ecr", data, cuts, backend, preset=preset)
            assert not leaks(out, pan), preset
        assert b"ecr.frame" in decode_all("ecr", stream, cuts, backend, preset=preset)
    payload = json.dumps({"MessageHeader": {"MessageCategory": "Payment"}, "PAN": pan}).encode()
    out = decode_all("lenframe", len(payload).to_bytes(4, "big") + payload, cuts, backend, framing="len4")
    assert not leaks(out, pan) and b"Payment" in out

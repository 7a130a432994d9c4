"""Differential test against pyiso8583 4.x (MIT, a dev dependency), the independent oracle for ISO 8583.

Hypothesis builds random messages (random bitmaps, field contents valid for the spec, card data in fields 2, 35,
45, 14, 52 and a BER-TLV field 55 with EMV card tags); pyiso8583 encodes them with its `default` and
`default_ascii` specs; the bytes are framed with a random framing and link header and fed, split at random
points, to our `iso87-binary` / `iso87-ascii` decoder on both backends. Both backends must give identical bytes,
and every field must equal what pyiso8583 decodes, after our card-data rules (docs/protocols/iso8583.md 3.2):
PAN masked, track data reduced to {"pan": masked}, expiry and PIN block withheld, text scrubbed.
"""

from __future__ import annotations

import iso8583
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iso8583 import specs as pyspecs

from protocols import Decoder
from protocols.card import mask_pan, scrub, scrub_text
from protocols.decoder import unpack_events

pytest.importorskip("protocols._native", reason="the C core is not built (make native)")

PYSPEC = {"iso87-binary": pyspecs.default, "iso87-ascii": pyspecs.default_ascii}
ASCII = st.one_of(st.sampled_from("0123456789 -"), st.characters(min_codepoint=0, max_codepoint=127))
TEXT = st.text(alphabet=ASCII, max_size=40)
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=19)


# ------------------------------------------------------------------------------------------------ TLV


@st.composite
def tlv_items(draw, depth=1):
    """[(tag bytes, value bytes | children list)] with distinct tags."""
    items, seen = [], set()
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["plain", "plain", "card", "constructed"] if depth < 3 else ["plain", "card"]))
        if kind == "constructed":
            tag = draw(st.sampled_from([b"\x70", b"\x77", b"\xbf\x0c", b"\x61"]))
            value = draw(tlv_items(depth + 1))
        elif kind == "card":
            tag = draw(st.sampled_from([b"\x5a", b"\x57", b"\x5f\x20", b"\x5f\x24", b"\x9f\x1f", b"\x9f\x20",
                                        b"\x56", b"\x9f\x6b"]))
            pan = draw(DIGITS)
            if tag in (b"\x5a",):
                h = pan + ("F" if len(pan) % 2 else "")
                value = bytes.fromhex(h)
            elif tag in (b"\x57", b"\x9f\x6b", b"\x9f\x20"):
                h = pan + "D2812201" + ("F" if (len(pan) + 8) % 2 else "")
                value = bytes.fromhex(h)
            elif tag in (b"\x56", b"\x9f\x1f"):
                value = f"B{pan}^DOE/JOHN^2812".encode()
            else:
                value = draw(st.binary(min_size=1, max_size=8))
        else:
            tag = draw(st.sampled_from([b"\x4f", b"\x82", b"\x84", b"\x95", b"\x9a", b"\x9c", b"\x9f\x02",
                                        b"\x9f\x03", b"\x9f\x10", b"\x9f\x26", b"\x9f\x27", b"\x9f\x36",
                                        b"\x5f\x2a", b"\x9f\x1a"]))
            value = draw(st.binary(max_size=20))
        if tag in seen:
            continue
        seen.add(tag)
        items.append((tag, value))
    return items


def tlv_encode(items) -> bytes:
    out = bytearray()
    for tag, value in items:
        v = tlv_encode(value) if isinstance(value, list) else value
        n = len(v)
        ln = bytes([n]) if n < 0x80 else (b"\x81" + bytes([n]) if n < 256 else b"\x82" + n.to_bytes(2, "big"))
        out += tag + ln + v
    return bytes(out)


def _track2(h: str) -> dict:
    k = min([i for i in (h.find("="), h.find("D")) if i >= 0], default=-1)
    return {"pan": mask_pan(h[:k])} if 1 <= k <= 19 and h[:k].isdigit() else {}


def _track1(s: str) -> dict:
    t = s[1:] if s.startswith("%") else s
    j = t.find("^")
    if t.startswith("B") and 2 <= j <= 20 and t[1:j].isdigit():
        return {"pan": mask_pan(t[1:j])}
    return {}


def tlv_expected(items, path: str, withheld: list) -> dict:
    m = {}
    for tag, value in items:
        key = tag.hex().upper()
        if isinstance(value, list):
            m[key] = tlv_expected(value, f"{path}.{key}", withheld)
        elif key in ("5F20", "5F24"):
            withheld.append(f"{path}.{key}")
        elif key == "5A":
            m[key] = mask_pan(value.hex().upper().rstrip("F"))
        elif key in ("57", "9F6B", "9F20"):
            m[key] = _track2(value.hex().upper())
        elif key in ("56", "9F1F"):
            m[key] = _track1(value.decode("latin-1"))
        else:
            m[key] = scrub(value)
    return m


# ------------------------------------------------------------------------------------------------ messages


@st.composite
def message(draw, spec_name: str):
    spec = PYSPEC[spec_name]
    mti = draw(st.text(alphabet="0123456789", min_size=4, max_size=4))
    numbers = draw(st.sets(st.integers(2, 128), max_size=14))
    numbers |= set(draw(st.sets(st.sampled_from([2, 14, 35, 45, 52, 55]), max_size=6)))
    doc = {"t": mti}
    tlv = None
    for n in sorted(numbers):
        f = spec[str(n)]
        mx = f["max_len"]
        if n == 55:
            tlv = draw(tlv_items())
            raw = tlv_encode(tlv)
            limit = mx if f["data_enc"] == "b" else mx // 2
            while len(raw) > limit:
                tlv = tlv[:-1]
                raw = tlv_encode(tlv)
            doc["55"] = raw.hex().upper() if f["data_enc"] == "b" else draw(st.sampled_from([raw.hex(),
                                                                                                  raw.hex().upper()]))
            continue
        if f["data_enc"] == "b":
            doc[str(n)] = draw(st.binary(min_size=mx, max_size=mx)).hex().upper()
            continue
        if n == 2:
            value = draw(DIGITS)
        elif n == 35:
            value = draw(DIGITS) + "=" + draw(st.text(alphabet="0123456789", max_size=15))
        elif n == 45:
            value = "B" + draw(DIGITS) + "^" + draw(st.text(alphabet="ABC /", max_size=20)) + "^2812"
        elif f["len_type"] == 0:
            value = draw(st.text(alphabet=ASCII, min_size=mx, max_size=mx))
        else:
            value = draw(TEXT)
        doc[str(n)] = value[:mx]
    return doc, tlv


def expected_fields(decoded: dict, tlv, spec_name: str) -> tuple[dict, list]:
    """What our decoder must report for pyiso8583's decoded document, after the card-data rules."""
    binary = {k for k, v in PYSPEC[spec_name].items() if k.isdigit() and v["data_enc"] == "b"}
    fields, withheld = {}, []
    for key in sorted((k for k in decoded if k.isdigit() and k != "1"), key=int):
        n, v = int(key), decoded[key]
        if n in (14, 52):
            withheld.append(key)
        elif n == 2:
            fields[key] = mask_pan(v)
        elif n in (35, 36):
            fields[key] = _track2(v)
        elif n == 45:
            fields[key] = _track1(v)
        elif n == 55:
            assert bytes.fromhex(v) == tlv_encode(tlv)
            fields[key] = tlv_expected(tlv, "55", withheld)
        elif key in binary:
            fields[key] = scrub(bytes.fromhex(v))
        else:
            fields[key] = scrub_text(v)
    return fields, withheld


def frame(msg: bytes, framing: str, header: bytes) -> bytes:
    body = header + msg
    n = len(body)
    return {
        "len2": n.to_bytes(2, "big"), "len4": n.to_bytes(4, "big"), "ascii4": b"%04d" % n,
        "hex4": (b"%04X" % n), "bcd2": bytes.fromhex("%04d" % n), "vmlh": n.to_bytes(2, "big") + b"\0\0",
        "none": b"",
    }[framing] + body


def decode(backend, spec_name, framing, header_len, data, cuts):
    dec = Decoder("iso8583", backend=backend, spec=spec_name, framing=framing, header=header_len)
    out, prev = bytearray(), 0
    for c in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        out += dec.feed(data[prev:c])
        prev = c
    return bytes(out + dec.close())


FRAMINGS = ["len2", "len4", "ascii4", "hex4", "bcd2", "vmlh", "none"]


@pytest.mark.parametrize("spec_name", ["iso87-binary", "iso87-ascii"])
@settings(deadline=None)
@given(data=st.data())
def test_matches_pyiso8583(spec_name, data):
    doc, tlv = data.draw(message(spec_name))
    encoded, _ = iso8583.encode(dict(doc), PYSPEC[spec_name])
    encoded = bytes(encoded)
    decoded, _ = iso8583.decode(encoded, PYSPEC[spec_name])
    framing = data.draw(st.sampled_from(FRAMINGS))
    header = data.draw(st.sampled_from([b"", b"", b"\x60\x00\x03\x00\x00"]))
    stream = frame(encoded, framing, header)
    if framing != "none":
        stream += frame(encoded, framing, header)  # two messages back to back
    cuts = data.draw(st.lists(st.integers(0, 1 << 16), max_size=6))
    outs = [decode(b, spec_name, framing, len(header), stream, cuts) for b in ("native", "reference")]
    assert outs[0] == outs[1]
    events = unpack_events(outs[0])
    messages = [e for e in events if e["type"] == "iso8583.message"]
    assert [e for e in events if e["type"] == "protocol.error"] == []
    assert len(messages) == (1 if framing == "none" else 2)
    want_fields, want_withheld = expected_fields(decoded, tlv, spec_name)
    for m in messages:
        got = m["data"]
        assert got["mti"] == decoded["t"]
        assert got["fields"] == want_fields
        assert list(got["fields"]) == sorted(got["fields"], key=int)
        assert got["withheld"] == want_withheld
        if header:
            assert got["header"] == header.hex()
        else:
            assert "header" not in got


@pytest.mark.parametrize("spec_name", ["iso87-binary", "iso87-ascii"])
def test_sample_message_of_the_research_notes(spec_name):
    """payment.md section 5: the 0200 that pyiso8583 encodes to 145 bytes (`default`) / 153 (`default_ascii`)."""
    doc = {"t": "0200", "2": "4761739001010010", "3": "000000", "4": "000000001234", "7": "0630123045",
           "11": "000123", "12": "123045", "13": "0630", "14": "2812", "22": "051", "25": "00",
           "35": "4761739001010010=28122011143878089", "41": "TERM0001", "42": "MERCHANT0000001", "49": "978"}
    encoded, _ = iso8583.encode(dict(doc), PYSPEC[spec_name])
    assert len(encoded) == (145 if spec_name == "iso87-binary" else 153)
    for backend in ("native", "reference"):
        events = unpack_events(decode(backend, spec_name, "len2", 0, frame(bytes(encoded), "len2", b""), []))
        assert [e["type"] for e in events] == ["iso8583.message", "payment.request"]
        assert events[0]["data"]["fields"]["2"] == "476173******0010"
        assert events[0]["data"]["withheld"] == ["14"]

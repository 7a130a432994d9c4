"""Differential test: the C scale decoder and the pure-Python reference give byte-identical msgpack for every
protocol, direction and option, on streams built from a grammar of messages (good and bad weights, status bytes,
commands, Magellan labels and replies, framing bytes out of place, overlong frames, random bytes) split at random
points. Contract: docs/protocols/scale.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("protocols.scale.native", reason="the C core is not built (make native)")

from protocols.scale import tables as T  # noqa: E402
from protocols.scale.native import NativeScaleDecoder  # noqa: E402
from protocols.scale.reference import ReferenceScaleDecoder  # noqa: E402
from streams import split  # noqa: E402

UNIT_TEXTS = sorted(T.UNITS) + [b"st", b"", b"kgs", b"L"]
DIRECTIONS = ("to_device", "from_device")


@st.composite
def number(draw) -> bytes:
    """A weight as a scale writes it: spaces, sign, digits with a point; now and then out of bounds."""
    sign = draw(st.sampled_from([b"", b"", b"+", b"-", b"- ", b"+  "]))
    whole = draw(st.text("0123456789", min_size=0, max_size=10)).encode()
    frac = draw(st.one_of(st.just(None), st.text("0123456789", min_size=0, max_size=5)))
    text = whole if frac is None else whole + b"." + frac.encode()
    if draw(st.integers(0, 12)) == 0:
        text = draw(st.sampled_from([b"------", b"..", b"1.2.3", b"OVER", b"12a3"]))
    return draw(st.sampled_from([b"", b" ", b"   "])) + sign + text


@st.composite
def weight_field(draw) -> bytes:
    return draw(number()) + draw(st.sampled_from([b"", b" "])) + draw(st.sampled_from(UNIT_TEXTS))


@st.composite
def status_bytes(draw) -> bytes:
    n = draw(st.integers(2, 4)) if draw(st.integers(0, 8)) else draw(st.integers(0, 10))
    out = bytearray()
    for i in range(n):
        b = 0x30 | draw(st.integers(0, 15))
        if i >= 1 and i + 1 < n:
            b |= 0x40
        if draw(st.integers(0, 10)) == 0:
            b ^= 1 << draw(st.integers(0, 7))
        out.append(b)
    return bytes(out)


@st.composite
def product(draw) -> bytes:
    n = draw(st.sampled_from([7, 8, 11, 12, 13]))
    return draw(st.text("0123456789", min_size=n, max_size=n)).encode()


@st.composite
def message(draw, protocol: str, from_device: bool) -> bytes:
    if draw(st.integers(0, 15)) == 0:
        return draw(st.binary(max_size=30))
    if draw(st.integers(0, 40)) == 0:
        return b"\x02\n" + b"7" * draw(st.integers(T.MAX_FRAME - 2, T.MAX_FRAME + 2)) + b"\r\x03\n"
    if protocol == "scale-nci":
        if not from_device:
            return draw(st.sampled_from([b"W", b"S", b"Z", b"H", b"U", b"T", b"M", b"w", b"WW", b"X", b""])) + \
                draw(st.sampled_from([b"\r", b"\r\n", b"\r", b""]))
        kind = draw(st.integers(0, 4))
        if kind == 0:
            body = draw(weight_field()) + b"\r\n" + draw(status_bytes())
        elif kind == 1:
            body = draw(status_bytes())
        elif kind == 2:
            body = draw(st.sampled_from([b"?", b"KG", b" lb\r\n00", b"KG\r\n00", b"1\r\n00\r\n00"]))
        else:
            body = draw(st.sampled_from(UNIT_TEXTS)) + b"\r\n" + draw(status_bytes())
        return b"\n" + body + draw(st.sampled_from([b"\r\x03", b"\r\x03", b"\x03", b"\r"]))
    if protocol == "scale-toledo":
        if not from_device:
            return draw(st.binary(max_size=3)) if draw(st.integers(0, 3)) == 0 else \
                draw(st.sampled_from([b"W", b"S", b"Z", b"T", b"C", b"W\r", b"Ehello", b"\r\n"]))
        if draw(st.booleans()):
            body = b"?" + bytes([draw(st.integers(0, 255))])
        else:
            body = draw(number()) + draw(st.sampled_from([b"", b"", b"N", b"kg", b"N "]))
        return b"\x02" + body + draw(st.sampled_from([b"\r", b"\r", b""]))
    if protocol == "scale-cas":
        state = draw(st.sampled_from([b"ST", b"US", b"OL", b"XX", b"st"]))
        mode = draw(st.sampled_from([b"GS", b"NT", b"GR"]))
        sep = draw(st.sampled_from([b",", b",", b";"]))
        return state + sep + mode + b"," + draw(weight_field()) + draw(st.sampled_from([b"\r\n", b"\n", b"\r\n", b""]))
    # magellan
    end = draw(st.sampled_from([b"\r", b"\r", b"\r\n", b""]))
    if not from_device:
        return draw(st.sampled_from([b"S11", b"S14", b"S334", b"S01", b"S1", b""])) + end
    kind = draw(st.integers(0, 3))
    if kind == 0:
        prefix = draw(st.sampled_from([p for p, _ in T.LABELS] + [b"S08", b"S08Z", b"S08B3"]))
        return prefix + draw(st.one_of(product(), st.binary(max_size=20))) + end
    if kind == 1:
        return b"S144" + draw(st.text("0123456789", min_size=0, max_size=7)).encode() + end
    return draw(st.sampled_from([b"S141", b"S142", b"S143", b"S145", b"S144", b"S146", b"S14", b"S1410"])) + end


@st.composite
def streams(draw):
    protocol = draw(st.sampled_from(T.PROTOCOLS))
    direction = draw(st.sampled_from(DIRECTIONS))
    opts = {}
    if T.OPTIONS[protocol] and draw(st.booleans()):
        opts["unit"] = draw(st.sampled_from(["lb", "kg", "KG", " lb "]))
    cfg = T.resolve(protocol, direction, opts)
    data = b"".join(draw(st.lists(message(protocol, cfg.from_device), max_size=10)))
    cuts = draw(st.lists(st.integers(0, len(data) + 1), max_size=12))
    return cfg, data, cuts


def run(impl, chunks) -> bytes:
    return b"".join(impl.feed(c) for c in chunks) + impl.close()


@given(streams())
def test_native_equals_reference(case):
    cfg, data, cuts = case
    chunks = split(data, cuts)
    assert run(NativeScaleDecoder(cfg), chunks) == run(ReferenceScaleDecoder(cfg), chunks)


@given(streams())
def test_chunking_does_not_matter(case):
    cfg, data, cuts = case
    assert run(NativeScaleDecoder(cfg), split(data, cuts)) == run(NativeScaleDecoder(cfg), [data])
    assert run(ReferenceScaleDecoder(cfg), split(data, cuts)) == run(ReferenceScaleDecoder(cfg), [data])


@given(st.binary(max_size=400), st.lists(st.integers(0, 500), max_size=8), st.sampled_from(T.PROTOCOLS),
       st.sampled_from(DIRECTIONS), st.sampled_from(["lb", "kg"]))
def test_arbitrary_bytes(data, cuts, protocol, direction, unit):
    cfg = T.resolve(protocol, direction, {"unit": unit} if T.OPTIONS[protocol] else {})
    chunks = split(data, cuts)
    assert run(NativeScaleDecoder(cfg), chunks) == run(ReferenceScaleDecoder(cfg), chunks)

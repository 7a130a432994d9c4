"""Differential test: the C ECR link decoder and the pure-Python reference give byte-identical msgpack, for random
settings (framing bytes, checksum, range, seed, separators, link bytes, bound, strict, presets) and random streams
built from a grammar of good and bad frames, split at random points; each backend also gives the same output fed
whole and fed byte by byte. Contract: docs/protocols/ecr.md."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("protocols.ecr.native", reason="the C core is not built (make native)")

from protocols.ecr import tables as T  # noqa: E402
from protocols.ecr.native import NativeEcrDecoder  # noqa: E402
from protocols.ecr.reference import ReferenceEcrDecoder  # noqa: E402
from streams import split  # noqa: E402

BACKENDS = (NativeEcrDecoder, ReferenceEcrDecoder)
u8 = st.integers(0, 255)
SEPARATOR_OK = [b for b in range(256) if b not in b"0123456789 -"]


@st.composite
def configs(draw) -> T.Config:
    if draw(st.integers(0, 3)) == 0:
        preset = draw(st.sampled_from(sorted(T.PRESETS)))
        extra = {}
        if draw(st.booleans()):
            extra["strict"] = draw(st.sampled_from([True, "1", "false"]))
        if draw(st.booleans()):
            extra["max_frame"] = draw(st.integers(1, 120))
        return T.resolve({"preset": preset, **extra})
    pool = draw(st.permutations(list(range(256))))
    stx, etx, ack, nak, enq, eot = pool[:6]
    checksum = draw(st.sampled_from(T.CHECKSUMS))
    top = {0: 0, 1: 255, 2: 65535}[T.CHECKSUM_WIDTH[checksum]]
    opts = {
        "stx": stx, "etx": f"0x{etx:02x}", "checksum": checksum,
        "byte_order": draw(st.sampled_from(T.BYTE_ORDERS)),
        "include_stx": draw(st.booleans()), "include_etx": draw(st.booleans()),
        "seed": str(draw(st.integers(0, top))),
        "max_frame": draw(st.one_of(st.integers(1, 40), st.integers(41, 70000).map(lambda v: min(v, 65536)))),
        "strict": draw(st.booleans()),
    }
    for name, value in (("ack", ack), ("nak", nak), ("enq", enq), ("eot", eot)):
        opts[name] = value if draw(st.booleans()) else None
    seps = [b for b in SEPARATOR_OK if b not in (stx, etx)]
    if draw(st.booleans()):
        opts["fs"] = draw(st.sampled_from(seps))
        if draw(st.booleans()):
            opts["us"] = draw(st.sampled_from([b for b in seps if b != opts["fs"]]))
    if draw(st.booleans()):
        opts["preset"] = draw(st.sampled_from(sorted(T.PRESETS)))
    try:
        return T.resolve(opts)
    except ValueError:  # a preset's link bytes may collide with the drawn ones: fall back to the plain settings
        opts.pop("preset", None)
        return T.resolve(opts)


def payload_alphabet(cfg: T.Config):
    specials = [b for b in (cfg.fs, cfg.us, cfg.ack, cfg.nak, cfg.enq, cfg.eot, 0x20, 0x2D, 0xE9) if b is not None]
    return st.one_of(st.integers(0x30, 0x39), st.integers(0x30, 0x39), st.sampled_from(specials), u8).filter(
        lambda b: b not in (cfg.stx, cfg.etx))


def semantic_payload(draw, cfg: T.Config) -> bytes:
    """A payload shaped like one of the dialect's layouts (with random field contents)."""
    text = st.text("0123456789 A", max_size=14).map(str.encode)
    if cfg.match == "code":
        spec = draw(st.sampled_from(cfg.messages))
        n = max(spec["code_field"], (spec["where"] or (0,))[0], 10) + draw(st.integers(-3, 6))
        fields = []
        for _ in range(max(n, spec["code_field"] + 1)):
            if cfg.us is not None and draw(st.booleans()):
                fields.append(bytes([cfg.us]).join(draw(st.lists(text, min_size=1, max_size=9))))
            else:
                fields.append(draw(text))
        fields[spec["code_field"]] = spec["code"].encode()
        if spec["where"] is not None and spec["where"][0] < len(fields) and draw(st.integers(0, 3)):
            fields[spec["where"][0]] = spec["where"][1].encode()
        return bytes([cfg.fs]).join(fields)
    if cfg.match == "length":
        spec = draw(st.sampled_from(cfg.messages))
        body = bytearray(draw(st.lists(st.sampled_from(b"0123456789 A7"), min_size=spec["length"],
                                       max_size=spec["length"])))
        if spec["where"] is not None and draw(st.integers(0, 3)):
            at, value = spec["where"]
            body[at:at + len(value)] = value.encode()
        return bytes(body)
    return b""


@st.composite
def streams(draw):
    cfg = draw(configs())
    data = payload_alphabet(cfg)
    payloads = st.lists(data, max_size=60).map(bytes)
    links = [b for b in (cfg.ack, cfg.nak, cfg.enq, cfg.eot) if b is not None]
    parts = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["frame", "frame", "semantic", "semantic", "bad", "restart", "link", "junk",
                                     "overlong"]))
        if kind == "frame":
            parts.append(T.frame(cfg, draw(payloads)))
        elif kind == "semantic":
            parts.append(T.frame(cfg, semantic_payload(draw, cfg) or draw(payloads)))
        elif kind == "bad" and cfg.width:
            parts.append(T.frame(cfg, draw(payloads), good=False))
        elif kind == "restart":
            parts.append(bytes([cfg.stx]) + draw(payloads)[:10])
        elif kind == "link" and links:
            parts.append(bytes(draw(st.lists(st.sampled_from(links), min_size=1, max_size=3))))
        elif kind == "junk":
            parts.append(draw(st.binary(min_size=1, max_size=12)))
        elif kind == "overlong" and cfg.max_frame <= 120:
            parts.append(T.frame(cfg, bytes([0x41]) * (cfg.max_frame + draw(st.integers(0, 3)))))
    stream = b"".join(parts)
    if draw(st.booleans()):
        tail = T.frame(cfg, draw(payloads))
        stream += tail[:draw(st.integers(0, len(tail)))]
    return cfg, stream


def run(cls, cfg, chunks) -> bytes:
    d = cls(cfg)
    return b"".join(d.feed(c) for c in chunks) + d.close()


def check_all(cfg: T.Config, data: bytes, cuts: list[int]) -> None:
    chunks = split(data, cuts)
    outs = [run(cls, cfg, chunks) for cls in BACKENDS]
    assert outs[0] == outs[1], (cfg, data.hex(), [len(c) for c in chunks])
    for cls, out in zip(BACKENDS, outs):
        assert run(cls, cfg, [data]) == out, (cls.__name__, "whole")
        assert run(cls, cfg, [data[i:i + 1] for i in range(len(data))]) == out, (cls.__name__, "bytewise")


cuts = st.lists(st.integers(0, 1 << 20), max_size=8)


@settings()
@given(streams(), cuts)
def test_grammar_streams(cfg_stream, cut):
    cfg, data = cfg_stream
    check_all(cfg, data, cut)


@settings()
@given(configs(), st.binary(max_size=300), cuts)
def test_random_bytes(cfg, data, cut):
    check_all(cfg, data, cut)


def test_large_frames_agree_split():
    cfg = T.resolve({"preset": "pax", "max_frame": 65536})
    body = bytes(b for b in range(256) if b not in (2, 3)) * 256
    data = T.frame(cfg, body[:65536]) + T.frame(cfg, body[:65537]) + b"\x06" + T.frame(cfg, body[:1000])
    outs = [run(cls, cfg, split(data, [3, 1000, 65539, 65542, 65546, 70000, 131000])) for cls in BACKENDS]
    assert outs[0] == outs[1]
    assert len(outs[0]) > 65536 * 2


@settings()
@given(st.lists(st.text("0123456789 -A\x1c", max_size=40), max_size=12), st.integers(0, 7), st.sampled_from(
    [{}, {"fs": 0x1C}, {"preset": "pax"}]))
def test_scrubbing_agrees_on_digit_heavy_payloads(parts, pad, options):
    """The C decoder finds the runs to scrub eight bytes at a time; every alignment and run length must give what
    the reference's regex gives."""
    cfg = T.resolve(options)
    payload = b"Z" * pad + "".join(parts).encode()
    data = T.frame(cfg, payload) + T.frame(cfg, payload[::-1])
    check_all(cfg, data, [len(data) // 2])


def test_withheld_field_with_subfields_splits_alike():
    """A code-matched layout whose withheld item is a whole field holding `us` sub-fields: the starred field has no
    separator left, so both backends split the starred payload and show it as one str (ecr.md section 4)."""
    import dataclasses

    from protocols.decoder import unpack_events

    pax = T.resolve({"preset": "pax"})
    layout = T._msg("payment.result", T.PROTOCOL, ("amount_minor", T.F(1), "int"),
                    ("cardholder", T.F(2), "withheld"), ("expiry", T.S(3, 1), "withheld"), code="T9")
    cfg = dataclasses.replace(pax, messages=[layout])
    payload = b"T9\x1c100\x1c DOE\x1fJOHN \x1cX\x1f2812\x1fY"
    data = T.frame(cfg, payload) + T.frame(cfg, b"T9\x1c5\x1c\x1f\x1c")
    outs = [run(cls, cfg, [data]) for cls in BACKENDS]
    assert outs[0] == outs[1]
    frames = [e["data"] for e in unpack_events(outs[0]) if e["type"] == "ecr.frame"]
    assert frames[0]["fields"] == ["T9", "100", " ******** ", ["X", "****", "Y"]]
    assert frames[0]["withheld"] == ["cardholder", "expiry"]
    assert frames[1]["fields"] == ["T9", "5", "*", ""]  # a field of one separator is starred too
    check_all(cfg, data, [5, 17])

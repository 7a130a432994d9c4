"""Golden ESC/POS vectors: ``tests/vectors/escpos/*.md`` (format: ``tests/vectors/escpos/README.md``).

Every case is decoded (a) whole, (b) byte by byte, (c) cut at pairs of points (every pair for short inputs, a
deterministic sample for long ones), always followed by ``close()``. Every way of feeding must give the same
msgpack bytes, and the events must equal the expected ones with exact types (``True`` is not ``1``, ``str`` is
not ``bytes``). A ``protocol.error`` written without ``reason`` gets the sentence of the contract's error table
(docs/protocols/escpos.md section 10). The backend is whatever ``TILLWIRE_BACKEND`` selects.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import re
from dataclasses import dataclass, field

import pytest

from protocols import Decoder, DecoderClosed
from protocols.decoder import unpack_events
from typed_equality import same  # tests/typed_equality.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VECTOR_DIR = os.path.join(HERE, "vectors", "escpos")
CONTRACT = os.path.join(ROOT, "docs", "protocols", "escpos.md")


# --- parsing ------------------------------------------------------------------------------------------------


@dataclass
class Case:
    file: str
    title: str
    line: int
    data: bytes = b""
    expected: list = field(default_factory=list)
    direction: str = "to_device"
    options: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    protocol: str = "escpos"  # the decoder a vector file is for (set by tests/vector_cases.py for other protocols)

    @property
    def id(self) -> str:
        return f"{os.path.splitext(self.file)[0]}: {self.title}"


_TOKEN = re.compile(r'\s*(?:(#.*)|"([^"]*)"(?:\*(\d+))?|([0-9A-Fa-f]+)(?:\*(\d+))?|(\S+))')


def parse_hex(text: str, where: str) -> bytes:
    """Whitespace-separated hex (``1b 40``, ``1b40``), ``"ascii text"``, ``TOKEN*N`` repeats, ``#`` comments."""
    out = bytearray()
    for lineno, raw_line in enumerate(text.splitlines(), 1):
        pos = 0
        while pos < len(raw_line):
            m = _TOKEN.match(raw_line, pos)
            if not m or m.end() == pos:
                break
            pos = m.end()
            comment, string, s_rep, hexdigits, h_rep, junk = m.groups()
            if comment is not None:
                break
            if junk is not None:
                raise ValueError(f"{where}: hex line {lineno}: cannot read {junk!r}")
            if string is not None:
                chunk = string.encode("ascii")
                rep = s_rep
            elif hexdigits is not None:
                if len(hexdigits) % 2:
                    raise ValueError(f"{where}: hex line {lineno}: odd number of digits in {hexdigits!r}")
                chunk = bytes.fromhex(hexdigits)
                rep = h_rep
            else:
                continue
            out += chunk * (int(rep) if rep else 1)
    return bytes(out)


def _from_json(obj):
    if isinstance(obj, dict):
        if list(obj) == ["hex"] and isinstance(obj["hex"], str):
            return bytes.fromhex(obj["hex"])
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def load_reasons() -> dict[str, str]:
    reasons = {}
    with open(CONTRACT, encoding="utf-8") as fh:
        text = fh.read()
    section = text[text.index("## 10.") :]
    for m in re.finditer(r"^\| `([a-z0-9_]+)` \| (.+?) \|$", section, re.M):
        reasons[m.group(1)] = m.group(2).strip()
    return reasons


REASONS = load_reasons()


def _with_reason(event: dict) -> dict:
    if event.get("type") != "protocol.error" or "reason" in event.get("data", {}):
        return event
    data = event["data"]
    filled = {}
    for k, v in data.items():
        filled[k] = v
        if k == "code":
            filled["reason"] = REASONS.get(v, f"<no reason for {v!r} in the contract>")
    return {"type": event["type"], "data": filled}


def parse_file(path: str) -> list[Case]:
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    cases: list[Case] = []
    case: Case | None = None
    block: str | None = None
    buf: list[str] = []
    seen: dict = {}
    for lineno, text in enumerate(lines, 1):
        if block is not None:
            if text.strip() == "```":
                body = "\n".join(buf)
                where = f"{name}:{lineno}"
                if block == "hex":
                    case.data = parse_hex(body, where)
                else:
                    case.expected = [
                        _with_reason(_from_json(json.loads(ln))) for ln in body.splitlines() if ln.strip()
                    ]
                seen[block] = True
                block = None
            else:
                buf.append(text)
            continue
        if text.startswith("## "):
            if case is not None:
                _check(case, seen)
            case = Case(file=name, title=text[3:].strip(), line=lineno)
            cases.append(case)
            seen = {}
            continue
        if case is None:
            continue
        stripped = text.strip()
        if stripped.startswith("```"):
            kind = stripped[3:].strip()
            if kind not in ("hex", "jsonl"):
                raise ValueError(f"{name}:{lineno}: unknown block type {kind!r}")
            if kind in seen:
                raise ValueError(f"{name}:{lineno}: second ```{kind} block in case {case.title!r}")
            block, buf = kind, []
        elif stripped.startswith("direction:"):
            case.direction = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("options:"):
            case.options = json.loads(stripped.split(":", 1)[1])
        elif re.match(r"^(notes \(from_device\):\s*)?note_request\s", stripped):
            m = re.match(r"^(?:notes \(from_device\):\s*)?note_request\s+(\S+)\s+(\d+)\s*$", stripped)
            if not m:
                raise ValueError(f"{name}:{lineno}: bad note_request line {stripped!r}")
            case.notes.append((m.group(1), int(m.group(2))))
    if block is not None:
        raise ValueError(f"{name}: unterminated ```{block} block")
    if case is not None:
        _check(case, seen)
    return cases


def _check(case: Case, seen: dict) -> None:
    if "hex" not in seen or "jsonl" not in seen:
        raise ValueError(f"{case.file}:{case.line}: case {case.title!r} needs a ```hex and a ```jsonl block")


def all_cases() -> list[Case]:
    cases = []
    for path in sorted(glob.glob(os.path.join(VECTOR_DIR, "*.md"))):
        if os.path.basename(path).lower() == "readme.md":
            continue
        cases.extend(parse_file(path))
    return cases


CASES = all_cases()


# --- decoding -----------------------------------------------------------------------------------------------


def run(case: Case, cuts: list[int]) -> bytes:
    dec = Decoder("escpos", direction=case.direction, **case.options)
    for kind, n in case.notes:
        dec.note_request(kind, n)
    out = bytearray()
    prev = 0
    for cut in [*cuts, len(case.data)]:
        out += dec.feed(case.data[prev:cut])
        prev = cut
    out += dec.close()
    return bytes(out)


def split_plans(n: int) -> list[list[int]]:
    """Cut-point lists: byte by byte, then pairs (i, j) with 0 <= i <= j <= n (chunks [0:i] [i:j] [j:n])."""
    plans: list[list[int]] = []
    if n <= 1 << 16:
        plans.append(list(range(1, n)))
    if n <= 40:
        plans += [[i, j] for i in range(n + 1) for j in range(i, n + 1)]
    else:
        rng = random.Random(n)
        singles = range(1, n) if n <= 256 else sorted(rng.sample(range(1, n), 255))
        plans += [[i] for i in singles]
        plans += [sorted(rng.sample(range(1, n), 2)) for _ in range(200)]
    return plans


def _show(events) -> str:
    def conv(o):
        if isinstance(o, bytes):
            return {"hex": o.hex()}
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, list):
            return [conv(v) for v in o]
        return o

    lines = []
    for e in events:
        if isinstance(e, dict) and e.get("type") == "protocol.error":
            e = {"type": e["type"], "data": {k: v for k, v in e["data"].items() if k != "reason"}}
        lines.append(json.dumps(conv(e), ensure_ascii=False))
    return "\n".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case: Case):
    whole = run(case, [])
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}"
    )
    for cuts in split_plans(len(case.data)):
        got = run(case, cuts)
        assert got == whole, (
            f"\n{case.file}:{case.line} {case.title}: cut at {cuts[:40]} gives\n{_show(unpack_events(got))}\n"
            f"instead of\n{_show(events)}"
        )


def _key_orders(obj, path="") -> list[tuple[str, list]]:
    out = []
    if isinstance(obj, dict):
        out.append((path, list(obj)))
        for k, v in obj.items():
            out += _key_orders(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _key_orders(v, f"{path}[{i}]")
    return out


def test_key_order_is_the_contracts():
    """Maps keep their key order in msgpack; the contract fixes it (type then data; data keys in table order;
    style keys bold, underline, double_strike, invert, font, width, height, upside_down, rotate)."""
    problems = []
    for case in CASES:
        events = unpack_events(run(case, []))
        if not same(events, case.expected):
            continue  # reported by test_vector
        if _key_orders(events) != _key_orders(case.expected):
            problems.append(f"{case.id}:\n  expected {_show(case.expected)}\n  actual   {_show(events)}")
    assert not problems, "key order differs from the contract:\n" + "\n".join(problems)


def test_vectors_cover_the_contract():
    assert len(CASES) >= 200
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case titles"
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    missing = set(REASONS) - codes - {"image_too_large"}  # image_too_large: see the bounds tests below
    assert not missing, f"error codes without a vector: {missing}"


def test_parse_hex_forms():
    assert parse_hex('1b40 "Ab" 0a*3 # comment "x"\n"-"*2 # more', "t") == b'\x1b@Ab\n\n\n--'


# --- bounds (too long to write out as vectors) --------------------------------------------------------------


def decode_all(data: bytes, chunk: int | None = None, **options) -> list[dict]:
    dec = Decoder("escpos", **options)
    out = bytearray()
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        out += dec.feed(data[i : i + step])
    out += dec.close()
    return unpack_events(bytes(out))


def _err(code: str, offset: int, raw: bytes) -> dict:
    return {"type": "protocol.error", "data": {"code": code, "reason": REASONS[code], "offset": offset, "raw": raw}}


@pytest.mark.parametrize("chunk", [None, 1, 7, 4096])
def test_line_of_exactly_1024_code_points(chunk):
    text = "".join(chr(0x41 + i % 26) for i in range(1024))
    events = decode_all(text.encode() + b"\n", chunk)
    assert same(events, [{"type": "printer.line", "data": {"text": text, "align": "left", "spans": []}}])


@pytest.mark.parametrize("chunk", [None, 1, 7, 4096])
def test_line_of_2049_code_points_is_split_twice(chunk):
    text = "".join(chr(0x41 + i % 26) for i in range(2049))
    events = decode_all(text.encode() + b"\n", chunk)
    line = lambda t: {"type": "printer.line", "data": {"text": t, "align": "left", "spans": []}}  # noqa: E731
    assert same(
        events,
        [
            _err("line_too_long", 1024, b""),
            line(text[:1024]),
            _err("line_too_long", 2048, b""),
            line(text[1024:2048]),
            line(text[2048:]),
        ],
    )


def test_line_too_long_offset_of_a_two_byte_code_point():
    # FS & (2 bytes), 1024 ASCII code points, then GBK 中 (d6 d0): the error points at the lead byte
    data = b"\x1c\x26" + b"a" * 1024 + b"\xd6\xd0\n"
    events = decode_all(data, 3)
    assert same(
        events,
        [
            _err("line_too_long", 1026, b""),
            {"type": "printer.line", "data": {"text": "a" * 1024, "align": "left", "spans": []}},
            {"type": "printer.line", "data": {"text": "中", "align": "left", "spans": []}},
        ],
    )


@pytest.mark.parametrize("chunk", [None, 1, 100])
def test_qr_of_exactly_7089_bytes(chunk):
    payload = b"1" * 7089
    n = len(payload) + 3
    data = b"\x1d(k" + bytes([n & 255, n >> 8]) + b"1P0" + payload + b"\x1d(k\x03\x001Q0"
    events = decode_all(data, chunk)
    assert same(events, [{"type": "printer.code2d", "data": {"symbology": "QR", "data": "1" * 7089}}])


@pytest.mark.parametrize("chunk", [None, 1])
def test_barcode_of_exactly_255_bytes(chunk):
    data = b"\x1dk\x04" + b"A" * 255 + b"\x00"
    events = decode_all(data, chunk)
    assert same(events, [{"type": "printer.barcode", "data": {"symbology": "CODE39", "data": "A" * 255}}])


@pytest.mark.parametrize("chunk", [None, 65536])
def test_image_at_the_4_mib_limit_is_kept(chunk):
    # GS v 0: 128 bytes x 32768 rows = exactly 4 MiB
    rows = bytes(range(128)) * 32768
    data = b"\x1dv0\x00\x80\x00\x00\x80" + rows
    events = decode_all(data, chunk)
    assert same(
        events,
        [
            {
                "type": "printer.image",
                "data": {"kind": "raster", "width": 1024, "height": 32768, "sha256": hashlib.sha256(rows).hexdigest()},
            }
        ],
    )


@pytest.mark.parametrize("chunk", [None, 65536])
def test_image_over_the_4_mib_limit_is_consumed_not_kept(chunk):
    # 128 bytes x 32769 rows: one row over the limit. The bytes are consumed (LFs in the data are not decoded), the
    # oversized image flushes nothing (section 2), so "x" and "y" stay one line.
    header = b"\x1dv0\x00\x80\x00\x01\x80"
    data = b"x" + header + b"\x0a" * (128 * 32769) + b"y\n"
    events = decode_all(data, chunk)
    assert [e["type"] for e in events] == ["protocol.error", "printer.line"]
    err = events[0]["data"]
    assert (err["code"], err["reason"]) == ("image_too_large", REASONS["image_too_large"])
    assert err["offset"] == 1 and err["raw"] == header, "offset/raw: the command's start and its 8-byte header"
    assert same(events[1]["data"], {"text": "xy", "align": "left", "spans": []})


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_spans_have_no_limit_but_the_line(chunk):
    # 1024 code points, bold on every other one: 512 spans (section 4: at most one per code point)
    data = b"".join((b"\x1bE\x01A" if i % 2 == 0 else b"\x1bE\x00a") for i in range(1024)) + b"\n"
    events = decode_all(data, chunk)
    spans = [[i, i + 1, {"bold": True}] for i in range(0, 1024, 2)]
    assert same(events, [{"type": "printer.line", "data": {"text": "Aa" * 512, "align": "left", "spans": spans}}])


def test_feed_after_close_raises():
    dec = Decoder("escpos")
    dec.feed(b"abc")
    dec.close()
    with pytest.raises(DecoderClosed):
        dec.feed(b"x")

"""Pure-Python ZVT APDU decoder: the readable twin of ``native/zvt_apdu.c``. Contract: ``docs/protocols/zvt.md``.

The link layer (``link_reference.py``) hands over one complete APDU; :func:`decode_apdu` returns its events: the
errors found in it, then ``zvt.apdu`` with its decoded fields, then the semantic ``payment.*`` events (strict
mode: only the errors when there are any). Card data leaves only masked or not at all (``docs/protocols/payment.md``
section 2).
"""

from __future__ import annotations

from protocols.card import mask_pan, scrub, scrub_text
from protocols.zvt import bmps as B
from protocols.zvt import tables as T


def _error(code: str, offset: int, raw: bytes) -> dict:
    return {"type": "protocol.error",
            "data": {"code": code, "reason": T.ERRORS[code], "offset": offset, "raw": bytes(raw)}}


class _Fault(Exception):
    def __init__(self, code: str, raw: bytes, pos: int = 0):
        super().__init__(code)
        self.code = code
        self.raw = raw
        self.pos = pos


# ------------------------------------------------------------------------------------------ value decoders

def _digits(v: bytes) -> str | None:
    h = v.hex()
    return h if all(c in "0123456789" for c in h) else None


def _pan(v: bytes) -> str | None:
    """BCD PAN: digits, 'E' = a digit the device masked, 'F' = padding at the end only."""
    h = v.hex().upper().rstrip("F")
    out = []
    for c in h:
        if c in "0123456789":
            out.append(c)
        elif c == "E":
            out.append("*")
        else:
            return None
    return mask_pan("".join(out))


def _track_pan(v: bytes) -> dict:
    """Nibble-packed track 2/3 (and EMV 57): the PAN is the digits ('E' masked) before the first 'D'."""
    h = v.hex().upper()
    i = h.find("D")
    if i <= 0 or any(c not in "0123456789E" for c in h[:i]):
        return {}
    return {"pan": mask_pan(h[:i].replace("E", "*"))}


def _track1_pan(v: bytes) -> dict:
    """ASCII track 1: 'B', the PAN digits, '^', ... (the name and the rest are never emitted)."""
    if v[:1] != b"B":
        return {}
    j = v.find(b"^", 1)
    if j <= 1 or any(c < 0x30 or c > 0x39 for c in v[1:j]):
        return {}
    return {"pan": mask_pan(v[1:j].decode("ascii"))}


def _text(v: bytes) -> str:
    return scrub_text(v.decode("cp437"))


def _ber_length(d: bytes, pos: int, n: int):
    """(length, position after it), None when cut off, or -1 for a form ZVT does not use."""
    if pos >= n:
        return None
    b = d[pos]
    if b < 0x80:
        return b, pos + 1
    if b == 0x81:
        return (d[pos + 1], pos + 2) if pos + 1 < n else None
    if b == 0x82:
        return (d[pos + 1] << 8 | d[pos + 2], pos + 3) if pos + 2 < n else None
    return -1


# ------------------------------------------------------------------------------------------------- context

class _Apdu:
    __slots__ = ("bmps", "raw", "tlv_value", "tlv", "withheld", "faults", "card_tech", "aid")

    def __init__(self):
        self.bmps: dict = {}
        self.raw: dict[int, bytes] = {}      # BMP tag -> its value, for the semantic events
        self.tlv_value: bytes | None = None
        self.tlv: list | None = None
        self.withheld: list[str] = []
        self.faults: list[_Fault] = []
        self.card_tech: bytes | None = None  # first TLV 1F12 (pre-order)
        self.aid: bytes | None = None        # first TLV 4F that looks like an AID

    def withhold(self, key: str) -> None:
        if key not in self.withheld:
            self.withheld.append(key)


def _walk_bmps(a: _Apdu, d: bytes, pos: int) -> None:
    n = len(d)
    seen = set()
    while pos < n:
        tag = d[pos]
        spec = B.BMPS.get(tag)
        if spec is None:
            raise _Fault("unknown_bmp", bytes([tag]))
        length, kind = spec
        pos += 1
        if length == B.BER:
            got = _ber_length(d, pos, n)
            if got is None:
                raise _Fault("bmp_overrun", bytes([tag]))
            if got == -1:
                raise _Fault("bad_tlv", bytes([tag]))
            size, pos = got
        elif length < 0:
            k = -length
            if pos + k > n:
                raise _Fault("bmp_overrun", bytes([tag]))
            size = 0
            for b in d[pos:pos + k]:
                if b & 0xF0 != 0xF0 or b & 0x0F > 9:
                    raise _Fault("bad_llvar", bytes([tag]))
                size = size * 10 + (b & 0x0F)
            pos += k
        else:
            size = length
        if pos + size > n:
            raise _Fault("bmp_overrun", bytes([tag]))
        v = d[pos:pos + size]
        pos += size
        if tag in seen:          # a repeated BMP: the first one wins
            continue
        seen.add(tag)
        key = f"{tag:02X}"
        if kind == B.TLV:
            a.tlv_value = v
            continue
        if kind == B.WITHHELD or (kind == B.AID and not B.looks_like_aid(v)):
            a.withhold(key)
            continue
        if kind == B.INT:
            value = v[0]
        elif kind == B.AMOUNT:
            digits = _digits(v)
            if digits is None:
                raise _Fault("bad_bcd", bytes([tag]))
            value = int(digits)
        elif kind == B.DIGITS:
            value = _digits(v)
            if value is None:
                raise _Fault("bad_bcd", bytes([tag]))
        elif kind == B.TEXT:
            value = _text(v)
        elif kind == B.PAN:
            value = _pan(v)
            if value is None:
                raise _Fault("bad_bcd", bytes([tag]))
        elif kind == B.TRACK:
            value = _track_pan(v)
        elif kind == B.TRACK1:
            value = _track1_pan(v)
        elif kind == B.TOTALS:
            if size != B.TOTALS_LEN:
                raise _Fault("bad_field_length", bytes([tag]))
            if _digits(v[:4]) is None or any(_digits(v[5 + 7 * i:11 + 7 * i]) is None for i in range(7)):
                raise _Fault("bad_bcd", bytes([tag]))
            value = scrub(v)
        else:
            value = scrub(v)
        a.bmps[key] = value
        a.raw[tag] = v


def _walk_tlv(a: _Apdu, v: bytes, depth: int) -> tuple[list, _Fault | None]:
    out: list = []
    pos, n = 0, len(v)
    while pos < n:
        start = pos
        t0 = v[pos]
        raw = bytes([t0])
        pos += 1
        if t0 & 0x1F == 0x1F:
            while True:
                if pos >= n or pos - start >= B.MAX_TLV_TAG:
                    return out, _Fault("bad_tlv", raw)
                b = v[pos]
                pos += 1
                if not b & 0x80:
                    break
        tag = v[start:pos].hex().upper()
        got = _ber_length(v, pos, n)
        if got is None or got == -1 or got[1] + got[0] > n:
            return out, _Fault("bad_tlv", raw)
        size, pos = got
        val = v[pos:pos + size]
        pos += size
        if t0 & 0x20:
            if depth >= B.MAX_TLV_DEPTH:
                return out, _Fault("tlv_too_deep", raw)
            child, fault = _walk_tlv(a, val, depth + 1)
            out.append([tag, child])
            if fault is not None:
                return out, fault
            continue
        if tag == B.TLV_CARD_TECH and a.card_tech is None:
            a.card_tech = val
        elif tag == B.TLV_AID:
            if not B.looks_like_aid(val):
                a.withhold(tag)
                continue
            if a.aid is None:
                a.aid = val
        if tag in B.TLV_WITHHELD:
            a.withhold(tag)
            continue
        if tag in B.TLV_TEXT:
            value = _text(val)
        elif tag in B.TLV_PAN:
            value = _pan(val)
            if value is None:
                return out, _Fault("bad_bcd", raw)
        elif tag in B.TLV_TRACK:
            value = _track_pan(val)
        elif tag in B.TLV_TRACK1:
            value = _track1_pan(val)
        else:
            value = scrub(val)
        out.append([tag, value])
    return out, None


def _lines(tlv: list | None, tag: str) -> list[str]:
    """The 07 text lines directly inside the top-level constructed objects `tag` (24 display, 25 print)."""
    out = []
    for t, v in tlv or ():
        if t == tag and isinstance(v, list):
            out += [cv for ct, cv in v if ct == B.TLV_LINE]
    return out


# ------------------------------------------------------------------------------------------------ decoding

def decode_apdu(apdu: bytes, hl: int, offset: int, strict: bool, count: int, quote_header: bool) -> list[dict]:
    """Events for one complete APDU. `apdu` holds its `count` bytes (header of `hl` bytes included), `offset` is
    the stream offset of its first byte (serial: of its DLE STX). `quote_header`: faults of the APDU as a whole
    quote its header in raw (serial, where the frame's CRC vouches that it is one); on tcp (False) a tap that
    joined mid-APDU takes message bytes for the header, so those faults carry an empty raw."""
    cls, instr = apdu[0], apdu[1]
    declared = apdu[2] if apdu[2] != 0xFF else apdu[3] | apdu[4] << 8
    header = bytes(apdu[:hl]) if quote_header else b""
    errors: list[dict] = []
    if count - hl != declared:
        errors.append(_error("apdu_length_mismatch", offset, header))
    d = bytes(apdu[hl:hl + min(declared, count - hl)])
    n = len(d)

    ev: dict = {"class": cls, "instr": instr, "name": T.command_name(cls, instr), "length": declared}
    a = _Apdu()
    layout = B.layout_of(cls, instr)
    try:
        if layout == B.L_BMP:
            _walk_bmps(a, d, 0)
        elif layout == B.L_NACK:
            ev["error"] = instr
            _walk_bmps(a, d, 0)
        elif layout == B.L_PASSWORD:
            if n < 3:
                raise _Fault("missing_field", header)
            _walk_bmps(a, d, 3)
        elif layout == B.L_REGISTRATION:
            if n < 4:
                raise _Fault("missing_field", header)
            ev["config"] = d[3]
            pos = 4
            if n - pos >= 2 and d[pos] not in (0x03, 0x06):
                cc = _digits(d[pos:pos + 2])
                if cc is None:
                    raise _Fault("bad_bcd", header)
                ev["currency"] = cc
                pos += 2
            _walk_bmps(a, d, pos)
        elif layout == B.L_STATUS:
            if n < 1:
                raise _Fault("missing_field", header)
            ev["status"] = d[0]
            pos = 1
            if pos < n and (d[pos] != 0x06 or n - pos == 1):
                ev["timeout"] = d[pos]
                pos += 1
            _walk_bmps(a, d, pos)
        elif layout == B.L_PRINT_LINE:
            if n < 1:
                raise _Fault("missing_field", header)
            ev["attribute"] = d[0]
            ev["text"] = _text(d[1:])
        elif layout == B.L_RESULT:
            if n < 1:
                raise _Fault("missing_field", header)
            ev["result_code"] = d[0]
            _walk_bmps(a, d, 1)
    except _Fault as f:
        a.faults.append(f)
    if a.tlv_value is not None:
        a.tlv, fault = _walk_tlv(a, a.tlv_value, 1)
        if fault is not None:
            a.faults.append(fault)
    errors += [_error(f.code, offset, f.raw) for f in a.faults]
    if errors and strict:
        return errors

    if a.bmps:
        ev["bmps"] = a.bmps
    if a.tlv is not None:
        ev["tlv"] = a.tlv
    if a.withheld:
        ev["withheld"] = a.withheld
    out = errors + [{"type": "zvt.apdu", "data": ev}]
    out += _semantic(cls, instr, ev, a)
    return out


def _currency(ev: dict, a: _Apdu) -> str | None:
    cc = a.bmps.get("49", ev.get("currency"))
    return cc[-3:] if cc is not None else None


def _semantic(cls: int, instr: int, ev: dict, a: _Apdu) -> list[dict]:
    bm = a.bmps
    kind = B.REQUEST_KINDS.get((cls, instr))
    if kind is not None:
        r: dict = {"protocol": "zvt", "kind": kind}
        if "04" in bm:
            r["amount_minor"] = bm["04"]
        cc = _currency(ev, a)
        if cc is not None:
            r["currency"] = cc
        if "87" in bm:
            r["receipt_no"] = bm["87"]
        return [{"type": "payment.request", "data": r}]
    if (cls, instr) == (0x04, 0xFF):
        if "status" not in ev:
            return []
        s: dict = {"code": ev["status"]}
        lines = _lines(a.tlv, B.TLV_DISPLAY)
        if lines:
            s["text"] = "\n".join(lines)
        elif ev["status"] in B.STATUS_TEXTS:
            s["text"] = B.STATUS_TEXTS[ev["status"]]
        return [{"type": "payment.status", "data": s}]
    if (cls, instr) == (0x04, 0x0F):
        if 0x60 in a.raw:
            return [{"type": "payment.eod", "data": _eod(a)}]
        return [{"type": "payment.result", "data": _result(a)}]
    if (cls, instr) == (0x06, 0x1E):
        if "result_code" not in ev:
            return []
        return [{"type": "payment.result",
                 "data": {"approved": False, "result_code": f"{ev['result_code']:02X}"}}]
    if (cls, instr) == (0x06, 0xD1):
        if "text" not in ev:
            return []
        return [{"type": "payment.receipt_line", "data": {"text": ev["text"]}}]
    if (cls, instr) == (0x06, 0xD3):
        return [{"type": "payment.receipt_line", "data": {"text": t}} for t in _lines(a.tlv, B.TLV_PRINT)]
    return []


def _result(a: _Apdu) -> dict:
    bm = a.bmps
    r: dict = {}
    if "27" in bm:
        r["approved"] = bm["27"] == 0
        r["result_code"] = f"{bm['27']:02X}"
    if "04" in bm:
        r["amount_minor"] = bm["04"]
    if "49" in bm:
        r["currency"] = bm["49"][-3:]
    if "22" in bm:
        r["pan"] = bm["22"]
    if "8B" in bm:
        r["card"] = bm["8B"]
    elif "8A" in bm and bm["8A"] in B.CARD_TYPES:
        r["card"] = B.CARD_TYPES[bm["8A"]]
    if a.card_tech is not None and len(a.card_tech) == 1 and a.card_tech[0] in B.ENTRY:
        r["entry"] = B.ENTRY[a.card_tech[0]]
    for key, name in (("29", "terminal_id"), ("0B", "trace"), ("87", "receipt_no"), ("3B", "auth_code")):
        if key in bm:
            r[name] = bm[key]
    if 0xBA in a.raw:
        r["aid"] = a.raw[0xBA].hex().upper()
    elif a.aid is not None:
        r["aid"] = a.aid.hex().upper()
    if "AA" in bm:
        r["date"] = bm["AA"]
    elif "0D" in bm:
        r["date"] = bm["0D"]
    if "0C" in bm:
        r["time"] = bm["0C"]
    return r


def _eod(a: _Apdu) -> dict:
    v = a.raw[0x60]
    totals = []
    count = amount = 0
    for i, card in enumerate(B.TOTALS_CARDS):
        c = v[4 + 7 * i]
        m = int(v[5 + 7 * i:11 + 7 * i].hex())
        count += c
        amount += m
        if c:
            totals.append({"card": card, "count": c, "amount_minor": m})
    return {"count": count, "amount_minor": a.bmps.get("04", amount), "totals": totals}

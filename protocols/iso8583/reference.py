"""Pure-Python ISO 8583 and ``lenframe`` decoders: the readable twins of ``native/iso8583.c`` and
``native/lenframe.c``. Contract: ``docs/protocols/iso8583.md``. Card data is masked or withheld before anything
leaves (payment.md section 2)."""

from __future__ import annotations

import msgpack

from protocols.card import mask_pan, scrub, scrub_text
from protocols.iso8583 import tables as T
from protocols.iso8583.framer import Framer
from protocols.iso8583.spec import DATAS, Spec

_pack = msgpack.Packer(use_bin_type=True).pack

ASCII, EBCDIC, BCD, BINARY, HEX = (DATAS[k] for k in ("ascii", "ebcdic", "bcd", "binary", "hex"))
TEXT_TYPES = (ASCII, EBCDIC, BCD)
_HEX = frozenset(b"0123456789ABCDEFabcdef")


def _error(code: str, offset: int, field: str | None = None) -> dict:
    # raw is always empty: a length framing has no resynchronisation point, so once out of step its prefix and
    # MTI may be message data (payment.md section 2, iso8583.md section 1)
    data = {"code": code, "reason": T.ERRORS[code], "offset": offset, "raw": b""}
    if field is not None:
        data["field"] = field
    return {"type": "protocol.error", "data": data}


def _framing_events(items: list, on_frame) -> list:
    out = []
    for item in items:
        if item[0] == "error":
            _, code, off = item
            out.append(_error(code, off))
        else:
            out.extend(on_frame(item[1], item[2], item[3]))
    return out


class _Base:
    def __init__(self, framer: Framer):
        self._framer = framer
        self._offset = 0

    def feed(self, data) -> bytes:
        data = bytes(data)
        base = self._offset
        self._offset += len(data)
        return self._pack(_framing_events(self._framer.feed(data, base), self._frame))

    def close(self) -> bytes:
        return self._pack(_framing_events(self._framer.close(), self._frame))

    @staticmethod
    def _pack(events: list) -> bytes:
        return b"".join(_pack(ev) for ev in events)


# --------------------------------------------------------------------------------------------- lenframe


class ReferenceLenframeDecoder(_Base):
    def __init__(self, framing: str, header: int):
        super().__init__(Framer(framing, header, T.MAX_LENFRAME))
        self._name = framing
        self._header = header

    def _frame(self, off: int, prefix: bytes, body: bytes) -> list:
        data = {"dialect": self._name, "payload": scrub(body[self._header:])}
        if self._header:
            data["header"] = body[:self._header].hex()
        return [{"type": "ecr.frame", "data": data}]


# --------------------------------------------------------------------------------------------- card data


def track2_pan(s: str) -> dict:
    """{"pan": masked} from the characters before the first '=' or 'D', when they are 1..19 digits."""
    cut = [i for i in (s.find("="), s.find("D")) if i >= 0]
    if cut:
        k = min(cut)
        head = s[:k]
        if 1 <= k <= 19 and head.isascii() and head.isdigit():
            return {"pan": mask_pan(head)}
    return {}


def track1_pan(s: str) -> dict:
    """{"pan": masked} from the digits between a leading 'B' (after an optional '%') and the first '^'."""
    t = s[1:] if s.startswith("%") else s
    if t.startswith("B"):
        j = t.find("^")
        head = t[1:j]
        if 2 <= j <= 20 and head.isascii() and head.isdigit():
            return {"pan": mask_pan(head)}
    return {}


class BadTlv(Exception):
    pass


def parse_tlv(b: bytes, depth: int = 1) -> list:
    """[(tag hex, constructed, value bytes or nested list)], or BadTlv (section 5)."""
    out, seen, i, n = [], set(), 0, len(b)
    while i < n:
        t0 = b[i]
        i += 1
        tag = [t0]
        if t0 & 0x1F == 0x1F:
            while True:
                if i >= n or len(tag) == T.MAX_TAG_BYTES:
                    raise BadTlv
                x = b[i]
                i += 1
                tag.append(x)
                if not x & 0x80:
                    break
        if i >= n:
            raise BadTlv
        ln = b[i]
        i += 1
        if ln & 0x80:
            k = ln & 0x7F
            if k == 0 or k > 3 or i + k > n:
                raise BadTlv
            ln = int.from_bytes(b[i:i + k], "big")
            i += k
        if ln > n - i:
            raise BadTlv
        v = b[i:i + ln]
        i += ln
        key = bytes(tag).hex().upper()
        if key in seen:
            raise BadTlv
        seen.add(key)
        if t0 & 0x20:
            if depth == T.MAX_TLV_DEPTH:
                raise BadTlv
            out.append((key, True, parse_tlv(v, depth + 1)))
        else:
            out.append((key, False, v))
    return out


def looks_like_aid(v: bytes) -> bool:
    """5-16 bytes whose first nibble is A or D: the registered and national RID categories of ISO/IEC 7816-5
    (payment.md section 2: a PAN a device puts where an AID belongs is not emitted)."""
    return 5 <= len(v) <= 16 and v[0] >> 4 in (0xA, 0xD)


def tlv_map(items: list, path: str, withheld: list) -> dict:
    m = {}
    for key, constructed, v in items:
        if constructed:
            m[key] = tlv_map(v, f"{path}.{key}", withheld)
            continue
        rule = T.TLV_RULES.get(key)
        if rule == "withheld":
            withheld.append(f"{path}.{key}")
        elif rule == "pan":
            m[key] = mask_pan(v.hex().upper().rstrip("F"))
        elif rule == "track2":
            m[key] = track2_pan(v.hex().upper())
        elif rule == "track1":
            m[key] = track1_pan(v.decode("latin-1"))
        else:
            m[key] = scrub(v)
    return m


# ----------------------------------------------------------------------------------------------- iso8583


def _digits(b: bytes, lo: int, hi: int) -> bool:
    return all(lo <= c <= hi for c in b)


class ReferenceIso8583Decoder(_Base):
    def __init__(self, spec: Spec, framing: str, header: int, strict: bool):
        super().__init__(Framer(framing, header, T.MAX_ISO_FRAME))
        self.spec = spec
        self.header = header
        self.strict = strict

    def _frame(self, off: int, prefix: bytes, body: bytes) -> list:
        spec = self.spec
        msg = body[self.header:]
        errors: list = []
        mti_len = 2 if spec.mti == 2 else 4

        def err(code, field):
            errors.append(_error(code, off, field))

        # MTI
        m = msg[:mti_len]
        ok = len(m) == mti_len
        if ok and spec.mti == 0:
            ok = _digits(m, 0x30, 0x39)
            mti = m.decode("ascii") if ok else ""
        elif ok and spec.mti == 1:
            ok = _digits(m, 0xF0, 0xF9)
            mti = "".join(chr(c - 0xC0) for c in m) if ok else ""
        elif ok:
            mti = m.hex()
            ok = mti.isdigit()
        if not ok:
            err("bad_mti", "mti")
            return errors
        pos = mti_len

        # bitmaps
        bitmap = bytearray(16)
        for k in range(2):
            width = 16 if spec.bitmap_hex else 8
            part = msg[pos:pos + width]
            if len(part) < width:
                err("bad_bitmap", "bitmap")
                return errors
            if spec.bitmap_hex:
                if not all(c in _HEX for c in part):
                    err("bad_bitmap", "bitmap")
                    return errors
                part = bytes.fromhex(part.decode("ascii"))
            bitmap[8 * k:8 * k + 8] = part
            pos += width
            if not bitmap[0] & 0x80:
                break

        # fields, in one pass
        fields: dict = {}
        withheld: list = []
        last = None
        fatal = False
        for n in range(2, 129):
            if not bitmap[(n - 1) >> 3] & (0x80 >> ((n - 1) & 7)):
                continue
            f = spec.fields[n]
            key = str(n)
            if f is None:
                err("unknown_field", key)
                fatal = True
                break
            if f.kind:
                lp = msg[pos:pos + f.prefix_width]
                length = self._length(f, lp)
                if length is None or length > f.max:
                    err("bad_field_length", key)
                    fatal = True
                    break
                pos += f.prefix_width
            else:
                length = f.max
            wire = (length + 1) // 2 if f.digits else length
            if len(msg) - pos < wire:
                err("field_truncated", key)
                fatal = True
                break
            data = msg[pos:pos + wire]
            pos += wire
            last = key
            self._value(n, f, length, data, fields, withheld, err)
        if not fatal and pos < len(msg):
            err("extra_data", last or "bitmap")
        if errors and self.strict:
            return errors
        event = {"mti": mti, "fields": fields, "withheld": withheld}
        if self.header:
            event["header"] = body[:self.header].hex()
        return errors + [{"type": "iso8583.message", "data": event}] + semantic(mti, fields)

    @staticmethod
    def _length(f, lp: bytes) -> int | None:
        if len(lp) < f.prefix_width:
            return None
        if f.prefix == 0:
            return int(lp) if _digits(lp, 0x30, 0x39) else None
        if f.prefix == 1:
            return int("".join(chr(c - 0xC0) for c in lp)) if _digits(lp, 0xF0, 0xF9) else None
        if f.prefix == 2:
            h = lp.hex()
            return int(h) if h.isdigit() else None
        return int.from_bytes(lp, "big")

    @staticmethod
    def _value(n, f, length, data, fields, withheld, err) -> None:
        key = str(n)
        if n in T.WITHHELD_FIELDS:
            withheld.append(key)
            return
        if f.data == ASCII:
            value = data.decode("latin-1")
        elif f.data == EBCDIC:
            value = data.translate(T.CP500_TO_LATIN1).decode("latin-1")
        elif f.data == BCD:
            value = data.hex().upper()
            if f.digits and length % 2:
                value = value[:length] if f.pad_right else value[1:]
        else:
            value = data
        text = f.data in TEXT_TYPES
        if n == T.PAN_FIELD or n in T.TRACK2_FIELDS or n in T.TRACK1_FIELDS:
            if not text:
                withheld.append(key)
            elif n == T.PAN_FIELD:
                fields[key] = mask_pan(value)
            elif n in T.TRACK2_FIELDS:
                fields[key] = track2_pan(value)
            else:
                fields[key] = track1_pan(value)
            return
        if text:
            fields[key] = scrub_text(value)
            return
        if f.data == HEX:
            if len(data) % 2 or not all(c in _HEX for c in data):
                err("bad_field_data", key)
                return
            value = bytes.fromhex(data.decode("ascii"))
        if f.tlv:
            try:
                items = parse_tlv(value)
            except BadTlv:
                err("bad_tlv", key)
                return
            fields[key] = tlv_map(items, key, withheld)
            return
        fields[key] = scrub(value)


# ---------------------------------------------------------------------------------------- semantic events


def _str(fields: dict, n: int) -> str | None:
    v = fields.get(str(n))
    return v if isinstance(v, str) else None


def _amount(fields: dict) -> dict:
    out = {}
    a = _str(fields, 4)
    if a is not None and 1 <= len(a) <= 18 and a.isascii() and a.isdigit():
        out["amount_minor"] = int(a)
    c = _str(fields, 49)
    if c is not None and len(c) == 3 and c.isascii() and c.isdigit():
        out["currency"] = c
    return out


def semantic(mti: str, fields: dict) -> list:
    cls, function, origin = mti[1], mti[2], mti[3]
    if origin != "0" or cls not in "124":
        return []
    if function == "0":
        if cls == "4":
            kind = "reversal"
        else:
            pc = _str(fields, 3)
            kind = T.REQUEST_KINDS.get((cls, pc[:2])) if pc is not None and len(pc) >= 2 else None
            if kind is None:
                return []
        return [{"type": "payment.request", "data": {"protocol": "iso8583", "kind": kind, **_amount(fields)}}]
    if function != "1":
        return []
    data: dict = {}
    rc = _str(fields, 39)
    if rc is not None:
        data["approved"] = rc == "00"
        data["result_code"] = rc
    data.update(_amount(fields))
    pan = None
    for n in T.RESULT_PAN_FIELDS:
        v = fields.get(str(n))
        if n == T.PAN_FIELD:
            pan = v if isinstance(v, str) else None
        elif isinstance(v, dict) and isinstance(v.get("pan"), str):
            pan = v["pan"]
        if pan is not None:
            break
    if pan is not None:
        data["pan"] = pan
        brand = T.card_brand(pan)
        if brand is not None:
            data["card"] = brand
    e = _str(fields, 22)
    if e is not None and e[:2] in T.ENTRY_MODES:
        data["entry"] = T.ENTRY_MODES[e[:2]]
    for key, n in (("terminal_id", 41), ("trace", 11), ("rrn", 37), ("auth_code", 38)):
        v = _str(fields, n)
        if v is not None:
            data[key] = v
    icc = fields.get("55")
    if isinstance(icc, dict):
        for tag in ("4F", "84"):
            v = icc.get(tag)
            if isinstance(v, bytes) and looks_like_aid(v):
                data["aid"] = v.hex().upper()
                break
    for key, n in (("date", 13), ("time", 12)):
        v = _str(fields, n)
        if v is not None:
            data[key] = v
    return [{"type": "payment.result", "data": data}]

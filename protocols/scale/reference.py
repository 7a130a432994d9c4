"""Pure-Python scale decoder: the readable twin of ``native/scale.c``. Contract: ``docs/protocols/scale.md``.

Bytes are framed per protocol and direction (section 2), then each frame is decoded by the protocol's message
decoder. Weights are parsed as integers (value × 1000), never through floats. Magellan labels go through the
scanner decoder's own label function with the AIM identifier their type prefix maps to."""

from __future__ import annotations

import msgpack

from protocols.scale import tables as T
from protocols.scanner.reference import decode_label
from protocols.scanner.tables import Config as ScannerConfig

_pack = msgpack.Packer(use_bin_type=True).pack

STX, ETX, LF, CR = 0x02, 0x03, 0x0A, 0x0D
_SCANNER = ScannerConfig()


def _error(code: str, offset: int) -> dict:
    return {"type": "protocol.error", "data": {"code": code, "reason": T.ERRORS[code], "offset": offset, "raw": b""}}


def _weight(milli: int, unit: str, stable: bool, net: bool) -> dict:
    return {"type": "scale.weight", "data": {"value_milli": milli, "unit": unit, "stable": stable, "net": net}}


def _status(motion=False, zero=False, under=False, over=False, net=False, faults=(), unit=None) -> dict:
    faults = [f for f in T.FAULTS if f in faults]
    if faults:
        upos = T.UPOS_NOT_READY
    elif over:
        upos = T.UPOS_OVERWEIGHT
    elif under:
        upos = T.UPOS_UNDER_ZERO
    elif motion:
        upos = T.UPOS_UNSTABLE
    elif zero:
        upos = T.UPOS_ZERO
    else:
        upos = T.UPOS_STABLE_WEIGHT
    data = {"motion": bool(motion), "zero": bool(zero), "under": bool(under), "over": bool(over),
            "error": bool(faults), "upos_status": upos, "net": bool(net), "faults": faults}
    if unit is not None:
        data["unit"] = unit
    return {"type": "scale.status", "data": data}


def parse_number(s: bytes):
    """Spaces, optional sign, spaces, digits with at most one point: (end index, value × 1000, had a point), or None
    when there is no number or it has more than 9 digits or 3 decimals."""
    i, n = 0, len(s)
    while i < n and s[i] == 0x20:
        i += 1
    neg = False
    if i < n and s[i] in b"-+":
        neg = s[i] == 0x2D
        i += 1
        while i < n and s[i] == 0x20:
            i += 1
    start = i
    point = False
    while i < n:
        c = s[i]
        if 0x30 <= c <= 0x39:
            pass
        elif c == 0x2E and not point:
            point = True
        else:
            break
        i += 1
    text = s[start:i]
    digits = text.replace(b".", b"")
    if len(digits) > T.MAX_DIGITS:
        return None
    decimals = len(text) - text.index(b".") - 1 if point else 0
    if not digits or decimals > 3:
        return None
    value = int(digits) * 10 ** (3 - decimals)
    return i, -value if neg else value, point


def parse_weight(s: bytes):
    """(value × 1000, unit) for the section 1 grammar, or None."""
    got = parse_number(s)
    if got is None:
        return None
    i, milli, _ = got
    while i < len(s) and s[i] == 0x20:
        i += 1
    unit = T.UNITS.get(s[i:])
    return None if unit is None else (milli, unit)


def nci_status(f: bytes):
    """The status flags of NCI status bytes, or None when they break the fixed or continuation bits."""
    m = len(f)
    if m < 2 or m > T.MAX_STATUS:
        return None
    bs = [b & 0x7F for b in f]
    for i, b in enumerate(bs):
        if b & 0x30 != 0x30:
            return None
        if i >= 1 and bool(b & 0x40) != (i + 1 < m):
            return None
    s1, s2 = bs[0], bs[1]
    s3 = bs[2] if m >= 3 else 0x30
    faults = []
    if s1 & 4:
        faults.append("ram")
    if s1 & 8:
        faults.append("eeprom")
    if s2 & 4:
        faults.append("rom")
    if s2 & 8:
        faults.append("calibration")
    if s3 & 8:
        faults.append("initial_zero")
    return {"motion": bool(s1 & 1), "zero": bool(s1 & 2), "under": bool(s2 & 1), "over": bool(s2 & 2),
            "net": bool(s3 & 4), "faults": faults}


class ReferenceScaleDecoder:
    def __init__(self, cfg: T.Config):
        self.cfg = cfg
        p, frm = cfg.protocol, cfg.from_device
        self.opener = -1
        self.skip = -1
        if p == "scale-nci":
            self.opener, self.term = (LF, ETX) if frm else (-1, CR)
            if not frm:
                self.skip = LF
        elif p == "scale-toledo":
            self.opener, self.term = (STX, CR) if frm else (-1, -1)
        elif p == "scale-cas":
            self.term = LF
        else:
            self.term, self.skip = CR, LF
        self.commands = T.COMMAND_TABLE.get(p, {})
        self.offset = 0
        self.in_frame = False
        self.dropping = False
        self.junk = False
        self.buf = bytearray()
        self.start = 0

    # ------------------------------------------------------------------------------------------ messages
    def _request(self, c: bytes, out: list) -> None:
        name = self.commands.get(c)
        if name is None:
            out.append(_error("scale_unknown_command", self.start))
        else:
            out.append({"type": "scale.request", "data": {"command": c.decode("latin-1"), "name": name}})

    def _nci(self, c: bytes, out: list) -> None:
        if not c or c[-1] != CR:
            out.append(_error("scale_bad_reply", self.start))
            return
        body = c[:-1]
        fields = body.split(b"\r\n")
        if len(fields) == 1:
            if body == b"?":
                out.append({"type": "link.nak", "data": {}})
                return
            st = nci_status(body)
            out.append(_error("scale_bad_status", self.start) if st is None else _status(**st))
            return
        if len(fields) > 2:
            out.append(_error("scale_bad_reply", self.start))
            return
        f1, f2 = fields
        st = nci_status(f2)
        if st is None:
            out.append(_error("scale_bad_status", self.start))
            return
        unit = T.UNITS.get(f1.lstrip(b" "))
        if unit is not None:
            out.append(_status(**st, unit=unit))
            return
        w = parse_weight(f1)
        if w is None:
            out.append(_error("scale_bad_weight", self.start))
        else:
            out.append(_weight(w[0], w[1], not st["motion"], st["net"]))
        out.append(_status(**st))

    def _toledo(self, c: bytes, out: list) -> None:
        if len(c) == 2 and c[0] == 0x3F:
            s = c[1]
            out.append(_status(motion=s & 1, over=s & 2, under=s & 4, zero=s & 16, net=s & 32,
                               faults=("zero_range",) if s & 8 else ()))
            return
        stripped = c.lstrip(b" ")
        if stripped and stripped[0] not in b"+-":
            got = parse_number(c)
            if got is not None:
                i, milli, point = got
                net = False
                if c[i:i + 1] == b"N":
                    net = True
                    i += 1
                if i == len(c):
                    out.append(_weight(milli, self.cfg.unit if point else "g", True, net))
                    return
        out.append(_error("scale_bad_reply", self.start))

    def _cas(self, c: bytes, out: list) -> None:
        if len(c) < 6 or c[2] != 0x2C or c[5] != 0x2C or c[3:5] not in (b"GS", b"NT"):
            out.append(_error("scale_bad_reply", self.start))
            return
        state, net = c[0:2], c[3:5] == b"NT"
        if state == b"OL":
            out.append(_status(over=True, net=net))
            return
        if state not in (b"ST", b"US"):
            out.append(_error("scale_bad_reply", self.start))
            return
        w = parse_weight(c[6:])
        if w is None:
            out.append(_error("scale_bad_weight", self.start))
        else:
            out.append(_weight(w[0], w[1], state == b"ST", net))

    def _magellan(self, c: bytes, out: list) -> None:
        if c.startswith(b"S08"):
            for prefix, aim in T.LABELS:
                if c.startswith(prefix):
                    out.extend(decode_label(_SCANNER, aim + c[len(prefix):], self.start))
                    return
            out.append(_error("magellan_unknown_label", self.start))
            return
        if c.startswith(b"S144") and len(c) in (8, 9) and all(0x30 <= b <= 0x39 for b in c[4:]):
            v = int(c[4:])
            kg = self.cfg.unit == "kg"
            out.append(_weight(v if kg else v * 10, self.cfg.unit, True, False))
            return
        flag = T.MAGELLAN_STATUS.get(c)
        if flag is not None:
            out.append(_status(**{flag: True}))
            return
        out.append(_error("scale_bad_reply", self.start))

    def _end(self, out: list) -> None:
        c = bytes(self.buf)
        self.in_frame = False
        self.buf.clear()
        if self.dropping:
            self.dropping = False
            return
        p = self.cfg.protocol
        if p == "scale-cas" and c[-1:] == b"\r":
            c = c[:-1]
        if p == "scale-nci" and self.cfg.from_device:
            self._nci(c, out)
        elif p == "scale-toledo":
            self._toledo(c, out)
        elif not c:
            return
        elif not self.cfg.from_device:
            if p == "scale-cas":
                out.append(_error("scale_unknown_command", self.start))
            else:
                self._request(c, out)
        elif p == "scale-cas":
            self._cas(c, out)
        else:
            self._magellan(c, out)

    # ------------------------------------------------------------------------------------------- framing
    def feed(self, data) -> bytes:
        data = bytes(data)
        out: list = []
        base = self.offset
        if self.term < 0:  # Toledo to_device: one byte, one command
            for k, c in enumerate(data):
                if c in (CR, LF):
                    self.junk = False
                    continue
                self.start = base + k
                if bytes([c]) in self.commands:
                    self.junk = False
                    self._request(bytes([c]), out)
                elif not self.junk:
                    self.junk = True
                    out.append(_error("scale_unknown_command", self.start))
        else:
            for k, c in enumerate(data):
                if not self.in_frame:
                    if self.opener >= 0:
                        if c == self.opener:
                            self.in_frame = True
                            self.junk = False
                            self.start = base + k
                            self.buf.clear()
                        elif not self.junk:
                            self.junk = True
                            out.append(_error("unexpected_byte", base + k))
                        continue
                    if c == self.skip:
                        continue
                    self.in_frame = True
                    self.start = base + k
                    self.buf.clear()
                    if c == self.term:
                        self._end(out)
                        continue
                    self.buf.append(c)
                    continue
                if c == self.term:
                    self._end(out)
                    continue
                if self.dropping:
                    continue
                if len(self.buf) == T.MAX_FRAME:
                    out.append(_error("scale_frame_too_long", self.start))
                    self.dropping = True
                    self.buf.clear()
                    continue
                self.buf.append(c)
        self.offset += len(data)
        return b"".join(_pack(e) for e in out)

    def close(self) -> bytes:
        out: list = []
        if self.in_frame:
            out.append(_error("truncated", self.start))
        self.in_frame = self.dropping = self.junk = False
        self.buf.clear()
        return b"".join(_pack(e) for e in out)

"""Pure-Python barcode scanner decoder: the readable twin of ``native/scanner.c``. Contract:
``docs/protocols/scanner.md``. Serial framing (prefix, suffix or inter-character gap) and HID-POS report
reassembly feed one label decoder: MSR track shapes, AIM identifiers, EAN/UPC check digits, UPC-E expansion and
GS1 element strings. Labels leave scrubbed by the card rules unless validated as a product code."""

from __future__ import annotations

import msgpack

from protocols.card import scrub
from protocols.msr.track import swipe_event, track_pan
from protocols.scanner import tables as T

_pack = msgpack.Packer(use_bin_type=True).pack

GS = 0x1D
CR = 0x0D


def _error(code: str, offset: int) -> dict:
    return {"type": "protocol.error", "data": {"code": code, "reason": T.ERRORS[code], "offset": offset, "raw": b""}}


def _digits(b: bytes) -> bool:
    return bool(b) and all(0x30 <= c <= 0x39 for c in b)


def gs1_check_ok(digits: bytes) -> bool:
    """The GS1 mod-10 check digit (weights 3, 1 from the right, check digit excluded) of an all-digit string."""
    total = 0
    for k, c in enumerate(reversed(digits[:-1])):
        total += (c - 0x30) * (3 if k % 2 == 0 else 1)
    return (10 - total % 10) % 10 == digits[-1] - 0x30


def upce_expand(d: bytes) -> bytes | None:
    """The UPC-A (12 digits) of an 8-digit UPC-E (number system 0 or 1, six digits, check), or None."""
    if len(d) != 8 or not _digits(d) or d[0] not in b"01":
        return None
    ns, x, check = d[0:1], d[1:7], d[7:8]
    last = x[5]
    if last in b"012":
        body = x[0:2] + x[5:6] + b"0000" + x[2:5]
    elif last == ord("3"):
        body = x[0:3] + b"00000" + x[3:5]
    elif last == ord("4"):
        body = x[0:4] + b"00000" + x[4:5]
    else:
        body = x[0:5] + b"0000" + x[5:6]
    return ns + body + check


def _is_aim(label: bytes) -> bool:
    return (len(label) >= 3 and label[0] == 0x5D and (0x41 <= label[1] <= 0x5A or 0x61 <= label[1] <= 0x7A)
            and (0x30 <= label[2] <= 0x39 or 0x41 <= label[2] <= 0x5A or 0x61 <= label[2] <= 0x7A))


def _track(label: bytes) -> dict | None:
    """msr.swipe (the whole event) when the label has the shape of a magnetic stripe track (scanner.md section 5);
    the PAN rule and the event are the MSR decoder's (protocols/msr/track.py)."""
    if not label or label[0] not in b"%;":
        return None
    number = 1 if label[0] == 0x25 else 2
    pan = track_pan(label, number)
    if pan is not None:
        return swipe_event(pan, [number])
    if len(label) >= 3 and label[-1] == 0x3F:
        return swipe_event(None, [number])
    return None


def _track_inside(label: bytes) -> dict | None:
    """msr.swipe for a track inside a label (a byte before the start sentinel, an identifier or prefix not
    stripped): a start sentinel whose track yields a PAN of a card's length (12 or more digits, so that "a;1=2" in a
    QR code stays a label), or a track 1 "%B ... ^" (its name follows the ^)."""
    for i in range(1, len(label)):
        if label[i] not in b"%;":
            continue
        number = 1 if label[i] == 0x25 else 2
        pan = track_pan(label[i:], number)
        if pan is not None and len(pan) >= 12:
            return swipe_event(pan, [number])
        if number == 1 and i + 2 < len(label) and label[i + 1] == 0x42 and 0x5E in label[i + 2:]:
            return swipe_event(None, [number])
    return None


def parse_gs1(data: bytes):
    """(elements, error code or None): elements are (ai, start, end) spans of data, in order."""
    i, n = 0, len(data)
    out: list[tuple[str, int, int]] = []
    seen: set[str] = set()
    while i < n:
        if data[i] == GS:
            i += 1
            continue
        spec = None
        for k in (2, 3, 4):
            if i + k > n:
                break
            ai = data[i:i + k].decode("latin-1")
            spec = T.AI_TABLE.get(ai)
            if spec is not None:
                break
        if spec is None:
            return out, "gs1_unknown_ai"
        fixed, top, charset, kind = spec
        j = i + k
        if fixed:
            end = j + fixed
            if end > n:
                return out, "gs1_bad_value"
        else:
            end = data.find(GS, j)
            if end < 0:
                end = n
            if end == j or end - j > top or (kind == "cur_dec" and end - j < 4):
                return out, "gs1_bad_value"
        value = data[j:end]
        if charset == "N":
            if not _digits(value):
                return out, "gs1_bad_value"
        elif any(c not in T.CSET82 for c in value):
            return out, "gs1_bad_value"
        if ai in seen:
            return out, "gs1_repeated_ai"
        seen.add(ai)
        out.append((ai, j, end))
        i = end
    return out, None


def decode_label(cfg: T.Config, raw: bytes, offset: int) -> list[dict]:
    """The events of one complete label (serial: prefix included, suffix excluded; HID: AIM id + data)."""
    if not raw:
        return []
    events: list[dict] = []
    label = raw
    if cfg.prefix:
        if label.startswith(cfg.prefix):
            label = label[len(cfg.prefix):]
            if not label:
                return []
        else:
            events.append(_error("missing_prefix", offset))
    track = _track(label) or _track_inside(label)
    if track is not None:
        events.append(track)
        return events
    aim = b""
    data = label
    if cfg.aim != "off" and _is_aim(label):
        aim, data = label[:3], label[3:]
        track = _track(data)  # a card swiped through a reader that prefixes an AIM identifier
        if track is not None:
            events.append(track)
            return events
    elif cfg.aim == "on":
        events.append(_error("missing_aim_id", offset))
    gs1 = False
    validated = False
    expanded = None
    if aim:
        code, mod = chr(aim[1]), chr(aim[2])
        entry = T.AIM.get((code, mod)) or T.AIM.get((code, ""))
        if entry is None:
            name, upos = T.UNKNOWN
        else:
            name, upos, gs1 = entry
        if aim == b"]E0":
            if _digits(data) and len(data) in (8, 12, 13):
                if len(data) == 8:
                    name, upos = T.UPCE
                    expanded = upce_expand(data)
                    validated = expanded is not None and gs1_check_ok(expanded)
                    if not validated:
                        expanded = None
                else:
                    name, upos = T.UPCA if len(data) == 12 or data[0] == 0x30 else T.EAN13
                    validated = gs1_check_ok(data)
            if not validated:
                events.append(_error("bad_check_digit", offset))
        elif aim == b"]E4" or aim == b"]E3":
            want = (8,) if aim == b"]E4" else (15, 18)
            validated = _digits(data) and len(data) in want and gs1_check_ok(data[:8 if aim == b"]E4" else 13])
            if not validated:
                events.append(_error("bad_check_digit", offset))
            elif aim == b"]E3" and not (data[:2] == b"97" and data[2:3] in (b"7", b"8", b"9")):
                validated = False  # a valid code, but add-ons belong to books and periodicals: it leaves scrubbed
        elif aim[1] == 0x49 and len(data) == 14 and _digits(data) and gs1_check_ok(data):
            validated = True  # ITF-14: a GTIN-14 on a carton
    else:
        name, upos = T.UNKNOWN
        if len(data) in (8, 12, 13) and _digits(data) and gs1_check_ok(data):
            name, upos = {8: T.EAN8, 12: T.UPCA, 13: T.EAN13}[len(data)]
            validated = True
    if data[:1] == bytes([GS]):
        gs1 = True
    body: dict = {}
    text = bytearray(data)
    if gs1:
        elements, err = parse_gs1(data)
        if err is None:  # a key with a wrong check digit is not a GS1 key (it may be a card number read as one)
            for ai, a, b in elements:
                if ai in T.CHECK_DIGIT_AIS and not gs1_check_ok(data[a:b]):
                    err = "bad_check_digit"
                    break
        if err is not None:
            events.append(_error(err, offset))
        values: dict[str, str] = {}
        numbers: dict[str, dict] = {}
        for ai, a, b in elements:
            fixed, top, charset, kind = T.AI_TABLE[ai]
            value = data[a:b]
            if err is not None or ai not in T.CHECK_DIGIT_AIS:  # every value but a checked key is scrubbed
                value = scrub(value)
                text[a:b] = value
            values[ai] = value.decode("latin-1")
            if value != data[a:b]:
                continue  # masked: no number
            if kind == "dec":
                numbers[ai] = {"value": int(value), "decimals": int(ai[-1])}
            elif kind == "cur_dec":
                numbers[ai] = {"value": int(value[3:]), "decimals": int(ai[-1]), "currency": value[:3].decode()}
        validated = err is None
        body_gs1 = values
    if not validated:
        text = bytearray(scrub(data))
    body["label"] = text.decode("latin-1")
    body["symbology"] = name
    body["upos_type"] = upos
    body["aim"] = aim.decode("latin-1")
    if expanded is not None:
        body["expanded"] = expanded.decode("ascii")
    if gs1:
        body["gs1"] = body_gs1
        if numbers:
            body["gs1_numbers"] = numbers
    events.append({"type": "scanner.data", "data": body})
    return events


class ReferenceScannerDecoder:
    """Serial framing: prefix/suffix or, with suffix none, the inter-character gap seen through tick()."""

    def __init__(self, cfg: T.Config):
        self.cfg = cfg
        self.term = T.SUFFIXES[cfg.suffix]
        self.gap_ns = cfg.gap_ms * 1_000_000
        self.offset = 0
        self.buf = bytearray()
        self.start = 0
        self.dropping = False
        self.fresh = False
        self.last_seen: int | None = None

    def _end(self, out: list) -> None:
        if self.dropping:
            self.dropping = False
        elif self.buf:
            label = bytes(self.buf)
            if self.cfg.suffix == "crlf" and label[-1] == CR:
                label = label[:-1]
            out.extend(decode_label(self.cfg, label, self.start))
        self.buf.clear()

    def feed(self, data) -> bytes:
        data = bytes(data)
        if not data:
            return b""
        out: list = []
        term = self.term
        for k, c in enumerate(data):
            if c == term:
                self._end(out)
                continue
            if self.dropping:
                continue
            if not self.buf:
                self.start = self.offset + k
            if len(self.buf) == T.MAX_LABEL:
                out.append(_error("label_too_long", self.start))
                self.buf.clear()
                self.dropping = True
                continue
            self.buf.append(c)
        self.offset += len(data)
        if term < 0:
            self.fresh = True
        return b"".join(_pack(e) for e in out)

    def tick(self, now_ns: int) -> bytes:
        if not -(1 << 63) <= now_ns < (1 << 63):
            raise OverflowError("tick(now_ns): now_ns must fit in a signed 64-bit integer")
        if self.term >= 0:
            return b""
        if self.fresh:
            self.fresh = False
            self.last_seen = now_ns
            return b""
        out: list = []
        if (self.buf or self.dropping) and self.last_seen is not None and now_ns - self.last_seen > self.gap_ns:
            self._end(out)
        return b"".join(_pack(e) for e in out)

    def close(self) -> bytes:
        out: list = []
        if self.term < 0:
            self._end(out)
        elif self.buf:
            out.append(_error("truncated", self.start))
        self.buf.clear()
        self.dropping = False
        return b"".join(_pack(e) for e in out)


class ReferenceHidPosDecoder:
    """HID-POS input reports (64 bytes each, report id first) reassembled into labels."""

    def __init__(self, cfg: T.Config):
        self.cfg = cfg
        self.offset = 0
        self.rec = bytearray()
        self.rec_start = 0
        self.active = False
        self.dropping = False
        self.lab = bytearray()
        self.lab_start = 0
        self.aim = b""

    def _report(self, rec: bytes, off: int, out: list) -> None:
        n = rec[1]
        if rec[0] != T.HID_REPORT_ID or n > T.HID_DATA_MAX:
            out.append(_error("bad_report", off))
            self.active = self.dropping = False
            self.lab.clear()
            return
        if not self.active:
            self.active = True
            self.lab_start = off
            self.aim = rec[2:5] if rec[2] == 0x5D else b""
            self.lab[:] = self.aim
        if not self.dropping:
            if len(self.lab) + n > T.MAX_LABEL:
                out.append(_error("label_too_long", self.lab_start))
                self.dropping = True
                self.lab.clear()
            else:
                self.lab += rec[5:5 + n]
        if rec[63] == 0:
            if not self.dropping:
                out.extend(decode_label(self.cfg, bytes(self.lab), self.lab_start))
            self.active = self.dropping = False
            self.lab.clear()

    def feed(self, data) -> bytes:
        data = bytes(data)
        out: list = []
        k = 0
        while k < len(data):
            if not self.rec:
                self.rec_start = self.offset + k
            take = min(T.HID_REPORT - len(self.rec), len(data) - k)
            self.rec += data[k:k + take]
            k += take
            if len(self.rec) == T.HID_REPORT:
                self._report(bytes(self.rec), self.rec_start, out)
                self.rec.clear()
        self.offset += len(data)
        return b"".join(_pack(e) for e in out)

    def close(self) -> bytes:
        out: list = []
        if self.active or self.rec:
            out.append(_error("truncated", self.lab_start if self.active else self.rec_start))
        self.rec.clear()
        self.lab.clear()
        self.active = self.dropping = False
        return b"".join(_pack(e) for e in out)

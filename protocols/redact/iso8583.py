"""ISO 8583 card data (``docs/protocols/iso8583.md`` section 3.2): fields 2 (PAN), 35/36 (track 2/3), 45 (track 1),
14 (expiry) and 52 (PIN block), and the card-data tags of TLV fields (55). Field offsets come from the same spec
the decoder uses (``options["spec"]``), frames from the same length framing (``framing``, ``header``). PAN digits
become ``0``; digits stay digits, so the decoder's masked output does not change. No checksum to fix.
"""

from __future__ import annotations

from protocols.iso8583 import _framing, _header
from protocols.iso8583 import spec as S
from protocols.iso8583 import tables as T
from protocols.iso8583.framer import Framer
from protocols.redact.fields import (_mask_hex_digits, _put_hex, mask_ascii_track1, mask_ascii_track2,
                                     mask_bcd_pan, mask_bcd_track, mask_free_text, mask_tlv, withhold)
from protocols.redact.text import _bump, mask_digit_positions

ASCII, EBCDIC, BCD, BINARY, HEX = 0, 1, 2, 3, 4
_HEXCHARS = frozenset(b"0123456789ABCDEFabcdef")

TLV_RULES = {
    "5A": lambda b, s, e, c: mask_bcd_pan(b, s, e, c, "0"),
    **{t: (lambda b, s, e, c: mask_bcd_track(b, s, e, c, "0")) for t in ("57", "9F6B", "9F20")},
    "56": mask_ascii_track1, "9F1F": mask_ascii_track1,
    **{t: withhold for t in ("5F20", "9F0B", "5F24")},
}


def _digits_ok(b: bytes, lo: int) -> bool:
    return all(lo <= c <= lo + 9 for c in b)


def _length(f, lp: bytes) -> int | None:
    if len(lp) < f.prefix_width:
        return None
    if f.prefix == 0:
        return int(lp) if lp and _digits_ok(lp, 0x30) else None
    if f.prefix == 1:
        return int("".join(chr(c - 0xC0) for c in lp)) if lp and _digits_ok(lp, 0xF0) else None
    if f.prefix == 2:
        h = lp.hex()
        return int(h) if h.isdigit() else None
    return int.from_bytes(lp, "big")


def _bcd_digit_range(f, length: int) -> tuple[int, int]:
    """The nibbles of a BCD field's digits (an odd count has one pad nibble, left or right)."""
    if f.digits and length % 2:
        return (0, length) if f.pad_right else (1, length + 1)
    return 0, 2 * ((length + 1) // 2 if f.digits else length)


def _mask_field(buf: bytearray, s: int, e: int, n: int, f, length: int, counts: dict) -> None:
    text = f.data in (ASCII, EBCDIC)
    zero = 0xF0 if f.data == EBCDIC else 0x30
    if n in T.WITHHELD_FIELDS:
        withhold(buf, s, e, counts, zero if text or f.data == HEX else 0x00)
        return
    if n == T.PAN_FIELD or n in T.TRACK2_FIELDS or n in T.TRACK1_FIELDS:
        if f.data in (BINARY, HEX):
            withhold(buf, s, e, counts, 0x30 if f.data == HEX else 0x00)
        elif f.data == BCD:
            h = list(buf[s:e].hex().upper())
            a, b = _bcd_digit_range(f, length)
            if n == T.PAN_FIELD:
                _mask_hex_digits(h, list(range(a, b)), "0")
                _put_hex(buf, s, e, h, counts, "pan")
            else:
                part = h[a:b]
                d = part.index("D") if "D" in part else -1
                if d > 0:
                    _mask_hex_digits(h, list(range(a, a + d)), "0")
                for i in range(a + d + 1, b):
                    h[i] = "0"
                _put_hex(buf, s, e, h, counts, "track")
        elif n == T.PAN_FIELD:
            before = bytes(buf[s:e])
            mask_digit_positions(buf, [i for i in range(s, e) if zero <= buf[i] <= zero + 9], zero)
            if bytes(buf[s:e]) != before:
                _bump(counts, "pan")
        elif n in T.TRACK2_FIELDS:
            seps = b"\x7e\xc4" if f.data == EBCDIC else b"=D"
            mask_ascii_track2(buf, s, e, counts, zero, seps)
        elif f.data == EBCDIC:
            mask_ascii_track1(buf, s, e, counts, zero=0xF0, space=0x40, b_char=0xC2, caret=0x5F)
        else:
            mask_ascii_track1(buf, s, e, counts)
        return
    if f.tlv and f.data in (BINARY, HEX):
        if f.data == BINARY:
            mask_tlv(buf, s, e, counts, TLV_RULES)
        elif (e - s) % 2 == 0 and all(c in _HEXCHARS for c in buf[s:e]):
            raw = bytearray(bytes.fromhex(buf[s:e].decode("ascii")))
            before = bytes(raw)
            mask_tlv(raw, 0, len(raw), counts, TLV_RULES)
            if bytes(raw) != before:
                upper = not any(0x61 <= c <= 0x66 for c in buf[s:e])
                h = raw.hex()
                buf[s:e] = (h.upper() if upper else h).encode("ascii")
        return
    if f.data in (ASCII, BINARY):
        mask_free_text(buf, s, e, counts)


def mask_message(body: bytearray, start: int, end: int, spec, counts: dict) -> None:
    """Mask the card data of one message (``body[start:end]``, after the link header), in place. A message the
    spec cannot walk stops where the decoder stops; what follows (a PIN block, a BCD PAN in field 55, …) cannot be
    told apart from other data, so it is masked whole (zero bytes)."""
    pos = start
    mti_len = 2 if spec.mti == 2 else 4
    pos += mti_len
    if pos >= end:
        return
    walked = _walk_fields(body, pos, end, spec, counts)
    if walked < end:
        withhold(body, walked, end, counts)


def _walk_fields(body: bytearray, pos: int, end: int, spec, counts: dict) -> int:
    """Mask field by field from the bitmap at ``pos``; return where the walk ended (``end`` when it walked the
    whole message)."""
    bitmap = bytearray(16)
    for k in range(2):
        width = 16 if spec.bitmap_hex else 8
        part = bytes(body[pos:pos + width])
        if len(part) < width:
            return pos
        if spec.bitmap_hex:
            if not all(c in _HEXCHARS for c in part):
                return pos
            part = bytes.fromhex(part.decode("ascii"))
        bitmap[8 * k:8 * k + 8] = part
        pos += width
        if not bitmap[0] & 0x80:
            break
    for n in range(2, 129):
        if not bitmap[(n - 1) >> 3] & (0x80 >> ((n - 1) & 7)):
            continue
        f = spec.fields[n]
        if f is None:
            return pos
        if f.kind:
            length = _length(f, bytes(body[pos:pos + f.prefix_width]))
            if length is None or length > f.max:
                return pos
            pos += f.prefix_width
        else:
            length = f.max
        wire = (length + 1) // 2 if f.digits else length
        if end - pos < wire:
            return pos
        _mask_field(body, pos, pos + wire, n, f, length, counts)
        pos += wire
    return pos


def masks_whole(options: dict) -> bool:
    """A device whose bytes are recorded masked whole: ISO 8583 without length framing (``framing="none"``)."""
    return _framing(options.get("framing", "len2"), True) == "none"


class Iso8583Redactor:
    """With ``framing="none"`` every byte is recorded as a zero byte (``masks_whole``). Otherwise holds one frame (at most ``MAX_ISO_FRAME`` bytes after its prefix, the decoder's bound) until it is
    complete; bytes outside frames pass at once."""

    def __init__(self, options: dict) -> None:
        self.counts: dict[str, int] = {}
        self.spec = S.load(options.get("spec", "iso87-binary"))
        self.framing = _framing(options.get("framing", "len2"), True)
        self.header = _header(options.get("header", 0))
        self._framer = Framer(self.framing, self.header, T.MAX_ISO_FRAME)
        self._plen = T.FRAMINGS[self.framing][1]
        self._held = bytearray()
        self._held_at = 0      # stream offset of _held[0]
        self._offset = 0       # stream offset of the next byte

    def feed(self, data: bytes) -> tuple[bytes, list[dict]]:
        base = self._offset
        self._offset += len(data)
        if self._plen == 0:
            # framing "none": a message's end is only known when the stream ends, and a flush or a time bound in
            # the middle would leave the rest to be parsed from a wrong start: the bytes are recorded masked whole
            if data and not self.counts.get("withheld"):
                _bump(self.counts, "withheld")  # the whole stream: one range
            self._held_at = self._offset
            return bytes(len(data)), []
        self._held += data
        for item in self._framer.feed(data, base):
            if item[0] != "frame":
                continue
            _, off, prefix, body = item
            body_at = off + len(prefix)
            if off < self._held_at:
                # a frame flush() cut: what of it is still held is zeroed, as its released part was
                for p in range(max(body_at, self._held_at), body_at + len(body)):
                    self._held[p - self._held_at] = 0
                continue
            at = body_at - self._held_at
            mask_message(self._held, at + self.header, at + len(body), self.spec, self.counts)
        fr = self._framer
        keep_from = fr.frame_off if fr.in_frame else (fr.pre_off if fr.pre else self._offset)
        return self._emit(keep_from), []

    @property
    def held(self) -> int:
        return len(self._held)

    def _emit(self, upto: int) -> bytes:
        n = max(0, upto - self._held_at)
        out = bytes(self._held[:n])
        del self._held[:n]
        self._held_at += n
        return out

    def flush(self, end: bool = False) -> tuple[bytes, list[dict]]:
        notes: list[dict] = []
        fr = self._framer
        if (fr.in_frame or fr.pre) and self._held:
            start = fr.frame_off + len(fr.prefix) if fr.in_frame else self._offset
            for p in range(max(start, self._held_at), self._offset):
                self._held[p - self._held_at] = 0
            notes.append({"offset": fr.frame_off, "reason": "message cut by a flush: its data masked whole"})
            _bump(self.counts, "withheld")
        return self._emit(self._offset), notes

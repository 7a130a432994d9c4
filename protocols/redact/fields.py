"""Masks for one card-data value whose place in a message is known (ZVT BMPs, ISO 8583 fields, EMV TLV values).
Each works in place on ``buf[start:end]`` and keeps the value's length and character class."""

from __future__ import annotations

from protocols.card import KEEP_FIRST, KEEP_LAST, PAN_MIN_DIGITS
from protocols.redact.text import _bump, mask_digit_positions, mask_text

MAX_TLV_DEPTH = 8  # as the decoders' (ZVT MAX_TLV_DEPTH, ISO 8583 TLV): deeper is malformed


def _mask_hex_digits(h: list[str], idxs: list[int], fill: str) -> None:
    n = len(idxs)
    first = KEEP_FIRST if n >= PAN_MIN_DIGITS else 0
    masked = idxs[first:max(n - KEEP_LAST, first)]
    if masked and all(h[i] == fill for i in masked):
        if fill == "E":  # already masked by the device ("E" is no digit): nothing of the PAN is left to hide
            return
        fill = "1" if fill == "0" else "0"  # real digits equal to the fill: write others, or the PAN stays
    for i in masked:
        h[i] = fill


def mask_bcd_pan(buf: bytearray, start: int, end: int, counts: dict, fill: str = "E") -> None:
    """BCD PAN with trailing ``F`` padding: the middle digits become ``fill`` (``E`` = masked by the device, ZVT)."""
    h = list(buf[start:end].hex().upper())
    idxs = [i for i, c in enumerate(h) if c in "0123456789E"]
    _mask_hex_digits(h, idxs, fill)
    _put_hex(buf, start, end, h, counts, "pan")


def mask_bcd_track(buf: bytearray, start: int, end: int, counts: dict, fill: str = "E") -> None:
    """Nibble-packed track 2/3: PAN digits before the first ``D`` masked, every nibble after it (but ``F``
    padding) ``0``."""
    h = list(buf[start:end].hex().upper())
    try:
        d = h.index("D")
    except ValueError:
        d = -1
    if d > 0:
        _mask_hex_digits(h, list(range(d)), fill)
        rest = range(d + 1, len(h))
    else:
        rest = range(len(h))
    for i in rest:
        if h[i] != "F":
            h[i] = "0"
    _put_hex(buf, start, end, h, counts, "track")


def _put_hex(buf: bytearray, start: int, end: int, h: list[str], counts: dict, kind: str) -> None:
    new = bytes.fromhex("".join(h))
    if new != bytes(buf[start:end]):
        buf[start:end] = new
        _bump(counts, kind)


def mask_ascii_track1(buf: bytearray, start: int, end: int, counts: dict, zero: int = 0x30, space: int = 0x20,
                      b_char: int = 0x42, caret: int = 0x5E) -> None:
    """Text track 1 (``[%]B`` PAN ``^`` name ``^`` rest): PAN middle ``0``, name spaces, the rest ``0``. Without that
    shape every byte becomes ``0``. ``zero``/``space``/… are the encoding's characters (EBCDIC for ISO 8583)."""
    before = bytes(buf[start:end])
    k = start + (1 if end > start and buf[start] == 0x25 else 0)
    ok = k < end and buf[k] == b_char
    j = buf.find(bytes([caret]), k + 1, end) if ok else -1
    digits = list(range(k + 1, j)) if j > k + 1 else []
    if ok and j > 0 and all(zero <= buf[i] <= zero + 9 for i in digits):
        mask_digit_positions(buf, digits, zero)
        j2 = buf.find(bytes([caret]), j + 1, end)
        name_end = j2 if j2 >= 0 else end
        buf[j + 1:name_end] = bytes([space]) * (name_end - j - 1)
        if j2 >= 0:
            for i in range(j2 + 1, end):
                if buf[i] != 0x3F:
                    buf[i] = zero
    else:
        buf[start:end] = bytes([zero]) * (end - start)
    if bytes(buf[start:end]) != before:
        _bump(counts, "track")


def mask_ascii_track2(buf: bytearray, start: int, end: int, counts: dict, zero: int = 0x30,
                      seps: bytes = b"=D") -> None:
    """Text track 2/3: the PAN (digits before ``=`` or ``D``) masked, every character after the separator ``0``."""
    before = bytes(buf[start:end])
    k = start + (1 if end > start and buf[start] == 0x3B else 0)
    j = k
    while j < end and zero <= buf[j] <= zero + 9:
        j += 1
    if j < end and buf[j] in seps and j > k:
        mask_digit_positions(buf, list(range(k, j)), zero)
        for i in range(j + 1, end):
            if buf[i] != 0x3F:
                buf[i] = zero
    else:
        buf[start:end] = bytes([zero]) * (end - start)
    if bytes(buf[start:end]) != before:
        _bump(counts, "track")


def withhold(buf: bytearray, start: int, end: int, counts: dict, fill: int = 0x00) -> None:
    if end > start and bytes(buf[start:end]) != bytes([fill]) * (end - start):
        buf[start:end] = bytes([fill]) * (end - start)
        _bump(counts, "withheld")


def mask_free_text(buf: bytearray, start: int, end: int, counts: dict) -> None:
    """A payment message's free text: every digit group sequence of 13 or more digits masked, as the decoders
    scrub it (``protocols.card.scrub``), and tracks."""
    part = buf[start:end]
    mask_text(part, counts, final=True, luhn=False)
    buf[start:end] = part


def looks_like_aid(v: bytes) -> bool:
    return 5 <= len(v) <= 16 and v[0] >> 4 in (0xA, 0xD)


def mask_tlv(buf: bytearray, start: int, end: int, counts: dict, rules: dict, depth: int = 1) -> None:
    """BER-TLV objects in ``buf[start:end]``: ``rules`` maps an uppercase hex tag to a mask function
    ``f(buf, start, end, counts)``; constructed objects are walked. A malformed encoding ends the walk and the rest of
    the range is withheld (zeros): a decoder rejects it too, and it may hold card data."""
    pos = start
    while pos < end:
        t0 = pos
        first = buf[pos]
        pos += 1
        if first & 0x1F == 0x1F:
            while pos < end and buf[pos] & 0x80 and pos - t0 < 4:
                pos += 1
            pos += 1
        if pos >= end or pos - t0 > 4:
            withhold(buf, t0, end, counts)
            return
        tag = bytes(buf[t0:pos]).hex().upper()
        ln = buf[pos]
        pos += 1
        if ln & 0x80:
            width = ln & 0x7F
            if width not in (1, 2) or pos + width > end:
                withhold(buf, t0, end, counts)
                return
            ln = int.from_bytes(buf[pos:pos + width], "big")
            pos += width
        if pos + ln > end:
            withhold(buf, t0, end, counts)
            return
        if first & 0x20:
            if depth >= MAX_TLV_DEPTH:
                withhold(buf, pos, pos + ln, counts)
            else:
                mask_tlv(buf, pos, pos + ln, counts, rules, depth + 1)
        else:
            rule = rules.get(tag)
            if rule is not None:
                rule(buf, pos, pos + ln, counts)
        pos += ln

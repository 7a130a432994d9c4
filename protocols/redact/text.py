"""Card data in ASCII streams (printer text, scanner and keyboard-wedge labels, MSR, displays, ECR payloads): ISO
7813 tracks and PANs. Sans-IO; ``mask_text`` works on a buffer, ``TextRedactor`` on a stream in any split.

* **Track 1** ``%B`` PAN ``^`` NAME ``^`` expiry, service code, discretionary ``?`` and **track 2** ``;`` PAN ``=``
  … ``?``: the PAN keeps its first six and last four digits (only the last four under 13 digits, as
  ``protocols.card.mask_pan``), the other PAN digits become ``0``; the name becomes spaces; everything after the
  second separator becomes ``0``. A track's LRC byte (the byte after ``?``, when it matched) is recomputed.
* **PAN**: a digit group sequence (``protocols.card``'s: digits with single spaces or hyphens between groups) of
  13–19 digits that passes the Luhn check — every real card number does — and is not a 13- or 14-digit GS1
  product code with a valid check digit (EAN-13, ITF-14, as the scanner decoder keeps them, scanner.md step 6):
  first six and last four digits kept, the others ``0``, separators kept.

Digits stay digits, so ``protocols.card.scrub`` and ``mask_pan`` give the same output for the redacted bytes as for
the original ones, and a decoder's events do not change.
"""

from __future__ import annotations

import re

from protocols.card import KEEP_FIRST, KEEP_LAST, PAN_MIN_DIGITS

PAN_MAX_DIGITS = 19
_SEQUENCE = re.compile(rb"[0-9]+(?:[ -][0-9]+)*")
TRACK1 = re.compile(rb"%B([0-9]{1,19})\^([\x20-\x3e\x40-\x5d\x5f]{0,26})\^([\x20-\x3e\x40-\x5d\x5f]{0,76})\?")
TRACK2 = re.compile(rb";([0-9]{1,19})=([0-9\x3a-\x3e]{0,37})\?")
_TRACK_BASE = {1: 0x20, 2: 0x30}

# The most a TextRedactor holds back: a track may still be arriving from its start sentinel on. Track 3, the
# longest, holds 107 characters with its LRC (ISO 7811); +5 for room. A PAN sequence (19 digits, 18 separators)
# is shorter.
TEXT_HOLD = 112


def luhn_ok(digits: bytes) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = c - 0x30
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def gs1_ok(digits: bytes) -> bool:
    """GS1 mod 10: weights 3, 1, 3 … from the digit left of the check digit."""
    body, check = digits[:-1], digits[-1] - 0x30
    total = sum((c - 0x30) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _bump(counts: dict, kind: str) -> None:
    counts[kind] = counts.get(kind, 0) + 1


def mask_digit_positions(buf: bytearray, idxs: list[int], zero: int = 0x30) -> None:
    """Mask the digits at ``idxs`` (one PAN, in order) like ``mask_pan``: the first six (13 digits or more) and the
    last four stay; the others become ``zero`` — or ``zero + 1`` when they were all ``zero`` already, so the result
    never equals a PAN whose masked digits happened to be all zeros."""
    n = len(idxs)
    first = KEEP_FIRST if n >= PAN_MIN_DIGITS else 0
    masked = idxs[first:max(n - KEEP_LAST, first)]
    fill = zero + 1 if masked and all(buf[i] == zero for i in masked) else zero
    for i in masked:
        buf[i] = fill


def _track_lrc(data: bytes, base: int) -> int:
    lrc = 0
    for c in data:
        lrc ^= (c - base) & 0x3F
    return lrc


def _mask_track(buf: bytearray, m: re.Match, number: int) -> None:
    start, end = m.start(), m.end()
    base = _TRACK_BASE[number]
    before = bytes(buf[start:end])
    mask_digit_positions(buf, list(range(m.start(1), m.end(1))))
    if number == 1:
        buf[m.start(2):m.end(2)] = b" " * (m.end(2) - m.start(2))
        buf[m.start(3):m.end(3)] = b"0" * (m.end(3) - m.start(3))
    else:
        buf[m.start(2):m.end(2)] = b"0" * (m.end(2) - m.start(2))
    if end < len(buf) and buf[end] == base + _track_lrc(before, base):
        buf[end] = base + _track_lrc(bytes(buf[start:end]), base)


def mask_text(buf: bytearray, counts: dict, final: bool = True) -> int:
    """Mask, in place, every complete track and PAN in ``buf``; return how many leading bytes are final. With
    ``final`` False, a track or digit sequence that reaches the end of ``buf`` (it may go on in the next bytes) is
    left as it is and the returned position is where it starts; masking is idempotent, so the held bytes can be
    scanned again with what follows."""
    n = len(buf)
    cut = n
    data = bytes(buf)
    for number, pattern in ((1, TRACK1), (2, TRACK2)):
        for m in pattern.finditer(data):
            if not final and m.end() == n:  # the LRC byte may follow
                cut = min(cut, m.start())
                continue
            _mask_track(buf, m, number)
            _bump(counts, "track")
        data = bytes(buf)
    for m in _SEQUENCE.finditer(data):
        s, e = m.start(), m.end()
        idxs = [i for i in range(s, e) if 0x30 <= data[i] <= 0x39]
        if not final and (e == n or (e == n - 1 and data[e] in b" -")) and len(idxs) <= PAN_MAX_DIGITS:
            cut = min(cut, s)
            continue
        if not PAN_MIN_DIGITS <= len(idxs) <= PAN_MAX_DIGITS:
            continue
        digits = bytes(data[i] for i in idxs)
        if not luhn_ok(digits) or (len(idxs) == e - s and len(idxs) in (13, 14) and gs1_ok(digits)):
            continue
        before = bytes(buf[s:e])
        mask_digit_positions(buf, idxs)
        if bytes(buf[s:e]) != before:
            _bump(counts, "pan")
    if not final:
        lo = max(0, n - TEXT_HOLD)
        for p in range(n - 1, lo - 1, -1):
            if data[p] == 0x3F:  # an end sentinel: a track begun before it has ended
                break
            if data[p] in (0x25, 0x3B):  # '%' or ';': a track may be arriving
                cut = min(cut, p)
    return cut


class TextRedactor:
    """``mask_text`` over a stream: holds back at most ``TEXT_HOLD`` bytes (a track or PAN still arriving)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._held = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, list[dict]]:
        self._held += data
        cut = mask_text(self._held, self.counts, final=False)
        cut = max(cut, len(self._held) - TEXT_HOLD)
        if cut > 0 and cut < len(self._held):
            # bytes forced out by the bound: mask what they hold as if the stream ended there
            head = self._held[:cut]
            mask_text(head, self.counts, final=True)
            self._held[:cut] = head
        out = bytes(self._held[:cut])
        del self._held[:cut]
        return out, []

    def flush(self) -> tuple[bytes, list[dict]]:
        mask_text(self._held, self.counts, final=True)
        out = bytes(self._held)
        self._held.clear()
        return out, []

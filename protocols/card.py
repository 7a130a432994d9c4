"""Card data rules shared by every payment decoder (``docs/protocols/payment.md`` section 2); the twin of
``native/tw_card.c``.

* :func:`mask_pan` keeps the first six and last four characters of a PAN (only the last four when it is shorter
  than 13) and turns every other character into ``*``.
* :func:`scrub` masks, in free text, every digit group sequence (digits with single spaces or hyphens between
  groups) holding 13 or more digits: a PAN printed or displayed anywhere leaves only masked.
"""

from __future__ import annotations

import re

PAN_MIN_DIGITS = 13
KEEP_FIRST = 6
KEEP_LAST = 4

_SEQUENCE = re.compile(rb"[0-9]+(?:[ -][0-9]+)*")


def mask_pan(pan: str) -> str:
    n = len(pan)
    first = KEEP_FIRST if n >= PAN_MIN_DIGITS else 0
    last_from = max(n - KEEP_LAST, 0)
    return pan[:first] + "*" * max(last_from - first, 0) + pan[max(last_from, first):]


def _mask_sequence(m: re.Match) -> bytes:
    return _mask_bytes(m.group())


def _mask_bytes(seq: bytes) -> bytes:
    digits = sum(1 for c in seq if 0x30 <= c <= 0x39)
    if digits < PAN_MIN_DIGITS:
        return seq
    out = bytearray(seq)
    seen = 0
    for i, c in enumerate(seq):
        if 0x30 <= c <= 0x39:
            if KEEP_FIRST <= seen < digits - KEEP_LAST:
                out[i] = 0x2A
            seen += 1
    return bytes(out)


def scrub(data: bytes) -> bytes:
    """``data`` with every PAN-like digit sequence masked."""
    return _SEQUENCE.sub(_mask_sequence, data)


_TEXT_SEQUENCE = re.compile(r"[0-9]+(?:[ -][0-9]+)*")


def scrub_text(text: str) -> str:
    """:func:`scrub` for decoded text. Only ASCII digits, spaces and hyphens count, and UTF-8 keeps each of them
    as one byte, so this equals scrubbing the UTF-8 bytes (which is what the C writer does)."""
    return _TEXT_SEQUENCE.sub(lambda m: _mask_sequence_text(m.group()), text)


def _mask_sequence_text(seq: str) -> str:
    return _mask_bytes(seq.encode("ascii")).decode("ascii")


#: On a customer display a number shows a few characters at a time (typed digit by digit, scrolled through a
#: window), so each snapshot must show less than a PAN's first six and last four together: every digit of a digit
#: group sequence holding this many digits or more is masked (native/tw_card.h TW_DISPLAY_MASK_DIGITS).
DISPLAY_MASK_DIGITS = 5


def scrub_display_text(text: str) -> str:
    """A display row with every digit of each digit group sequence of DISPLAY_MASK_DIGITS digits or more masked."""
    def mask(m: re.Match) -> str:
        seq = m.group()
        if sum(c.isdigit() for c in seq) < DISPLAY_MASK_DIGITS:
            return seq
        return "".join("*" if "0" <= c <= "9" else c for c in seq)

    return _TEXT_SEQUENCE.sub(mask, text)

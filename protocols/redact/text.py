"""Card data in ASCII streams (printer text, scanner and keyboard-wedge labels, MSR, displays, ECR payloads): ISO
7813 tracks and PANs. Sans-IO; ``mask_text`` works on a buffer, ``TextRedactor`` on a stream in any split.

* **Track 1** ``%B`` PAN ``^`` NAME ``^`` expiry, service code, discretionary ``?`` and **track 2** ``;`` PAN ``=``
  … ``?``: the PAN keeps its first six and last four digits (only the last four under 13 digits, as
  ``protocols.card.mask_pan``), the other PAN digits become ``0``; the name becomes spaces; everything after the
  second separator becomes ``0``. A track's LRC byte (the byte after ``?``, when it matched) is recomputed.
* **Track 3** ``;`` … ``?`` (13 to 105 characters between the sentinels): every character between them ``0``.
* **PAN**: a digit group sequence (``protocols.card``'s: digits with single spaces or hyphens between groups) of
  13 digits or more, some 13–19 consecutive digits of which pass the Luhn check — every real card number does,
  also grouped or printed next to another number — and that is not a 13- or 14-digit GS1 product code with a
  valid check digit (EAN-13, ITF-14, as the scanner decoder keeps them, scanner.md step 6); in a GS1 element
  string, the values but its checked keys, one by one: first six and last four digits of the sequence kept (as
  ``card.scrub``), the others ``0``, separators kept.

Digits stay digits, so ``protocols.card.scrub`` and ``mask_pan`` give the same output for the redacted bytes as for
the original ones, and a decoder's events do not change.
"""

from __future__ import annotations

import re

from protocols.card import KEEP_FIRST, KEEP_LAST, PAN_MIN_DIGITS

PAN_MAX_DIGITS = 19
_SEQUENCE = re.compile(rb"[0-9]+(?:[ -][0-9]+)*")
TRACK1 = re.compile(rb"%B([0-9]{1,19})\^([\x20-\x3e\x40-\x5d\x5f]{0,26})\^([\x20-\x3e\x40-\x5d\x5f]{0,50})\?")
TRACK2 = re.compile(rb";([0-9]{1,19})=([0-9\x3a-\x3e]{0,37})\?")
# Track 3 (ISO 4909: format code, PAN, ``=``, …; up to 107 characters with its sentinels): everything between the
# sentinels becomes ``0`` (the decoders never show a PAN from track 3). 13 characters at least: a PAN's worth.
TRACK3 = re.compile(rb";([0-9\x3a-\x3e]{13,105})\?")
_TRACK_BASE = {1: 0x20, 2: 0x30, 3: 0x30}
# characters from start to end sentinel (ISO/IEC 7811-2, -6: 79 and 40); a track still arriving is held this long.
# Masking also takes longer ones (up to the patterns' bounds: 100 and 59), which are not tracks but look like them.
_TRACK_MAX = {1: 100, 2: 59, 3: 107}
# The start of a track that has not ended yet: what the bytes after a start sentinel must look like to be held.
_TRACK1_START = re.compile(rb"%(?:B(?:[0-9]{1,19}(?:\^(?:[\x20-\x3e\x40-\x5d\x5f]{0,26}(?:\^[\x20-\x3e\x40-\x5d\x5f]*)?)?)?)?)?")
_TRACK2_START = re.compile(rb";(?:[0-9]{1,19}(?:=[0-9\x3a-\x3e]*)?)?")
_TRACK3_START = re.compile(rb";[0-9\x3a\x3c-\x3e]*")  # track 2's start too


def open_track_start(data: bytes) -> int | None:
    """Where a track that may still be arriving starts in ``data`` (its start sentinel, and everything after it
    so far shaped like the start of a track 1 or 2 within its length), or None."""
    n = len(data)
    for p in range(n - 1, max(0, n - _TRACK_MAX[3]) - 1, -1):
        c = data[p]
        if c == 0x25 and n - p <= _TRACK_MAX[1] and _TRACK1_START.fullmatch(data, p):
            return p
        if c == 0x3B and n - p <= _TRACK_MAX[3] and _TRACK3_START.fullmatch(data, p):
            return p
    return None

# The most a TextRedactor holds back: a track 1 may still be arriving from its start sentinel on (79 characters,
# ISO/IEC 7811-2) and its LRC byte; a PAN sequence (19 digits, 18 separators) is shorter. 112 leaves room.
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


def luhn_window(digits: bytes) -> bool:
    """Whether some run of 13–19 consecutive digits of ``digits`` (all of them included) passes the Luhn check: a
    card number may be printed inside a longer number (``1 4111111111111111``, a grouped PAN followed by an expiry
    ``4111 1111 1111 1111 12-25``). Prefix sums per parity make each window O(1)."""
    n = len(digits)
    if n < PAN_MIN_DIGITS:
        return False
    plain = [[0] * (n + 1), [0] * (n + 1)]   # plain[p][i]: digits before i at positions of parity p
    double = [[0] * (n + 1), [0] * (n + 1)]  # the same, doubled the Luhn way
    for i, c in enumerate(digits):
        d = c - 0x30
        dd = 2 * d - 9 if d > 4 else 2 * d
        for p in (0, 1):
            hit = (i & 1) == p
            plain[p][i + 1] = plain[p][i] + (d if hit else 0)
            double[p][i + 1] = double[p][i] + (dd if hit else 0)
    for end in range(PAN_MIN_DIGITS, n + 1):
        last = (end - 1) & 1  # the check digit's parity: digits of that parity count plain, the others doubled
        for length in range(PAN_MIN_DIGITS, min(PAN_MAX_DIGITS, end) + 1):
            a = end - length
            total = (plain[last][end] - plain[last][a]) + (double[1 - last][end] - double[1 - last][a])
            if total % 10 == 0:
                return True
    return False


def gs1_segments(digits: bytes) -> list[tuple[int, int]] | None:
    """A digit run read as a GS1 element string, as the scanner decoder reads one (``protocols.scanner.tables``):
    when it starts with a GS1 key that has a valid check digit (``01`` + GTIN-14, ``00`` + SSCC, …) and every AI
    after it is known, the (start, end) digit ranges of the values that are not checked keys — the decoder shows a
    checked key as it is and scrubs every other value on its own. None when the run is not such a string."""
    from protocols.scanner import tables as ST
    i, n = 0, len(digits)
    out: list[tuple[int, int]] = []
    while i < n:
        spec = None
        for k in (2, 3, 4):
            if i + k > n:
                break
            spec = ST.AI_TABLE.get(digits[i:i + k].decode("ascii"))
            if spec is not None:
                break
        if spec is None:
            return None
        ai = digits[i:i + k].decode("ascii")
        fixed, top = spec[0], spec[1]
        j = i + k
        # a variable-length value runs to the end of the digits (it may go on with letters, up to a GS)
        end = j + fixed if fixed else n
        if end > n or (not fixed and end - j > top):
            return None
        if ai in ST.CHECK_DIGIT_AIS:
            if not gs1_ok(digits[j:end]):
                return None
        elif i == 0:
            return None  # a string that does not start with a checked key: not taken as GS1
        else:
            out.append((j, end))
        i = end
    return out


def gs1_ok(digits: bytes) -> bool:
    """GS1 mod 10: weights 3, 1, 3 … from the digit left of the check digit."""
    body, check = digits[:-1], digits[-1] - 0x30
    total = sum((c - 0x30) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _bump(counts: dict, kind: str) -> None:
    counts[kind] = counts.get(kind, 0) + 1


def _masked_part(idxs: list[int]) -> list[int]:
    n = len(idxs)
    first = KEEP_FIRST if n >= PAN_MIN_DIGITS else 0
    return idxs[first:max(n - KEEP_LAST, first)]


def mask_digit_positions(buf: bytearray, idxs: list[int], zero: int = 0x30, done: bytearray | None = None) -> None:
    """Mask the digits at ``idxs`` (one PAN, in order) like ``mask_pan``: the first six (13 digits or more) and the
    last four stay; the others become ``zero`` — or ``zero + 1`` when they were all ``zero`` already, so the result
    never equals a PAN whose masked digits happened to be all zeros. Positions flagged in ``done`` were written by
    a mask already and are left alone (masking a mask again must not undo it)."""
    todo = [i for i in _masked_part(idxs) if done is None or not done[i]]
    fill = zero + 1 if todo and all(buf[i] == zero for i in todo) else zero
    for i in todo:
        buf[i] = fill
        if done is not None:
            done[i] = 1


def _track_lrc(data: bytes, base: int) -> int:
    lrc = 0
    for c in data:
        lrc ^= (c - base) & 0x3F
    return lrc


def _mask_track(buf: bytearray, m: re.Match, number: int, fix_lrc: bool, done: bytearray) -> None:
    start, end = m.start(), m.end()
    base = _TRACK_BASE[number]
    before = bytes(buf[start:end])
    mask_digit_positions(buf, list(range(m.start(1), m.end(1))), done=done)
    if number == 3:
        for i in range(m.start(1), m.end(1)):
            if not done[i]:
                buf[i] = 0x30
    elif number == 1:
        buf[m.start(2):m.end(2)] = b" " * (m.end(2) - m.start(2))
        buf[m.start(3):m.end(3)] = b"0" * (m.end(3) - m.start(3))
    else:
        buf[m.start(2):m.end(2)] = b"0" * (m.end(2) - m.start(2))
    if fix_lrc and end < len(buf) and buf[end] == base + _track_lrc(before, base):
        buf[end] = base + _track_lrc(bytes(buf[start:end]), base)


def mask_text(buf: bytearray, counts: dict, final: bool = True, luhn: bool = True,
              done: bytearray | None = None, fix_lrc: bool = False, products: bool = True,
              windows: bool = True, elements: bool = True) -> int:
    """Mask, in place, every complete track and PAN in ``buf``; return how many leading bytes are final.

    ``luhn`` True (streams that carry product codes and other long numbers: printers, scanners, displays): a
    sequence of 13 digits or more holds a PAN when some 13–19 consecutive digits of it pass the Luhn check
    (``luhn_window``; with ``windows`` False only the whole sequence of 13–19 digits is checked) and, with
    ``products``, it is not a 13/14-digit GS1 product code; it is then masked as the decoders scrub it (its first
    six and last four digits kept: every window's middle is inside what that hides). ``luhn`` False (a payment message's
    free text, which its decoder scrubs whole): every sequence of 13 digits or more, exactly as ``scrub``. With
    ``final`` False, a track or digit sequence that reaches the end of ``buf`` (it may go on in the next bytes) is
    left as it is and the returned position is where it starts. ``done`` (one flag per byte of ``buf``) marks the
    bytes a mask wrote, so scanning held bytes again with what follows does not mask a mask. ``elements`` False
    (printers, displays: streams whose decoder does not read GS1 element strings): a longer digit run is never
    read as a GS1 element string, so a card number that happens to read as one (``41x`` + a valid GLN) is masked."""
    n = len(buf)
    if done is None:
        done = bytearray(n)
    cut = n
    data = bytes(buf)
    deferred: list[tuple[int, int]] = []  # complete tracks left for the next call (their LRC byte is to come)
    for number, pattern in ((1, TRACK1), (2, TRACK2), (3, TRACK3)):
        for m in pattern.finditer(data):
            if not final and m.end() == n and fix_lrc:  # the LRC byte follows
                cut = min(cut, m.start())
                deferred.append((m.start(), m.end()))
                continue
            if all(done[m.start():m.end()]):
                continue  # (masked already: e.g. a track 2, whose shape track 3's pattern takes too)
            if number == 3 and all(done[i] or buf[i] == 0x30 for i in range(m.start(1), m.end(1))):
                done[m.start():m.end()] = b"\x01" * (m.end() - m.start())
                continue
            _mask_track(buf, m, number, fix_lrc, done)
            done[m.start():m.end()] = b"\x01" * (m.end() - m.start())
            _bump(counts, "track")
        data = bytes(buf)
    open_at = None if final else open_track_start(data)
    for m in _SEQUENCE.finditer(data):
        s, e = m.start(), m.end()
        if s >= 2 and data[s - 2] == 0x5D and (0x41 <= data[s - 1] <= 0x5A or 0x61 <= data[s - 1] <= 0x7A):
            s += 1  # an AIM symbology identifier's modifier digit (``]C1``) is not part of the label
            if s >= e or data[s] in b" -":
                continue
        if any(a <= s < b for a, b in deferred):
            continue
        if open_at is not None and s > open_at:
            cut = min(cut, open_at)  # inside a track still arriving: masked with it (its LRC needs the original)
            continue
        at_end = not final and (e == n or (e == n - 1 and data[e] in b" -"))
        if not at_end and e - s < PAN_MIN_DIGITS:
            continue  # too short to hold 13 digits (the common case: prices, quantities)
        idxs = [i for i in range(s, e) if 0x30 <= data[i] <= 0x39]
        if at_end and (len(idxs) <= PAN_MAX_DIGITS or not luhn or windows):
            cut = min(cut, s)  # it may go on: decided when it ends (the hold bound releases a very long one)
            continue
        if len(idxs) < PAN_MIN_DIGITS:
            continue
        # a sequence whose start a flush released pre-masked (premask_tail) is taken as a PAN: its digits are
        # no longer the card's, so the Luhn check cannot tell
        forced = any(done[i] for i in idxs)
        if luhn and not forced:
            digits = bytes(data[i] for i in idxs)
            if products and len(idxs) == e - s and len(idxs) in (13, 14) and gs1_ok(digits):
                continue
            if windows:
                segments = gs1_segments(digits) if products and elements and len(idxs) == e - s else None
                if segments is not None:  # a GS1 element string: values checked one by one, as the decoder does
                    for a, b in segments:
                        seg = idxs[a:b]
                        if len(seg) >= PAN_MIN_DIGITS and luhn_window(digits[a:b]) and not all(
                                done[i] for i in _masked_part(seg)):
                            mask_digit_positions(buf, seg, done=done)
                            _bump(counts, "pan")
                    continue
                if not luhn_window(digits):
                    continue
            elif len(idxs) > PAN_MAX_DIGITS or not luhn_ok(digits):
                continue
        part = _masked_part(idxs)
        if all(done[i] for i in part):
            continue
        mask_digit_positions(buf, idxs, done=done)
        _bump(counts, "pan")
    if open_at is not None:
        cut = min(cut, open_at)
    return cut


_TAIL_SEQUENCE = re.compile(rb"[0-9]+(?:[ -][0-9]+)*[ -]?$")


def _fill_digits(buf: bytearray, done: bytearray, todo: list[int]) -> bool:
    """Digits at ``todo`` become ``0`` (``1`` when they all were ``0``: a mask must change what it masks)."""
    if not todo:
        return False
    fill = 0x31 if all(buf[i] == 0x30 for i in todo) else 0x30
    for i in todo:
        buf[i], done[i] = fill, 1
    return True


def premask_tail(buf: bytearray, done: bytearray, lo: int) -> int:
    """Before bytes that may be the start of a PAN or a track are released early (a flush), mask them as if the
    rest will follow: digits after a sequence's first six, and in a track begun at the end, every digit after its
    first six and every name character. Only positions from ``lo`` on are changed; returns how many ranges."""
    n = len(buf)
    masked = 0
    m = _TAIL_SEQUENCE.search(bytes(buf))
    if m:
        idxs = [i for i in range(m.start(), n) if 0x30 <= buf[i] <= 0x39]
        masked += _fill_digits(buf, done, [i for i in idxs[KEEP_FIRST:] if i >= lo and not done[i]])
    p = open_track_start(bytes(buf))
    if p is not None:
        digits, hit = 0, False
        todo = []
        for i in range(p + 1, n):
            c = buf[i]
            if 0x30 <= c <= 0x39:
                digits += 1
                if digits > KEEP_FIRST and i >= lo and not done[i]:
                    todo.append(i)
            elif c not in b"B^=" and i >= lo and not done[i]:
                buf[i], done[i], hit = 0x20 if buf[p] == 0x25 else 0x30, 1, True
        masked += _fill_digits(buf, done, todo) or hit
    return masked


class TextRedactor:
    """``mask_text`` over a stream. Holds back at most ``TEXT_HOLD`` bytes (a track or PAN still arriving), and
    keeps the last ``TEXT_HOLD`` bytes it released as context, so a PAN or track that a flush cut is still found
    (and its part still to come masked) when the rest arrives. ``fix_lrc``: the stream's tracks carry an LRC byte
    (MSR ``lrc=on``) to recompute."""

    def __init__(self, luhn: bool = True, fix_lrc: bool = False, products: bool = True, windows: bool = True,
                 elements: bool = True) -> None:
        self.counts: dict[str, int] = {}
        self.elements = elements
        self.luhn = luhn
        self.windows = windows
        self.products = products
        self.fix_lrc = fix_lrc
        self._held = bytearray()
        self._done = bytearray()  # 1 for each held byte a mask wrote
        self._ctx = bytearray()   # the last bytes released, as released
        self._ctx_done = bytearray()

    def _scan(self, final: bool) -> tuple[bytearray, bytearray, int]:
        buf, done = self._ctx + self._held, self._ctx_done + self._done
        cut = mask_text(buf, self.counts, final=final, luhn=self.luhn, done=done, fix_lrc=self.fix_lrc,
                        products=self.products, windows=self.windows, elements=self.elements)
        return buf, done, cut

    def _release(self, buf: bytearray, done: bytearray, cut: int) -> bytes:
        k = len(self._ctx)
        self._held[:] = buf[k:]
        self._done[:] = done[k:]
        n = max(0, cut - k)
        out = bytes(self._held[:n])
        self._ctx = (self._ctx + self._held[:n])[-TEXT_HOLD:]
        self._ctx_done = (self._ctx_done + self._done[:n])[-TEXT_HOLD:]
        del self._held[:n]
        del self._done[:n]
        return out

    @property
    def held(self) -> int:
        return len(self._held)

    def feed(self, data: bytes) -> tuple[bytes, list[dict]]:
        self._held += data
        self._done += bytes(len(data))
        buf, done, cut = self._scan(final=False)
        if len(buf) - cut > TEXT_HOLD:  # the bound: release as at a flush
            lo = len(self._ctx)
            self.counts["pan"] = self.counts.get("pan", 0) + premask_tail(buf, done, lo)
            cut = len(buf) - TEXT_HOLD
        return self._release(buf, done, cut), []

    def flush(self, end: bool = False) -> tuple[bytes, list[dict]]:
        """Release everything held. Unless the stream ends here (``end``), what may be the start of a PAN or a track
        is masked as if the rest will follow."""
        if not end:
            buf, done = self._ctx + self._held, self._ctx_done + self._done
            hits = premask_tail(buf, done, len(self._ctx))
            if hits:
                self.counts["pan"] = self.counts.get("pan", 0) + hits
            k = len(self._ctx)
            self._held[:], self._done[:] = buf[k:], done[k:]
        buf, done, _ = self._scan(final=True)
        return self._release(buf, done, len(buf)), []

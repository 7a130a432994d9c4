"""ESC/POS command table and value tables, as data (``docs/protocols/escpos.md`` sections 3–6, 10, 11).

``header_need(buf, i, n)`` is the length rule of every command: how many bytes, starting at ``buf[i]``, form the
command's *header* — the part collected before the command is acted on. It only looks at bytes already
available and returns a length larger than ``n - i`` when it needs more to decide (monotonic: more bytes never
shrink the answer). Payloads (image data, 2D-code data, skipped bytes) are not part of the header.
"""

from __future__ import annotations

# ---------------------------------------------------------------- bounds (section 11)
MAX_LINE_CHARS = 1024       # 80 mm paper holds <= 64 columns in font B; 16x that bounds memory for any real line
MAX_BARCODE = 255           # Epson's largest function-A barcode data
MAX_CODE2D = 7089           # the largest QR code (version 40, numeric)
MAX_IMAGE_BYTES = 4 << 20   # 1024-dot x 32768-row image; python-escpos splits images at 960 rows
MAX_REQUESTS = 16           # outstanding status requests a till waits on; older ones are dropped first
MAX_INFO = 80               # Epson's longest GS I block reply
MAX_ASB_SPAN = 8            # an ASB is 4 bytes; XON/XOFF may fall between them, a few at most

# ---------------------------------------------------------------- error codes (section 10)
ERRORS = {
    "unknown_control": "A control byte that has no meaning in ESC/POS.",
    "unknown_command": "A command prefix followed by a function that ESC/POS does not define.",
    "bad_parameter": "A known command with a parameter outside its documented values.",
    "bad_length": "A command whose length field disagrees with its contents.",
    "unknown_code_table": "ESC t selected a code table this printer profile does not define.",
    "unknown_charset": "ESC R selected an international character set that is not defined.",
    "unsupported_encoding": "The printer was switched to a character encoding this decoder does not decode.",
    "barcode_bad_data": "A barcode data byte outside the symbology's character set.",
    "barcode_too_long": "Barcode data longer than 255 bytes without its terminating NUL.",
    "code2d_too_long": "2D-code data larger than the largest symbol can hold.",
    "code2d_empty": "A 2D code was printed with no data stored.",
    "image_too_large": "An image larger than the decoder's image limit.",
    "line_too_long": "A line longer than the decoder's line limit; it was split.",
    "truncated": "The stream ended inside a command.",
    "unknown_reply": "A byte from the printer that matches no reply pattern.",
    # the embedded customer display (escpos.md section 7, display.md section 6)
    "unknown_display_command": "A display control byte or command that the display's command table does not define.",
}

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
PREFIXES = frozenset((ESC, GS, FS, DLE))

# ---------------------------------------------------------------- fixed lengths (total bytes incl. prefix)
ESC_FIXED = {
    0x0C: 2, 0x20: 3, 0x21: 3, 0x24: 4, 0x25: 3, 0x2D: 3, 0x32: 2, 0x33: 3, 0x3C: 2, 0x3D: 3, 0x3F: 3, 0x40: 2,
    0x42: 4, 0x44: 2, 0x45: 3, 0x47: 3, 0x4A: 3, 0x4B: 3, 0x4C: 2, 0x4D: 3, 0x52: 3, 0x53: 2, 0x54: 3,
    0x55: 3, 0x56: 3, 0x57: 10, 0x5C: 4, 0x61: 3, 0x63: 4, 0x64: 3, 0x65: 3, 0x69: 2, 0x6D: 2, 0x72: 3,
    0x74: 3, 0x75: 3, 0x76: 2, 0x7B: 3,
}
GS_FIXED = {
    0x21: 3, 0x23: 3, 0x24: 4, 0x2F: 3, 0x3A: 2, 0x42: 3, 0x48: 3, 0x49: 3, 0x4C: 4, 0x50: 4, 0x54: 3, 0x57: 4,
    0x5C: 4, 0x5E: 5, 0x61: 3, 0x62: 3, 0x63: 2, 0x66: 3, 0x68: 3, 0x6A: 3, 0x72: 3, 0x77: 3, 0x7A: 5,
    0x2A: 4,  # GS * x y, then x*y*8 payload bytes
}
FS_FIXED = {
    0x21: 3, 0x26: 2, 0x2D: 3, 0x2E: 2, 0x3F: 4, 0x43: 3, 0x53: 4, 0x57: 3, 0x70: 4,
    0x32: 4,  # FS 2 c1 c2, then 72 payload bytes
    0x71: 3,  # FS q n, then n blocks
}
DLE_EOT_LEN = {1: 3, 2: 3, 3: 3, 4: 3, 7: 4, 8: 4, 18: 4}
DLE_DC4_LENGTHS = {1: 5, 2: 5, 3: 8, 7: 4, 8: 10}

PAREN_KNOWN = {
    ESC: frozenset(b"AY"),
    GS: frozenset(b"ACDEHKLMNPQkz"),
    FS: frozenset(b"ACELe"),
}


def _paren_head(prefix: int, letter: int, payload: bytes, length: int) -> int:
    """How many payload bytes of a ``( x`` command belong to its header (never more than ``length``)."""
    if prefix == GS and letter == 0x6B:        # GS ( k: cn fn m
        want = 3
    elif prefix == GS and letter == 0x4C:      # GS ( L: 30 fn [layout]
        want = _graphics_head(payload)
    elif prefix == GS and letter == 0x48:      # GS ( H: fn
        want = 1
    elif prefix == FS and letter in (0x43, 0x65):  # FS ( C: 30 m, FS ( e: m n
        want = 2
    elif prefix == ESC and letter == 0x41:     # ESC ( A: the buzzer parameters (at most 32 kept)
        want = 32
    else:
        want = 0
    return min(want, length)


def _graphics_head(payload: bytes) -> int:
    """Payload bytes of GS ( L / GS 8 L read as header: `30 fn` plus the layout of the functions we act on."""
    if len(payload) < 2:
        return 2
    fn = payload[1]
    return {0x70: 10, 0x71: 9, 0x45: 4, 0x55: 4}.get(fn, 2)


def header_need(buf: bytes, i: int, n: int) -> int:
    avail = n - i
    if avail < 2:
        return 2
    prefix, fn = buf[i], buf[i + 1]
    if prefix == ESC:
        if fn == 0x28:
            return _paren_need(buf, i, n, 5)
        if fn == 0x2A:              # ESC * m nL nH
            if avail < 3:
                return 3
            return 5 if buf[i + 2] in BITIMAGE_MODES else 3
        if fn == 0x70:              # ESC p m t1 t2
            if avail < 3:
                return 3
            return 5 if buf[i + 2] in KICK_PIN else 3
        if fn == 0x26:              # ESC & y c1 c2
            return 5
        return ESC_FIXED.get(fn, 2)
    if prefix == GS:
        if fn == 0x28:
            return _paren_need(buf, i, n, 5)
        if fn == 0x56:              # GS V m [n]
            if avail < 3:
                return 3
            return 4 if buf[i + 2] in (65, 66, 97, 98, 103, 104) else 3
        if fn == 0x6B:              # GS k m [n]
            if avail < 3:
                return 3
            return 4 if 65 <= buf[i + 2] <= 79 else 3
        if fn in (0x76, 0x51):      # GS v 0 / GS Q 0 m xL xH yL yH
            if avail < 3:
                return 3
            return 8 if buf[i + 2] == 0x30 else 3
        if fn == 0x38:              # GS 8 L p1 p2 p3 p4 + payload head
            if avail < 3:
                return 3
            if buf[i + 2] != 0x4C:
                return 3
            if avail < 7:
                return 7
            length = buf[i + 3] | buf[i + 4] << 8 | buf[i + 5] << 16 | buf[i + 6] << 24
            head = bytes(buf[i + 7:min(n, i + 7 + 10)])
            return 7 + min(_graphics_head(head), length)
        if fn == 0x44:              # GS D 30 fn a kc1 kc2 b c + "BM" + bfSize (4 bytes LE)
            if avail < 4:
                return 4
            return 15 if buf[i + 2] == 0x30 and buf[i + 3] in (0x43, 0x53) else 4
        if fn == 0x67:              # GS g m fn nL nH
            if avail < 3:
                return 3
            return 6 if buf[i + 2] in (0x30, 0x32) else 3
        return GS_FIXED.get(fn, 2)
    if prefix == FS:
        if fn == 0x28:
            return _paren_need(buf, i, n, 5)
        if fn == 0x67:              # FS g m a1 a2 a3 a4 nL nH
            if avail < 3:
                return 3
            return 10 if buf[i + 2] in (0x31, 0x32) else 3
        return FS_FIXED.get(fn, 2)
    # DLE
    if fn == 0x04:
        if avail < 3:
            return 3
        return DLE_EOT_LEN.get(buf[i + 2], 3)
    if fn == 0x05:
        return 3
    if fn == 0x14:
        if avail < 3:
            return 3
        sub = buf[i + 2]
        if sub == 1:
            if avail < 4:
                return 4
            return 5 if buf[i + 3] in (0, 1) else 4
        return DLE_DC4_LENGTHS.get(sub, 3)
    return 2


def _paren_need(buf: bytes, i: int, n: int, hdr: int) -> int:
    if n - i < hdr:
        return hdr
    prefix, letter = buf[i], buf[i + 2]
    length = buf[i + 3] | buf[i + 4] << 8
    if letter not in PAREN_KNOWN[prefix]:
        return hdr
    # ask for one more payload byte than we have until the head size is decided (monotonic)
    payload = bytes(buf[i + hdr:min(n, i + hdr + 32)])
    return hdr + _paren_head(prefix, letter, payload, length)


# ---------------------------------------------------------------- value tables
FONTS = {0: "A", 1: "B", 2: "C", 3: "D", 4: "E", 48: "A", 49: "B", 50: "C", 51: "D", 52: "E",
         97: "special-A", 98: "special-B"}
ALIGN = {0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}
FEEDS = {0x64: ("lines", 1), 0x65: ("lines", -1), 0x4A: ("dots", 1), 0x4B: ("dots", -1)}
KICK_PIN = {0: 2, 48: 2, 1: 5, 49: 5}
BITIMAGE_MODES = {0: 1, 1: 1, 32: 3, 33: 3}   # m -> bytes per column
CUT_MODES = {0: False, 48: False, 1: True, 49: True,
             65: False, 97: False, 103: False, 66: True, 98: True, 104: True}
CODE2D = {0x30: "PDF417", 0x31: "QR", 0x32: "MAXICODE", 0x35: "AZTEC", 0x36: "DATAMATRIX"}
GS_R_KINDS = {1: "paper_sensor", 49: "paper_sensor", 2: "drawer", 50: "drawer", 4: "ink", 52: "ink"}
DLE_EOT_KINDS = {1: "printer", 2: "offline", 3: "error", 4: "paper", 7: "ink", 8: "peeler", 18: "interface"}

BARCODES = {0: "UPCA", 1: "UPCE", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
            65: "UPCA", 66: "UPCE", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF", 71: "CODABAR",
            72: "CODE93", 73: "CODE128", 74: "GS1-128", 75: "GS1-DATABAR-OMNI", 76: "GS1-DATABAR-TRUNCATED",
            77: "GS1-DATABAR-LIMITED", 78: "GS1-DATABAR-EXPANDED", 79: "CODE128"}

_DIGITS = frozenset(range(0x30, 0x3A))
_CODE39 = frozenset((0x20, 0x24, 0x25, 0x2A, 0x2B, *range(0x2D, 0x3A), *range(0x41, 0x5B)))
_CODABAR = frozenset((0x24, 0x2B, *range(0x2D, 0x3B), *range(0x41, 0x45), *range(0x61, 0x65)))
BARCODE_A_CHARS = {0: _DIGITS, 1: _DIGITS, 2: _DIGITS, 3: _DIGITS, 4: _CODE39, 5: _DIGITS, 6: _CODABAR}


def decode_code128(data: bytes) -> str:
    """CODE128 / GS1-128 data with Epson's `{` code-set escapes to the characters it encodes (section 5)."""
    out: list[str] = []
    set_c = False
    first = True
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x7B and i + 1 < len(data):
            c = data[i + 1]
            if c in b"ABC":
                set_c = c == 0x43
                i += 2
                continue
            if c in b"S234":
                i += 2
                first = False
                continue
            if c == 0x31:
                if not first:
                    out.append("\x1d")
                first = False
                i += 2
                continue
            if c == 0x7B:
                out.append("{")
                first = False
                i += 2
                continue
        if set_c:
            out.append(f"{b:02d}" if b <= 99 else "\ufffd")
        else:
            out.append(chr(b))
        first = False
        i += 1
    return "".join(out)

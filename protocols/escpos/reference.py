"""Pure-Python ESC/POS decoder: the readable twin of ``native/escpos.c`` and the test oracle.

It implements ``docs/protocols/escpos.md`` line by line; the section numbers in comments refer to that page.
Both backends must produce byte-identical msgpack for every input and every chunking, so this module favours
obviousness over speed.

Shape: ``feed()`` walks the stream. In the *ground* state one token starts at each position: a text byte, a
single control byte, or a command whose *header* (its fixed bytes) is collected first — an incomplete header is
the only thing held back between feeds. A command with a payload installs a *continuation* that consumes the
payload as it arrives, however it is split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import msgpack

from protocols.card import scrub_text
from protocols.display.reference import DisplayModel
from protocols.escpos import tables as T
from protocols.escpos.profiles import REPLACEMENT, Profile

_pack = msgpack.Packer(use_bin_type=True).pack

PLAIN = (False, 0, False, False, "A", 1, 1, False, False)
# style tuple fields, in the order they appear in a span's style map
STYLE_KEYS = ("bold", "underline", "double_strike", "invert", "font", "width", "height", "upside_down", "rotate")
BOLD, UNDERLINE, DOUBLE_STRIKE, INVERT, FONT, WIDTH, HEIGHT, UPSIDE_DOWN, ROTATE = range(9)


def _style_map(style: tuple) -> dict:
    return {key: value for key, value, plain in zip(STYLE_KEYS, style, PLAIN) if value != plain}


def _error(code: str, offset: int, raw: bytes) -> dict:
    return {"type": "protocol.error",
            "data": {"code": code, "reason": T.ERRORS[code], "offset": offset, "raw": bytes(raw[:32])}}


def _column_to_rows(data: bytes, width: int, height_bytes: int) -> bytes:
    """Column format (each column ``height_bytes`` bytes, top to bottom, MSB = top dot) to 1 bpp rows."""
    row_bytes = (width + 7) // 8
    out = bytearray(row_bytes * height_bytes * 8)
    for col in range(width):
        base = col * height_bytes
        mask = 0x80 >> (col & 7)
        byte_in_row = col >> 3
        for k in range(height_bytes):
            v = data[base + k]
            if not v:
                continue
            for bit in range(8):
                if v & (0x80 >> bit):
                    out[(k * 8 + bit) * row_bytes + byte_in_row] |= mask
    return bytes(out)


class _Group:
    """An open ESC * bit-image group: consecutive stripes of the same mode and width (section 6)."""

    __slots__ = ("m", "n", "rows", "height")

    def __init__(self, m: int, n: int):
        self.m, self.n, self.rows, self.height = m, n, bytearray(), 0


class ReferenceEscposDecoder:
    def __init__(self, direction: str, profile: Profile, images: bool, drawer_low: bool = False):
        self._to_device = direction == "to_device"
        self._drawer_low = drawer_low  # drawer_open_level low: pin 3 low means open
        self._profile = profile
        self._images = images
        self._hold = b""              # an incomplete header, held back between feeds
        self._offset = 0              # absolute offset of the next byte fed
        self._out: list[dict] = []
        self._cont: Callable[[bytes, int, int, int], int] | None = None
        self._cmd_off = 0             # the command a continuation belongs to (for `truncated`)
        self._cmd_hdr = b""
        # from_device (section 9)
        self._requests: list[tuple[str, int]] = []
        # section 7: the daisy-chained Epson DM-D display that ESC = n routes bytes to
        self._display = DisplayModel("epson", 20, 2, profile, self._out) if self._to_device else None
        self._display_on = False
        self._reset_printer()

    # ------------------------------------------------------------------ state
    def _reset_printer(self) -> None:
        p = self._profile
        self._style = PLAIN
        self._align = "left"
        self._codepage = p.codepages[p.codepage_index[p.default_codepage]]
        self._charset = p.charsets[p.charset_index[p.default_charset]]
        self._kanji = False
        self._lead: tuple[int, int] | None = None   # pending Kanji lead byte (value, offset)
        self._chars: list[str] = []
        self._styles: list[tuple] = []
        self._group: _Group | None = None
        self._group_in_line = False
        self._code2d: dict[str, bytes | None] = {}
        self._graphics: tuple[int, int, bytes] | None = None
        self._downloaded: tuple[int, int, bytes] | None = None
        self._deselected = False

    # ------------------------------------------------------------------ public
    def feed(self, data) -> bytes:
        data = bytes(data)
        buf = self._hold + data if self._hold else data
        base = self._offset - len(self._hold)
        self._hold = b""
        self._offset += len(data)
        if self._to_device:
            self._walk(buf, base)
        else:
            self._walk_replies(buf, base)
        return self._drain()

    def close(self) -> bytes:
        if self._to_device:
            if self._lead is not None:
                _, off = self._lead
                self._lead = None
                self._add_char(REPLACEMENT, off)
            if self._hold:
                self._out.append(_error("truncated", self._offset - len(self._hold), self._hold))
            elif self._cont is not None:
                self._out.append(_error("truncated", self._cmd_off, self._cmd_hdr))
            self._cont = None
            self._emit_group()
            if self._chars:
                self._emit_line()
            self._display.close()
        else:
            if self._hold:
                self._out.append(_error("truncated", self._offset - len(self._hold), self._hold))
        self._hold = b""
        return self._drain()

    def note_request(self, kind: str, n: int) -> None:
        self._requests.append((kind, n))
        if len(self._requests) > T.MAX_REQUESTS:
            del self._requests[0]

    def _drain(self) -> bytes:
        out = b"".join(_pack(ev) for ev in self._out)
        self._out.clear()
        return out

    # ------------------------------------------------------------------ ground walk (to_device)
    def _walk(self, buf: bytes, base: int) -> None:
        i, n = 0, len(buf)
        while i < n:
            if self._cont is not None:
                i = self._cont(buf, i, n, base)
                continue
            if self._lead is not None:
                i = self._finish_lead(buf, i, base)
                continue
            if self._deselected:
                i = self._walk_deselected(buf, i, n, base)
                if i < 0:
                    return
                continue
            b = buf[i]
            if b >= 0x20:
                i = self._text(buf, i, n, base)
                continue
            if b in T.PREFIXES:
                need = T.header_need(buf, i, n)
                if i + need > n:
                    self._hold = buf[i:]
                    return
                self._command(buf[i:i + need], base + i)
                i += need
                continue
            self._control(b, base + i)
            i += 1

    def _walk_deselected(self, buf: bytes, i: int, n: int, base: int) -> int:
        """Section 7: bytes meant for a display go to the display model (when ESC = selected it) or are skipped;
        watch for ESC = and real-time DLE commands."""
        b = buf[i]
        if b == 0x1B:
            if i + 1 >= n:
                self._hold = buf[i:]
                return -1
            if buf[i + 1] != 0x3D:
                return self._to_display(buf, i, i + 1, base)
            if i + 2 >= n:
                self._hold = buf[i:]
                return -1
            self._select_peripheral(buf[i + 2])
            return i + 3
        if b == 0x10:
            if i + 1 >= n:
                self._hold = buf[i:]
                return -1
            if buf[i + 1] not in (0x04, 0x05, 0x14):
                return self._to_display(buf, i, i + 1, base)
            need = T.header_need(buf, i, n)
            if i + need > n:
                self._hold = buf[i:]
                return -1
            self._command(buf[i:i + need], base + i)
            return i + need
        j = i + 1
        while j < n and buf[j] != 0x1B and buf[j] != 0x10:
            j += 1
        return self._to_display(buf, i, j, base)

    def _to_display(self, buf: bytes, i: int, j: int, base: int) -> int:
        if self._display_on:
            self._display.feed(buf[i:j], base + i)
        return j

    def _select_peripheral(self, v: int) -> None:
        """Section 7: ESC = n. bit0 set selects the printer; bit0 clear deselects it, and bit1 set then routes the
        bytes the printer skips to the display. A display that stops being selected ends its burst."""
        on = not v & 1 and bool(v & 2)
        self._deselected = not v & 1
        if self._display_on and not on:
            self._display.settle()
        self._display_on = on

    def _control(self, b: int, off: int) -> None:
        if b == 0x0A:
            self._line_feed()
        elif b == 0x09:
            self._add_char(0x09, off)
        elif b == 0x0C:
            self._flush()
        elif b == 0x07:
            self._out.append({"type": "printer.buzzer", "data": {"command": "BEL", "params": b""}})
        elif b in (0x0D, 0x18, 0x00):
            pass
        else:
            self._out.append(_error("unknown_control", off, bytes([b])))

    # ------------------------------------------------------------------ text (section 4)
    def _text(self, buf: bytes, i: int, n: int, base: int) -> int:
        while i < n:
            b = buf[i]
            if b < 0x20:
                break
            if b < 0x80:
                self._add_char(self._charset[b], base + i)
            elif not self._kanji:
                self._add_char(self._codepage[b - 0x80], base + i)
            else:
                single = self._profile.kanji_single[b - 0x80]
                if single:
                    self._add_char(single, base + i)
                elif i + 1 < n:
                    t = buf[i + 1]
                    if t >= 0x40:
                        cp = self._profile.kanji_double[(b - 0x80) * 256 + t]
                        self._add_char(cp or REPLACEMENT, base + i)
                        i += 2
                        continue
                    self._add_char(REPLACEMENT, base + i)
                else:
                    self._lead = (b, base + i)
            i += 1
        return i

    def _finish_lead(self, buf: bytes, i: int, base: int) -> int:
        lead, off = self._lead
        self._lead = None
        t = buf[i]
        if t >= 0x40:
            cp = self._profile.kanji_double[(lead - 0x80) * 256 + t]
            self._add_char(cp or REPLACEMENT, off)
            return i + 1
        self._add_char(REPLACEMENT, off)
        return i

    def _add_char(self, cp: int, off: int) -> None:
        if self._group is not None:
            self._emit_group()
        if len(self._chars) >= T.MAX_LINE_CHARS:
            self._out.append(_error("line_too_long", off, b""))
            self._emit_line()
        self._chars.append(chr(cp))
        self._styles.append(self._style)

    def _emit_line(self) -> None:
        spans = []
        start = 0
        styles = self._styles
        for k in range(1, len(styles) + 1):
            if k == len(styles) or styles[k] != styles[start]:
                if styles[start] != PLAIN:
                    spans.append([start, k, _style_map(styles[start])])
                start = k
        self._out.append({"type": "printer.line",
                          "data": {"text": scrub_text("".join(self._chars)), "align": self._align,
                                   "spans": spans}})
        self._chars = []
        self._styles = []

    def _line_feed(self) -> None:
        if self._group_in_line:
            self._group_in_line = False
            return
        self._emit_group()
        self._emit_line()

    def _emit_group(self) -> None:
        g = self._group
        if g is None:
            return
        self._group = None
        self._group_in_line = False
        self._emit_image("bitimage", g.n, g.height, bytes(g.rows))

    def _flush(self) -> None:
        self._emit_group()
        if self._chars:
            self._emit_line()

    def _emit_image(self, kind: str, width: int, height: int, rows: bytes) -> None:
        data = {"kind": kind, "width": width, "height": height, "sha256": hashlib.sha256(rows).hexdigest()}
        if self._images:
            data["bits"] = rows
        self._out.append({"type": "printer.image", "data": data})

    # ------------------------------------------------------------------ continuations
    def _payload(self, length: int, hdr: bytes, off: int,
                 done: Callable[[bytes], None] | None = None, keep: bool = False) -> None:
        """Consume ``length`` payload bytes; with ``keep`` collect them and pass them to ``done``."""
        self._cmd_off, self._cmd_hdr = off, hdr
        collected = bytearray()
        remaining = length

        def cont(buf: bytes, i: int, n: int, base: int) -> int:
            nonlocal remaining
            take = min(remaining, n - i)
            if keep:
                collected.extend(buf[i:i + take])
            remaining -= take
            if remaining == 0:
                self._cont = None
                if done is not None:
                    done(bytes(collected))
            return i + take

        if length == 0:
            if done is not None:
                done(b"")
            return
        self._cont = cont

    # ------------------------------------------------------------------ commands (section 3)
    def _command(self, h: bytes, off: int) -> None:
        prefix, fn = h[0], h[1]
        if prefix == 0x1B:
            handler = _ESC.get(fn)
        elif prefix == 0x1D:
            handler = _GS.get(fn)
        elif prefix == 0x1C:
            handler = _FS.get(fn)
        else:
            handler = _DLE.get(fn)
        if handler is None:
            self._out.append(_error("unknown_command", off, h[:2]))
            return
        handler(self, h, off)

    def _bad(self, h: bytes, off: int) -> None:
        self._out.append(_error("bad_parameter", off, h))

    def _status_request(self, kind: str, n: int) -> None:
        self._out.append({"type": "printer.status_request", "data": {"kind": kind, "n": n}})

    # --- ESC
    def _esc_style(self, h: bytes, off: int) -> None:
        fn, v = h[1], h[2]
        s = list(self._style)
        if fn == 0x21:      # ESC !
            s[FONT] = "B" if v & 1 else "A"
            s[BOLD] = bool(v & 0x08)
            s[HEIGHT] = 2 if v & 0x10 else 1
            s[WIDTH] = 2 if v & 0x20 else 1
            s[UNDERLINE] = 1 if v & 0x80 else 0
        elif fn == 0x45:
            s[BOLD] = bool(v & 1)
        elif fn == 0x47:
            s[DOUBLE_STRIKE] = bool(v & 1)
        elif fn == 0x7B:
            s[UPSIDE_DOWN] = bool(v & 1)
        elif fn == 0x2D:
            if v not in (0, 1, 2, 48, 49, 50):
                return self._bad(h, off)
            s[UNDERLINE] = v & 3
        elif fn == 0x56:
            if v in (0, 48):
                s[ROTATE] = False
            elif v in (1, 2, 49, 50):
                s[ROTATE] = True
            else:
                return self._bad(h, off)
        elif fn == 0x4D:
            font = T.FONTS.get(v)
            if font is None:
                return self._bad(h, off)
            s[FONT] = font
        self._style = tuple(s)

    def _esc_align(self, h: bytes, off: int) -> None:
        align = T.ALIGN.get(h[2])
        if align is None:
            return self._bad(h, off)
        if not self._chars and not self._group_in_line:
            self._align = align

    def _esc_init(self, h: bytes, off: int) -> None:
        self._emit_group()
        self._lead = None
        self._reset_printer()
        self._out.append({"type": "printer.init", "data": {}})

    def _esc_codepage(self, h: bytes, off: int) -> None:
        slot = self._profile.codepage_index[h[2]]
        if slot < 0:
            self._out.append(_error("unknown_code_table", off, h))
        else:
            self._codepage = self._profile.codepages[slot]

    def _esc_charset(self, h: bytes, off: int) -> None:
        slot = self._profile.charset_index[h[2]]
        if slot < 0:
            self._out.append(_error("unknown_charset", off, h))
        else:
            self._charset = self._profile.charsets[slot]

    def _esc_feed(self, h: bytes, off: int) -> None:
        key, sign = T.FEEDS[h[1]]
        self._flush()
        self._out.append({"type": "printer.feed", "data": {key: sign * h[2]}})

    def _esc_partial_cut(self, h: bytes, off: int) -> None:
        self._flush()
        self._out.append({"type": "printer.cut", "data": {"partial": True}})

    def _esc_print_page(self, h: bytes, off: int) -> None:
        self._flush()

    def _esc_peripheral_status(self, h: bytes, off: int) -> None:
        self._status_request("drawer", h[2])

    def _esc_paper_status(self, h: bytes, off: int) -> None:
        self._status_request("paper_sensor", 0)

    def _esc_select_peripheral(self, h: bytes, off: int) -> None:
        self._select_peripheral(h[2])

    def _esc_buzzer(self, h: bytes, off: int) -> None:
        self._out.append({"type": "printer.buzzer", "data": {"command": "ESC B", "params": bytes(h[2:4])}})

    def _esc_kick(self, h: bytes, off: int) -> None:
        pin = T.KICK_PIN.get(h[2])
        if pin is None:
            return self._bad(h, off)
        self._out.append({"type": "drawer.kick", "data": {"pin": pin, "on_ms": h[3] * 2, "off_ms": h[4] * 2}})

    def _esc_bitimage(self, h: bytes, off: int) -> None:
        m = h[2]
        if m not in T.BITIMAGE_MODES:
            return self._bad(h, off)
        n = h[3] | h[4] << 8
        g = self._group
        if g is not None and (g.m != m or g.n != n):
            self._emit_group()
        if self._chars:
            self._emit_line()
        height_bytes = T.BITIMAGE_MODES[m]

        def done(data: bytes) -> None:
            rows = _column_to_rows(data, n, height_bytes)
            g = self._group
            if g is not None and len(g.rows) + len(rows) > T.MAX_IMAGE_BYTES:
                self._emit_group()
                g = None
            if g is None:
                g = self._group = _Group(m, n)
            g.rows += rows
            g.height += height_bytes * 8
            self._group_in_line = True

        self._payload(n * height_bytes, h, off, done, keep=True)

    def _esc_tabs(self, h: bytes, off: int) -> None:
        self._cmd_off, self._cmd_hdr = off, h
        count = 0
        prev = 0

        def cont(buf: bytes, i: int, n: int, base: int) -> int:
            nonlocal count, prev
            while i < n:
                v = buf[i]
                if v == 0:
                    self._cont = None
                    return i + 1
                if v <= prev:
                    self._cont = None
                    return i
                prev = v
                count += 1
                i += 1
                if count == 32:
                    self._cont = None
                    return i
            return i

        self._cont = cont

    def _esc_user_chars(self, h: bytes, off: int) -> None:
        y, c1, c2 = h[2], h[3], h[4]
        if not (1 <= y <= 3 and 32 <= c1 <= c2 <= 126):
            return self._bad(h, off)

        def glyph_size(head: bytes, head_off: int) -> int | None:
            x = head[0]
            if x > 12:
                self._out.append(_error("bad_parameter", head_off, head))
                return None
            return y * x

        self._blocks(h, off, c2 - c1 + 1, 1, glyph_size)

    def _blocks(self, h: bytes, off: int, count: int, head_len: int,
                size_of: Callable[[bytes, int], int | None]) -> None:
        """``count`` blocks, each ``head_len`` bytes of block header then ``size_of(header, its offset)`` payload
        bytes (ESC &, FS q). ``size_of`` returns None for a bad block header: the command ends right after it."""
        if count == 0:
            return
        self._cmd_off, self._cmd_hdr = off, h
        left, skip = count, 0
        head = bytearray()
        head_off = 0

        def cont(buf: bytes, i: int, n: int, base: int) -> int:
            nonlocal left, skip, head_off
            while i < n:
                if skip:
                    take = min(skip, n - i)
                    skip -= take
                    i += take
                else:
                    if not head:
                        head_off = base + i
                    head.append(buf[i])
                    i += 1
                    if len(head) < head_len:
                        continue
                    size = size_of(bytes(head), head_off)
                    head.clear()
                    left -= 1
                    if size is None:
                        self._cont = None
                        return i
                    skip = size
                if skip == 0 and left == 0:
                    self._cont = None
                    return i
            return i

        self._cont = cont

    def _paren(self, h: bytes, off: int) -> None:
        """ESC ( x, GS ( x, FS ( x: header = 5 bytes plus the payload bytes tables.header_need asked for."""
        length = h[3] | h[4] << 8
        rest = length - (len(h) - 5)
        handler = _PAREN.get((h[0], h[2]))
        if handler is None:
            self._out.append(_error("unknown_command", off, h[:5]))
            self._payload(rest, h[:5], off)
            return
        handler(self, h, off, h[5:], rest)

    # --- ( family handlers: (self, header, offset, payload head, remaining payload)
    def _esc_paren_a(self, h, off, head, rest):
        self._out.append({"type": "printer.buzzer", "data": {"command": "ESC ( A", "params": bytes(head)}})
        self._payload(rest, h, off)

    def _paren_skip(self, h, off, head, rest):
        self._payload(rest, h, off)

    def _gs_paren_h(self, h, off, head, rest):
        if head and head[0] == 0x30:
            self._status_request("process_id", 48)
        self._payload(rest, h, off)

    def _fs_paren_c(self, h, off, head, rest):
        if len(head) == 2 and head[0] == 0x30 and head[1] in (2, 50):
            self._out.append(_error("unsupported_encoding", off, h))
        self._payload(rest, h, off)

    def _fs_paren_e(self, h, off, head, rest):
        self._status_request("asb_ext", head[1] if len(head) >= 2 else 0)
        self._payload(rest, h, off)

    def _gs_paren_k(self, h, off, head, rest):
        if len(head) < 2:
            return self._payload(rest, h, off)
        cn, fn = head[0], head[1]
        symbology = T.CODE2D.get(cn)
        if symbology is None:
            return self._payload(rest, h, off)
        if fn == 0x50:
            if rest > T.MAX_CODE2D:
                self._out.append(_error("code2d_too_long", off, h[:5]))
                self._code2d[symbology] = None
                return self._payload(rest, h, off)

            def store(data: bytes) -> None:
                self._code2d[symbology] = data

            return self._payload(rest, h, off, store, keep=True)
        if fn == 0x51:
            data = self._code2d.get(symbology)
            if data is None:
                self._out.append(_error("code2d_empty", off, h[:5]))
            else:
                self._flush()
                try:
                    value: str | bytes = data.decode("utf-8")
                except UnicodeDecodeError:
                    value = data
                self._out.append({"type": "printer.code2d", "data": {"symbology": symbology, "data": value}})
        elif fn == 0x52:
            self._status_request("code2d_size", cn)
        self._payload(rest, h, off)

    def _graphics_command(self, h, off, head, rest):
        """GS ( L and GS 8 L: ``head`` is the payload's start (`30 fn ...`), ``rest`` what follows it."""
        total = len(head) + rest
        if len(head) < 2:
            return self._payload(rest, h, off)
        fn = head[1]
        if fn in (0x70, 0x71):
            layout = 10 if fn == 0x70 else 9
            if len(head) < layout:
                self._out.append(_error("bad_length", off, h))
                return self._payload(rest, h, off)
            if fn == 0x70:
                x, y = head[6] | head[7] << 8, head[8] | head[9] << 8
                expected = (x + 7) // 8 * y
            else:
                x, y = head[5] | head[6] << 8, head[7] | head[8] << 8
                expected = x * ((y + 7) // 8)
            if total - layout != expected:
                self._out.append(_error("bad_length", off, h))
                return self._payload(rest, h, off)
            if expected > T.MAX_IMAGE_BYTES:
                self._out.append(_error("image_too_large", off, h))
                return self._payload(rest, h, off)

            def store(data: bytes) -> None:
                rows = data if fn == 0x70 else _column_to_rows(data, x, (y + 7) // 8)[: (x + 7) // 8 * y]
                self._graphics = (x, y, rows)

            return self._payload(rest, h, off, store, keep=True)
        if fn == 0x32:
            if self._graphics is not None:
                self._flush()
                x, y, rows = self._graphics
                self._graphics = None
                self._emit_image("graphics", x, y, rows)
        elif fn in (0x45, 0x55) and len(head) >= 4:
            self._flush()
            kind = "nv" if fn == 0x45 else "download"
            self._out.append({"type": "printer.image", "data": {"kind": kind, "key": bytes(head[2:4]).decode("latin-1")}})
        self._payload(rest, h, off)

    def _gs_paren_l(self, h, off, head, rest):
        self._graphics_command(h, off, head, rest)

    def _gs_8l(self, h: bytes, off: int) -> None:
        length = h[3] | h[4] << 8 | h[5] << 16 | h[6] << 24
        head = h[7:]
        self._graphics_command(h, off, head, length - len(head))

    # --- GS
    def _gs_size(self, h: bytes, off: int) -> None:
        v = h[2]
        if v >> 4 > 7 or v & 15 > 7:
            return self._bad(h, off)
        s = list(self._style)
        s[WIDTH], s[HEIGHT] = (v >> 4) + 1, (v & 15) + 1
        self._style = tuple(s)

    def _gs_invert(self, h: bytes, off: int) -> None:
        s = list(self._style)
        s[INVERT] = bool(h[2] & 1)
        self._style = tuple(s)

    def _gs_print_downloaded(self, h: bytes, off: int) -> None:
        if self._downloaded is not None:
            self._flush()
            w, hgt, rows = self._downloaded
            self._emit_image("downloaded", w, hgt, rows)

    def _gs_define_downloaded(self, h: bytes, off: int) -> None:
        x, y = h[2], h[3]
        size = x * y * 8
        if size > T.MAX_IMAGE_BYTES:  # cannot happen with 1-byte x and y, kept for symmetry with the bound
            self._out.append(_error("image_too_large", off, h))
            return self._payload(size, h, off)

        def store(data: bytes) -> None:
            self._downloaded = (x * 8, y * 8, _column_to_rows(data, x * 8, y))

        self._payload(size, h, off, store, keep=True)

    def _gs_define_bmp(self, h, off):
        """GS D: NV or download graphics from a BMP file; a definition, so no event, only its length matters."""
        if len(h) == 4:
            return self._bad(h, off)
        size = h[11] | h[12] << 8 | h[13] << 16 | h[14] << 24
        if h[9:11] != b"BM" or size < 14:
            self._out.append(_error("bad_length", off, h))
            return
        if size - 6 > T.MAX_IMAGE_BYTES:
            self._out.append(_error("image_too_large", off, h))
        self._payload(size - 6, h, off)

    def _gs_id(self, h, off):
        self._status_request("id", h[2])

    def _gs_status(self, h, off):
        kind = T.GS_R_KINDS.get(h[2])
        if kind is None:
            return self._bad(h, off)
        self._status_request(kind, h[2])

    def _gs_asb(self, h, off):
        self._status_request("asb", h[2])

    def _gs_asb_ink(self, h, off):
        self._status_request("asb_ink", h[2])

    def _gs_counter(self, h, off):
        m = h[2]
        if m == 0x32:
            self._status_request("counter", h[4] | h[5] << 8)
        elif m != 0x30:
            self._bad(h[:3], off)

    def _gs_cut(self, h, off):
        m = h[2]
        partial = T.CUT_MODES.get(m)
        if partial is None:
            return self._bad(h[:3], off)
        self._flush()
        data: dict = {"partial": partial}
        if len(h) == 4:
            data["feed"] = h[3]
        self._out.append({"type": "printer.cut", "data": data})

    def _gs_barcode(self, h, off):
        m = h[2]
        if m <= 6:
            return self._barcode_a(h, off, m)
        if 65 <= m <= 79:
            self._flush()

            def done(data: bytes) -> None:
                self._emit_barcode(m, data)

            return self._payload(h[3], h, off, done, keep=True)
        self._bad(h, off)

    def _barcode_a(self, h, off, m):
        self._flush()
        self._cmd_off, self._cmd_hdr = off, h
        allowed = T.BARCODE_A_CHARS[m]
        data = bytearray()

        def cont(buf: bytes, i: int, n: int, base: int) -> int:
            while i < n:
                b = buf[i]
                if b == 0:
                    self._cont = None
                    self._emit_barcode(m, bytes(data))
                    return i + 1
                if b not in allowed:
                    self._cont = None
                    self._out.append(_error("barcode_bad_data", base + i, h))
                    return i
                if len(data) == T.MAX_BARCODE:
                    self._cont = None
                    self._out.append(_error("barcode_too_long", base + i, h))
                    return i
                data.append(b)
                i += 1
            return i

        self._cont = cont

    def _emit_barcode(self, m: int, data: bytes) -> None:
        symbology = T.BARCODES[m]
        text = T.decode_code128(data) if m in (73, 74) else data.decode("latin-1")
        self._out.append({"type": "printer.barcode", "data": {"symbology": symbology, "data": text}})

    def _gs_raster(self, h, off):
        if h[2] != 0x30:
            return self._bad(h[:3], off)
        x, y = h[4] | h[5] << 8, h[6] | h[7] << 8
        size = x * y
        if size > T.MAX_IMAGE_BYTES:
            self._out.append(_error("image_too_large", off, h))
            return self._payload(size, h, off)
        self._flush()

        def done(data: bytes) -> None:
            self._emit_image("raster", x * 8, y, data)

        self._payload(size, h, off, done, keep=True)

    def _gs_8(self, h, off):
        if h[2] != 0x4C:
            return self._bad(h[:3], off)
        self._gs_8l(h, off)

    # --- FS
    def _fs_kanji_on(self, h, off):
        self._kanji = True

    def _fs_kanji_off(self, h, off):
        self._kanji = False

    def _fs_nv_print(self, h, off):
        self._flush()
        self._out.append({"type": "printer.image", "data": {"kind": "nv", "key": str(h[2])}})

    def _fs_user_kanji(self, h, off):
        self._payload(72, h, off)

    def _fs_nv_memory(self, h, off):
        m = h[2]
        if m == 0x31:
            return self._payload(h[8] | h[9] << 8, h, off)
        if m != 0x32:
            self._bad(h[:3], off)

    def _fs_nv_define(self, h, off):
        def image_size(head: bytes, head_off: int) -> int:
            return (head[0] | head[1] << 8) * (head[2] | head[3] << 8) * 8

        self._blocks(h, off, h[2], 4, image_size)

    # --- DLE
    def _dle_eot(self, h, off):
        kind = T.DLE_EOT_KINDS.get(h[2])
        if kind is None:
            return self._bad(h[:3], off)
        self._status_request(kind, h[2])

    def _dle_dc4(self, h, off):
        fn = h[2]
        if fn not in T.DLE_DC4_LENGTHS:
            return self._bad(h[:3], off)
        if fn == 1:
            m = h[3]
            if m not in (0, 1):
                return self._bad(h[:4], off)
            t = h[4]
            self._out.append({"type": "drawer.kick",
                              "data": {"pin": 2 if m == 0 else 5, "on_ms": t * 100, "off_ms": t * 100}})
        elif fn == 3:
            self._out.append({"type": "printer.buzzer", "data": {"command": "DLE DC4 3", "params": bytes(h[3:8])}})
        elif fn == 7:
            self._status_request("realtime_asb", h[3])
        elif fn == 8:
            self._status_request("clear_buffer", 8)

    def _nothing(self, h, off):
        pass

    # ------------------------------------------------------------------ printer -> till (section 9)
    def _take_request(self, kinds: tuple[str, ...], min_n: int | None = None) -> tuple[str, int] | None:
        for k, (kind, n) in enumerate(self._requests):
            if kind in kinds and (min_n is None or n >= min_n):
                del self._requests[k]
                return kind, n
        return None

    def _take_single_reply_request(self) -> tuple[str, int] | None:
        """The oldest request a one-byte reply answers: paper_sensor, drawer, ink, or id with n < 65."""
        for k, (kind, n) in enumerate(self._requests):
            if kind in ("paper_sensor", "drawer", "ink") or (kind == "id" and n < 65):
                del self._requests[k]
                return kind, n
        return None

    def _walk_replies(self, buf: bytes, base: int) -> None:
        i, n = 0, len(buf)
        while i < n:
            b = buf[i]
            off = base + i
            if b in (0x11, 0x13):
                i += 1
            elif b & 0x93 == 0x12:
                self._dle_eot_reply(b)
                i += 1
            elif b & 0x93 == 0x10:
                # ASB: this byte plus three 0xx0xxxx bytes, XON/XOFF between them skipped
                body = [b]
                j = i + 1
                while j < n and len(body) < 4 and j - i < T.MAX_ASB_SPAN:
                    c = buf[j]
                    if c in (0x11, 0x13):
                        j += 1
                        continue
                    if c & 0x90:
                        break
                    body.append(c)
                    j += 1
                if len(body) == 4:
                    self._asb(bytes(body))
                    i = j
                elif j >= n and j - i < T.MAX_ASB_SPAN:
                    self._hold = buf[i:]
                    return
                else:
                    self._out.append(_error("unknown_reply", off, bytes([b])))
                    i += 1
            elif b & 0x90 == 0:
                self._single_reply(b)
                i += 1
            elif b in (0x5F, 0x3D, 0x37):
                end = buf.find(b"\x00", i + 1, i + 2 + T.MAX_INFO)
                if end < 0:
                    if n - (i + 1) <= T.MAX_INFO:
                        self._hold = buf[i:]
                        return
                    self._out.append(_error("unknown_reply", off, bytes([b])))
                    i += 1
                    continue
                self._block_reply(b, buf[i + 1:end])
                i = end + 1
            elif b == 0x39:
                if i + 4 > n:
                    self._hold = buf[i:]
                    return
                self._out.append({"type": "printer.asb", "data": {"kind": "asb_ext", "raw": bytes(buf[i:i + 4])}})
                i += 4
            elif b == 0x3B:
                if i + 3 > n:
                    if buf[i + 1:n] == b"\x30\x00"[: n - i - 1]:
                        self._hold = buf[i:]
                        return
                if buf[i + 1:i + 3] == b"\x30\x00":
                    self._out.append({"type": "printer.status",
                                      "data": {"kind": "power_off", "online": False, "raw": bytes(buf[i:i + 3])}})
                    i += 3
                else:
                    self._out.append(_error("unknown_reply", off, bytes([b])))
                    i += 1
            else:
                self._out.append(_error("unknown_reply", off, bytes([b])))
                i += 1

    def _status(self, kind: str, fields: dict, raw: bytes, etype: str = "printer.status") -> None:
        data = {"kind": kind}
        data.update(fields)
        data["raw"] = raw
        self._out.append({"type": etype, "data": data})
        if "drawer_open" in fields:  # drawer.status right after every reply that carries the drawer bit
            self._out.append({"type": "drawer.status", "data": {"open": fields["drawer_open"] != self._drawer_low}})

    def _dle_eot_reply(self, b: int) -> None:
        req = self._take_request(("printer", "offline", "error", "paper"))
        raw = bytes([b])
        if req is None:
            return self._status("unknown", {}, raw)
        kind = req[0]
        bit = lambda k: bool(b >> k & 1)  # noqa: E731
        if kind == "printer":
            fields = {"online": not bit(3), "drawer_open": bit(2)}
        elif kind == "offline":
            fields = {"online": not (b & 0x6C), "cover_open": bit(2), "paper": "out" if bit(5) else "ok",
                      "error": bit(6)}
        elif kind == "error":
            fields = {"error": bool(b & 0x6C)}
        else:
            fields = {"paper": "out" if b & 0x60 else ("near_end" if b & 0x0C else "ok")}
        self._status(kind, _ordered(fields), raw)

    def _asb(self, body: bytes) -> None:
        b1, b2, b3 = body[0], body[1], body[2]
        fields = {
            "online": not (b1 & 0x08),
            "cover_open": bool(b1 & 0x20),
            "paper": "out" if b3 & 0x0C else ("near_end" if b3 & 0x03 else "ok"),
            "drawer_open": bool(b1 & 0x04),
            "error": bool(b2 & 0x6C),
        }
        self._status("asb", fields, body, "printer.asb")

    def _single_reply(self, b: int) -> None:
        req = self._take_single_reply_request()
        raw = bytes([b])
        if req is None:
            return self._status("unknown", {}, raw)
        kind, n = req
        if kind == "id":
            self._out.append({"type": "printer.info", "data": {"kind": "id", "n": n, "value": b}})
        elif kind == "paper_sensor":
            self._status(kind, {"paper": "out" if b & 0x0C else ("near_end" if b & 0x03 else "ok")}, raw)
        elif kind == "drawer":
            self._status(kind, {"drawer_open": bool(b & 1)}, raw)
        else:
            self._status(kind, {}, raw)

    def _block_reply(self, header: int, body: bytes) -> None:
        if header == 0x37:
            if not body:
                self._out.append({"type": "printer.info", "data": {"kind": "response", "n": 0, "value": b""}})
                return
            self._out.append({"type": "printer.info",
                              "data": {"kind": "response", "n": body[0], "value": bytes(body[1:])}})
            return
        req = self._take_request(("id",), min_n=65)
        value = bytes(body).decode("latin-1")
        if req is None:
            self._out.append({"type": "printer.info", "data": {"kind": "unknown", "n": 0, "value": value}})
        else:
            self._out.append({"type": "printer.info", "data": {"kind": "id", "n": req[1], "value": value}})


def _ordered(fields: dict) -> dict:
    order = ("online", "cover_open", "paper", "drawer_open", "error")
    return {k: fields[k] for k in order if k in fields}


R = ReferenceEscposDecoder
_ESC: dict[int, Callable] = {
    0x0C: R._esc_print_page, 0x20: R._nothing, 0x21: R._esc_style, 0x24: R._nothing, 0x25: R._nothing,
    0x26: R._esc_user_chars, 0x2A: R._esc_bitimage, 0x2D: R._esc_style, 0x32: R._nothing, 0x33: R._nothing,
    0x3C: R._nothing, 0x3D: R._esc_select_peripheral, 0x3F: R._nothing, 0x40: R._esc_init, 0x42: R._esc_buzzer,
    0x44: R._esc_tabs, 0x45: R._esc_style, 0x47: R._esc_style, 0x4A: R._esc_feed, 0x4B: R._esc_feed,
    0x4C: R._nothing, 0x4D: R._esc_style, 0x52: R._esc_charset, 0x53: R._nothing, 0x54: R._nothing,
    0x55: R._nothing, 0x56: R._esc_style, 0x57: R._nothing, 0x5C: R._nothing, 0x61: R._esc_align,
    0x63: R._nothing, 0x64: R._esc_feed, 0x65: R._esc_feed, 0x69: R._esc_partial_cut, 0x6D: R._esc_partial_cut,
    0x70: R._esc_kick, 0x72: R._nothing, 0x74: R._esc_codepage, 0x75: R._esc_peripheral_status,
    0x76: R._esc_paper_status, 0x7B: R._esc_style, 0x28: R._paren,
}
_GS: dict[int, Callable] = {
    0x21: R._gs_size, 0x23: R._nothing, 0x24: R._nothing, 0x28: R._paren, 0x2A: R._gs_define_downloaded,
    0x2F: R._gs_print_downloaded, 0x38: R._gs_8, 0x44: R._gs_define_bmp, 0x3A: R._nothing, 0x42: R._gs_invert, 0x48: R._nothing,
    0x49: R._gs_id, 0x4C: R._nothing, 0x50: R._nothing, 0x51: R._gs_raster, 0x54: R._nothing, 0x56: R._gs_cut,
    0x57: R._nothing, 0x5C: R._nothing, 0x5E: R._nothing, 0x61: R._gs_asb, 0x62: R._nothing, 0x63: R._nothing,
    0x66: R._nothing, 0x67: R._gs_counter, 0x68: R._nothing, 0x6A: R._gs_asb_ink, 0x6B: R._gs_barcode,
    0x72: R._gs_status, 0x76: R._gs_raster, 0x77: R._nothing, 0x7A: R._nothing,
}
_FS: dict[int, Callable] = {
    0x21: R._nothing, 0x26: R._fs_kanji_on, 0x28: R._paren, 0x2D: R._nothing, 0x2E: R._fs_kanji_off,
    0x32: R._fs_user_kanji, 0x3F: R._nothing, 0x43: R._nothing, 0x53: R._nothing, 0x57: R._nothing,
    0x67: R._fs_nv_memory, 0x70: R._fs_nv_print, 0x71: R._fs_nv_define,
}
_DLE: dict[int, Callable] = {0x04: R._dle_eot, 0x05: R._nothing, 0x14: R._dle_dc4}
_PAREN: dict[tuple[int, int], Callable] = {
    (0x1B, 0x41): R._esc_paren_a, (0x1B, 0x59): R._paren_skip,
    (0x1D, 0x6B): R._gs_paren_k, (0x1D, 0x4C): R._gs_paren_l, (0x1D, 0x48): R._gs_paren_h,
    **{(0x1D, x): R._paren_skip for x in b"ACDEKMNPQz"},
    (0x1C, 0x43): R._fs_paren_c, (0x1C, 0x65): R._fs_paren_e,
    **{(0x1C, x): R._paren_skip for x in b"AEL"},
}
del R

"""Pure-Python customer display decoder: the readable twin of ``native/display.c``. Contract:
``docs/protocols/display.md``.

:class:`DisplayModel` keeps the visible W x H character grid of a CD5220 or Epson DM-D pole display, the cursor
and the screen mode, and decodes the display's commands one byte at a time (so any chunking gives the same
events). It emits ``display.text`` at the end of each burst (section 4), ``display.control`` for settings and
``protocol.error`` for commands outside its table. The ESC/POS reference decoder embeds one (``ESC =``)."""

from __future__ import annotations

import msgpack

from protocols.card import scrub_display_text
from protocols.display import tables as T
from protocols.escpos.profiles import load_profile

_pack = msgpack.Packer(use_bin_type=True).pack

ESC = 0x1B
US = 0x1F
CR = 0x0D
BLANK = 0x20

GROUND, COMMAND, STRING, SKIP = range(4)


def command_map(dialect: str) -> dict[bytes, tuple[int, int, int]]:
    """command bytes -> (parameter bytes, action, argument) for one dialect."""
    bit = T.EPSON if dialect == "epson" else T.CD5220
    return {cmd: (n, action, arg) for mask, cmd, n, action, arg in T.COMMANDS if mask & bit}


class DisplayModel:
    """The display model and its command parser. Events are appended to ``out`` (a list of dicts)."""

    def __init__(self, dialect: str, columns: int, rows: int, profile, out: list):
        self.w = columns
        self.h = rows
        self.out = out
        self.commands = command_map(dialect)
        self.three = {cmd[:2] for cmd in self.commands if len(cmd) == 3}
        self.profile = profile
        n = columns * rows
        self.cells = [BLANK] * n
        self.shown = [BLANK] * n
        self.dirty = [False] * n
        self.x = self.y = 0
        self.pending = False
        self.mode = 1
        self.state = GROUND
        self.hdr = bytearray()
        self.entry = None
        self.n_cmd = 0
        self.cmd_off = 0
        self.text: list[int] = []
        self.line = 0
        self.skip = 0
        self._reset_tables()

    def _reset_tables(self) -> None:
        p = self.profile
        self.codepage = p.codepages[p.codepage_index[p.default_codepage]]
        self.charset = p.charsets[p.charset_index[p.default_charset]]

    # ------------------------------------------------------------------------------------------ events
    def _error(self, code: str, offset: int) -> None:
        self.out.append({"type": "protocol.error", "data": {
            "code": code, "reason": T.ERRORS[code], "offset": offset, "raw": bytes(self.hdr[:1])}})

    def _control(self, setting: str, value: int) -> None:
        self.out.append({"type": "display.control", "data": {"setting": setting, "value": value}})

    def settle(self) -> None:
        """Ends the burst: display.text when the grid differs from the last one emitted."""
        if self.cells != self.shown:
            w = self.w
            lines = [scrub_display_text("".join(map(chr, self.cells[r * w:(r + 1) * w]))) for r in range(self.h)]
            self.out.append({"type": "display.text", "data": {"lines": lines}})
            self.shown = list(self.cells)
        self.dirty = [False] * len(self.cells)

    # ------------------------------------------------------------------------------------------ grid
    def _set(self, i: int, cp: int) -> None:
        if self.cells[i] == cp:
            return
        if self.dirty[i]:
            self.settle()
        self.cells[i] = cp
        self.dirty[i] = cp != BLANK

    def _commit(self, new: list[int]) -> None:
        cells, dirty = self.cells, self.dirty
        if any(a != b and d for a, b, d in zip(new, cells, dirty)):
            self.settle()
            dirty = self.dirty
        for i, cp in enumerate(new):
            if cells[i] != cp:
                cells[i] = cp
                dirty[i] = cp != BLANK

    def _scroll_up(self) -> None:
        self._commit(self.cells[self.w:] + [BLANK] * self.w)

    def _scroll_down(self) -> None:
        self._commit([BLANK] * self.w + self.cells[:-self.w])

    def _shift(self, left: bool) -> None:
        w, y = self.w, self.y
        row = self.cells[y * w:(y + 1) * w]
        row = row[1:] + [BLANK] if left else [BLANK] + row[:-1]
        self._commit(self.cells[:y * w] + row + self.cells[(y + 1) * w:])

    def _right(self) -> None:
        if self.x < self.w - 1:
            self.x += 1
        elif self.mode == 3:
            self._shift(True)
        else:
            self.x = 0
            if self.mode == 2 and self.y == self.h - 1:
                self._scroll_up()
            else:
                self.y = (self.y + 1) % self.h

    def _left(self) -> None:
        if self.x > 0:
            self.x -= 1
        elif self.mode == 3:
            self._shift(False)
        else:
            self.x = self.w - 1
            if self.mode == 2 and self.y == 0:
                self._scroll_down()
            else:
                self.y = (self.y - 1) % self.h

    def _down(self) -> None:
        if self.mode == 2 and self.y == self.h - 1:
            self._scroll_up()
        else:
            self.y = (self.y + 1) % self.h

    def _up(self) -> None:
        if self.mode == 2 and self.y == 0:
            self._scroll_down()
        else:
            self.y = (self.y - 1) % self.h

    def _put(self, b: int) -> None:
        cp = self.charset[b] if b < 0x80 else self.codepage[b - 0x80]
        if self.pending:
            self.pending = False
            self._right()
        self._set(self.y * self.w + self.x, cp)
        if self.x == self.w - 1:
            self.pending = True
        else:
            self.x += 1

    def _string_done(self) -> None:
        self.state = GROUND
        line = 0 if self.line == 2 else self.line
        if line >= self.h:
            return
        w = self.w
        row = (self.text + [BLANK] * w)[:w]
        self._commit(self.cells[:line * w] + row + self.cells[(line + 1) * w:])

    # ------------------------------------------------------------------------------------------ commands
    def _execute(self, n_cmd: int, entry: tuple[int, int, int]) -> None:
        _, action, arg = entry
        p = self.hdr[n_cmd:]
        off = self.cmd_off
        if action <= T.A_BOTTOM:
            self.pending = False
            if action == T.A_BS:
                self._left()
            elif action == T.A_HT:
                self._right()
            elif action == T.A_LF:
                self._down()
            elif action == T.A_UP:
                self._up()
            elif action == T.A_HOME:
                self.x = self.y = 0
            elif action == T.A_LEFTMOST:
                self.x = 0
            elif action == T.A_RIGHTMOST:
                self.x = self.w - 1
            else:
                self.x, self.y = 0, self.h - 1
        elif action == T.A_CLR or action == T.A_INIT:
            self._commit([BLANK] * len(self.cells))
            self.x = self.y = 0
            self.pending = False
            if action == T.A_INIT:
                self.mode = 1
                self._reset_tables()
        elif action == T.A_CAN:
            w, y = self.w, self.y
            self._commit(self.cells[:y * w] + [BLANK] * w + self.cells[(y + 1) * w:])
            self.x = 0
            self.pending = False
        elif action == T.A_POS:
            if 1 <= p[0] <= self.w and 1 <= p[1] <= self.h:
                self.x, self.y = p[0] - 1, p[1] - 1
                self.pending = False
            else:
                self._error("bad_parameter", off)
        elif action == T.A_MODE:
            self.mode = arg
            self._control("mode", arg)
        elif action in (T.A_CURSOR, T.A_REVERSE, T.A_USER_CHARS):
            if p[0] <= 1:
                self._control(T.SETTINGS[action], p[0])
            else:
                self._error("bad_parameter", off)
        elif action == T.A_BRIGHTNESS:
            if 1 <= p[0] <= 4:
                self._control("brightness", p[0])
            else:
                self._error("bad_parameter", off)
        elif action == T.A_BLINK:
            self._control("blink", p[0])
        elif action == T.A_CODEPAGE:
            slot = self.profile.codepage_index[p[0]]
            if slot < 0:
                self._error("unknown_code_table", off)
            else:
                self.codepage = self.profile.codepages[slot]
        elif action == T.A_CHARSET:
            slot = self.profile.charset_index[p[0]]
            if slot < 0:
                self._error("unknown_charset", off)
            else:
                self.charset = self.profile.charsets[slot]
        elif action == T.A_DEFINE:
            s, first, last = p[0], p[1], p[2]
            if s == 1 and 0x20 <= first <= last:
                self.state = SKIP
                self.skip = (last - first + 1) * 6
            else:
                self._error("bad_parameter", off)
        elif action == T.A_STRING:
            self.state = STRING
            self.line = arg
            self.text = []
        # A_SELECT, A_CANCEL_USER, A_IGNORE: consumed, nothing visible changes

    def feed(self, buf, base: int) -> None:
        """Decodes buf; its first byte is at stream offset base."""
        for i, b in enumerate(buf):
            self.byte(b, base + i)

    def byte(self, b: int, off: int) -> None:
        state = self.state
        if state == GROUND:
            if b >= 0x20:
                self._put(b)
                return
            self.hdr = bytearray((b,))
            self.cmd_off = off
            if b == ESC or b == US:
                self.state = COMMAND
                self.entry = None
                return
            entry = self.commands.get(bytes((b,)))
            if entry is None:
                self._error("unknown_display_command", off)
            else:
                self._execute(1, entry)
            return
        if state == COMMAND:
            hdr = self.hdr
            hdr.append(b)
            if self.entry is None:
                if len(hdr) == 2 and bytes(hdr) in self.three:
                    return
                entry = self.commands.get(bytes(hdr))
                if entry is None:
                    self.state = GROUND
                    self._error("unknown_display_command", self.cmd_off)
                    if b < 0x20:
                        self.byte(b, off)
                    return
                self.entry = entry
                self.n_cmd = len(hdr)
            if len(hdr) == self.n_cmd + self.entry[0]:
                self.state = GROUND
                self._execute(self.n_cmd, self.entry)
            return
        if state == STRING:
            if b == CR:
                self._string_done()
                return
            limit = T.MAX_MARQUEE if self.line == 2 else self.w
            if b < 0x20 or len(self.text) == limit:
                self._error("display_string_interrupted" if b < 0x20 else "display_string_too_long", self.cmd_off)
                self._string_done()
                self.byte(b, off)
                return
            self.text.append(self.charset[b] if b < 0x80 else self.codepage[b - 0x80])
            return
        self.skip -= 1
        if not self.skip:
            self.state = GROUND

    def close(self) -> None:
        if self.state != GROUND:
            self._error("truncated", self.cmd_off)
            self.state = GROUND
        self.settle()


class ReferenceDisplayDecoder:
    __slots__ = ("_model", "_out", "_offset", "_fresh")

    def __init__(self, cfg: T.Config):
        self._out: list[dict] = []
        self._model = DisplayModel(cfg.dialect, cfg.columns, cfg.rows, load_profile(cfg.profile), self._out)
        self._offset = 0
        self._fresh = False

    def _take(self) -> bytes:
        blob = b"".join(_pack(ev) for ev in self._out)
        self._out.clear()
        return blob

    def feed(self, data) -> bytes:
        data = bytes(data)
        if data:
            self._fresh = True
            self._model.feed(data, self._offset)
            self._offset += len(data)
        return self._take()

    def tick(self, now_ns: int) -> bytes:
        if not -(1 << 63) <= now_ns < (1 << 63):
            raise OverflowError("tick(now_ns): now_ns must fit in a signed 64-bit integer")
        if not self._fresh:
            self._model.settle()
        self._fresh = False
        return self._take()

    def close(self) -> bytes:
        self._model.close()
        return self._take()

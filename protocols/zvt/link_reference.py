"""Pure-Python ZVT link layer (serial DLE/STX framing with CRC-16/KERMIT, and bare TCP APDUs): the readable twin
of ``native/zvt_link.c``. Contract: ``docs/protocols/zvt-link.md``. A complete APDU (serial: once its CRC matched)
goes to the APDU decoder (``apdu_reference.py``, contract ``docs/protocols/zvt.md``); its bytes are then wiped."""

from __future__ import annotations

import msgpack

from protocols.zvt import tables as T
from protocols.zvt.apdu_reference import decode_apdu

_pack = msgpack.Packer(use_bin_type=True).pack


def _error(code: str, offset: int, raw: bytes) -> dict:
    return {"type": "protocol.error",
            "data": {"code": code, "reason": T.ERRORS[code], "offset": offset, "raw": bytes(raw[:32])}}


class _Apdu:
    """An APDU's bytes (at most MAX_APDU) and its header (≤ 5 bytes; quoted in errors only for a CRC-checked
    serial frame)."""

    __slots__ = ("header", "count", "buf")

    def __init__(self):
        self.header = bytearray()
        self.count = 0
        self.buf = bytearray()

    def add(self, b: int) -> None:
        h = self.header
        if len(h) < 3 or (h[2] == 0xFF and len(h) < 5):
            h.append(b)
        self.buf.append(b)
        self.count += 1

    def wipe(self) -> None:
        """Overwrites the bytes (card data must not linger) and forgets them."""
        self.buf[:] = bytes(len(self.buf))
        self.buf.clear()

    def header_len(self) -> int | None:
        """3 or 5 once known; None while the header is incomplete."""
        h = self.header
        if len(h) < 3:
            return None
        if h[2] != 0xFF:
            return 3
        return 5 if len(h) >= 5 else None

    def declared(self) -> int:
        h = self.header
        return h[2] if h[2] != 0xFF else h[3] | h[4] << 8

    def events(self, offset: int, strict: bool, quote_header: bool) -> list[dict]:
        out = decode_apdu(self.buf, self.header_len(), offset, strict, self.count, quote_header)
        self.wipe()
        return out


class ReferenceZvtLinkDecoder:
    def __init__(self, framing: str, strict: bool = False):
        if framing not in ("serial", "tcp"):
            raise ValueError(f"ZVT framing must be serial or tcp, not {framing!r}")
        self._strict = bool(strict)
        self._serial = framing == "serial"
        self._offset = 0
        self._out: list[dict] = []
        # tcp
        self._apdu: _Apdu | None = None
        self._apdu_off = 0
        # serial
        self._state = "ground"          # ground | frame | dle (after a DLE in a frame) | crc
        self._garbage = False           # inside a run of unexpected bytes (reported once)
        self._pending_dle = None        # offset of a ground DLE whose next byte is not seen yet
        self._frame_off = 0
        self._crc = 0
        self._crc_bytes = bytearray()
        self._dle_off = 0

    # ------------------------------------------------------------------ public
    def feed(self, data) -> bytes:
        data = bytes(data)
        base = self._offset
        self._offset += len(data)
        step = self._serial_byte if self._serial else self._tcp_byte
        for k, b in enumerate(data):
            step(b, base + k)
        return self._drain()

    def close(self) -> bytes:
        if self._serial:
            if self._pending_dle is not None:
                self._unexpected(self._pending_dle, T.DLE)
            elif self._state != "ground":
                self._out.append(_error("truncated", self._frame_off, bytes([T.DLE, T.STX])))
        elif self._apdu is not None:
            # no raw: without a resynchronisation point the "header" may be message bytes (zvt-link.md section 2)
            self._out.append(_error("truncated", self._apdu_off, b""))
        return self._drain()

    def _drain(self) -> bytes:
        out = b"".join(_pack(ev) for ev in self._out)
        self._out.clear()
        return out

    # ------------------------------------------------------------------ tcp (section 2)
    def _tcp_byte(self, b: int, off: int) -> None:
        if self._apdu is None:
            self._apdu = _Apdu()
            self._apdu_off = off
        a = self._apdu
        a.add(b)
        hl = a.header_len()
        if hl is not None and a.count == hl + a.declared():
            self._out += a.events(self._apdu_off, self._strict, False)
            self._apdu = None

    # ------------------------------------------------------------------ serial (section 3)
    def _unexpected(self, off: int, b: int) -> None:
        if not self._garbage:
            self._garbage = True
            self._out.append(_error("unexpected_byte", off, bytes([b])))

    def _start_frame(self, off: int) -> None:
        self._garbage = False
        self._state = "frame"
        self._frame_off = off
        if self._apdu is not None:
            self._apdu.wipe()
        self._apdu = _Apdu()
        self._crc = 0

    def _serial_byte(self, b: int, off: int) -> None:
        state = self._state
        if self._pending_dle is not None:
            dle_off = self._pending_dle
            self._pending_dle = None
            if b == T.STX:
                self._start_frame(dle_off)
                return
            self._unexpected(dle_off, T.DLE)
            # the byte after the lone DLE is decoded afresh in ground
        if state == "ground":
            if b == T.ACK:
                self._garbage = False
                self._out.append({"type": "link.ack", "data": {}})
            elif b == T.NAK:
                self._garbage = False
                self._out.append({"type": "link.nak", "data": {}})
            elif b == T.DLE:
                self._pending_dle = off
            else:
                self._unexpected(off, b)
        elif state == "frame":
            if b == T.DLE:
                self._state = "dle"
                self._dle_off = off
            else:
                self._data(b)
        elif state == "dle":
            self._state = "frame"
            if b == T.DLE:
                self._data(T.DLE)
            elif b == T.ETX:
                self._crc = T.crc16_kermit(b"\x03", self._crc)
                self._state = "crc"
                self._crc_bytes = bytearray()
            elif b == T.STX:
                self._out.append(_error("frame_restarted", self._frame_off, bytes([T.DLE, T.STX])))
                self._start_frame(self._dle_off)
            else:
                self._out.append(_error("bad_escape", self._dle_off, bytes([T.DLE, b])))
                self._abandon()
                self._serial_byte(b, off)
        else:  # "crc": the two CRC bytes after DLE ETX, low byte first, not stuffed
            self._crc_bytes.append(b)
            if len(self._crc_bytes) == 2:
                self._state = "ground"
                self._frame_done()

    def _data(self, b: int) -> None:
        a = self._apdu
        if a.count == T.MAX_APDU:
            self._out.append(_error("frame_too_long", self._frame_off, bytes([T.DLE, T.STX])))
            self._abandon()
            self._garbage = True
            return
        a.add(b)
        self._crc = T.crc16_kermit(bytes([b]), self._crc)

    def _abandon(self) -> None:
        self._state = "ground"
        if self._apdu is not None:
            self._apdu.wipe()
        self._apdu = None

    def _frame_done(self) -> None:
        got = self._crc_bytes[0] | self._crc_bytes[1] << 8
        a = self._apdu
        self._apdu = None
        if got != self._crc:
            a.wipe()
            self._out.append({"type": "link.checksum_error", "data": {"expected": self._crc, "got": got}})
            return
        if a.header_len() is None:
            a.wipe()
            self._out.append(_error("short_apdu", self._frame_off, bytes([T.DLE, T.STX])))
            return
        self._out += a.events(self._frame_off, self._strict, True)

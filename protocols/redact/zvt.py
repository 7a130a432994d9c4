"""ZVT card data (``docs/protocols/zvt.md``): BMP 22 (PAN), 23/24 (track 2/3), 2D (track 1), the withheld BMPs
(0E expiry, 3A CVV, A7 chip account data, D1 PIN data), BA when it is not an AID, text BMPs, and the card-data
TLV tags of BMP 06. PAN digits become ``E`` nibbles ("masked by the device", which the decoder shows as ``*``).

Streams: ``zvt-tcp`` is bare APDUs (held until complete); ``zvt-serial`` frames ``10 02 … 10 03 CRC`` with DLE
stuffing (held until the CRC; the CRC-16/KERMIT is recomputed when it matched on the wire). No masked byte is DLE
(``E``/``0`` nibbles, ``0`` and space characters); a data byte that *was* DLE inside a masked value stays DLE, so the
stuffing, and every offset, stays as on the wire (it shows two nibbles ``1``, ``0`` of the value; documented in
``docs/bridge/recording.md``).
"""

from __future__ import annotations

from protocols.checksums import crc16_kermit
from protocols.redact.fields import (looks_like_aid, mask_ascii_track1, mask_bcd_pan, mask_bcd_track,
                                     mask_free_text, mask_tlv, withhold)
from protocols.zvt import bmps as B

DLE, STX, ETX = 0x10, 0x02, 0x03
# A whole APDU is held (the framing has no other resynchronisation point): the largest, as the decoder's bound.
MAX_APDU = 5 + 65535


def _aid_or_withhold(buf, s, e, counts):
    if not looks_like_aid(bytes(buf[s:e])):
        withhold(buf, s, e, counts)


TLV_RULES = {
    **{t: (lambda b, s, e, c: mask_bcd_pan(b, s, e, c, "E")) for t in B.TLV_PAN},
    **{t: (lambda b, s, e, c: mask_bcd_track(b, s, e, c, "E")) for t in B.TLV_TRACK},
    **{t: mask_ascii_track1 for t in B.TLV_TRACK1},
    **{t: withhold for t in B.TLV_WITHHELD},
    B.TLV_LINE: mask_free_text,
    B.TLV_AID: _aid_or_withhold,
}


def _walk_bmps(buf: bytearray, pos: int, end: int, counts: dict) -> None:
    while pos < end:
        tag_at = pos
        tag = buf[pos]
        entry = B.BMPS.get(tag)
        if entry is None:
            # the decoder stops here too; what follows cannot be told apart (a BCD PAN after an unknown BMP):
            # the rest of the message is masked whole
            withhold(buf, tag_at, end, counts)
            return
        length, kind = entry
        pos += 1
        if length == B.LL or length == B.LLL:
            width = 2 if length == B.LL else 3
            lp = buf[pos:pos + width]
            if len(lp) < width or any(c >> 4 != 0xF or c & 0xF > 9 for c in lp):
                withhold(buf, tag_at, end, counts)  # a malformed length: the walk stops, the rest is masked
                return
            n = 0
            for c in lp:
                n = n * 10 + (c & 0xF)
            pos += width
        elif length == B.BER:
            if pos >= end:
                withhold(buf, tag_at, end, counts)
                return
            n = buf[pos]
            pos += 1
            if n & 0x80:
                w = n & 0x7F
                if w not in (1, 2) or pos + w > end:
                    withhold(buf, tag_at, end, counts)
                    return
                n = int.from_bytes(buf[pos:pos + w], "big")
                pos += w
        else:
            n = length
        if pos + n > end:  # a value longer than the message: whatever of it is there is masked whole
            withhold(buf, tag_at, end, counts)
            return
        s, e = pos, min(pos + n, end)
        if kind == B.PAN:
            mask_bcd_pan(buf, s, e, counts, "E")
        elif kind == B.TRACK:
            mask_bcd_track(buf, s, e, counts, "E")
        elif kind == B.TRACK1:
            mask_ascii_track1(buf, s, e, counts)
        elif kind == B.WITHHELD:
            withhold(buf, s, e, counts)
        elif kind == B.AID:
            _aid_or_withhold(buf, s, e, counts)
        elif kind in (B.TEXT, B.BYTES):
            mask_free_text(buf, s, e, counts)
        elif kind == B.TLV:
            mask_tlv(buf, s, e, counts, TLV_RULES)
        pos += n


def mask_apdu(apdu: bytearray, counts: dict) -> None:
    """Mask the card data of one complete APDU (header included in ``apdu``), in place."""
    if len(apdu) < 3:
        return
    cls, instr = apdu[0], apdu[1]
    pos = 3
    if apdu[2] == 0xFF:
        pos = 5
    end = len(apdu)
    layout = B.layout_of(cls, instr)
    if layout == B.L_PASSWORD:
        pos += 3
    elif layout == B.L_REGISTRATION:
        pos += 4
        if end - pos >= 2 and apdu[pos] not in (0x03, 0x06):
            pos += 2
    elif layout == B.L_STATUS:
        pos += 1
        if pos < end and (apdu[pos] != 0x06 or end - pos == 1):
            pos += 1
    elif layout == B.L_RESULT:
        pos += 1
    elif layout == B.L_PRINT_LINE:
        mask_free_text(apdu, pos + 1, end, counts)
        return
    elif layout is None:  # a command the redactor cannot walk: its data masked whole
        withhold(apdu, min(pos, end), end, counts)
        return
    if pos < end:
        _walk_bmps(apdu, pos, end, counts)


def _apdu_length(head: bytes) -> int | None:
    """Total APDU length from its header bytes, or None while the header is incomplete."""
    if len(head) < 3:
        return None
    if head[2] != 0xFF:
        return 3 + head[2]
    if len(head) < 5:
        return None
    return 5 + int.from_bytes(head[3:5], "little")


def keep_dle_count(before: bytes, data: bytearray) -> int:
    """Make the masked APDU ``data`` hold as many DLE bytes as ``before`` did, so its stuffed frame has the same
    length on the wire (and every later offset stays). A masked byte that was DLE is unstuffed; to make up, as many
    fully masked bytes (``EE``, ``00``) become DLE (the digits ``1 0``, which the decoder masks the same), those that
    were not DLE first. The result only tells how many masked bytes were DLE, not which. When that would give back a
    masked range unchanged (all its bytes were DLE, and nothing else was masked), the range stays masked and the
    frame gets shorter: returns by how many bytes (0 normally)."""
    changed = [k for k in range(len(data)) if data[k] != before[k]]
    need = sum(before[k] == DLE for k in changed) - sum(data[k] == DLE for k in changed)
    if need <= 0:
        return 0
    # Never a position that *was* DLE: writing DLE back there would give that byte back (two digits of the PAN).
    free = [k for k in changed if data[k] in (0xEE, 0x00) and before[k] != DLE]
    chosen = free[:need]
    if len(chosen) < need:
        return need
    trial = bytearray(data)
    for k in chosen:
        trial[k] = DLE
    # a masked range (a run of changed bytes) that would come out as it was is a leak: do not
    run: list[int] = []
    for k in changed + [-2]:
        if run and k != run[-1] + 1:
            if all(trial[j] == before[j] for j in run):
                return need
            run = []
        run.append(k)
    data[:] = trial
    return 0


class ZvtTcpRedactor:
    """Holds one APDU until its last byte (at most ``MAX_APDU`` bytes)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._apdu = bytearray()   # the APDU being received (header included)
        self._need: int | None = None
        self._released = 0         # bytes of the current APDU already released by flush(): the rest passes at once,
        #                            header bytes as they are, data bytes zeroed
        self._offset = 0           # stream offset of the current APDU's first byte

    def feed(self, data: bytes) -> tuple[bytes, list[dict]]:
        out = bytearray()
        i, n = 0, len(data)
        while i < n:
            if self._need is None:
                self._apdu.append(data[i])
                i += 1
                self._need = _apdu_length(self._apdu)
                if self._need is None:
                    continue
            take = min(self._need - len(self._apdu), n - i)
            self._apdu += data[i:i + take]
            i += take
            if len(self._apdu) == self._need:
                if self._released:
                    out += self._blind_part()
                else:
                    mask_apdu(self._apdu, self.counts)
                    out += self._apdu
                self._offset += len(self._apdu)
                self._apdu = bytearray()
                self._need = None
                self._released = 0
        if self._released:
            out += self._blind_part()
        return bytes(out), []

    @property
    def held(self) -> int:
        return len(self._apdu) - self._released

    def _blind_part(self) -> bytes:
        """The bytes of a released APDU not yet out: header bytes as they are, data bytes as zeros."""
        head = 5 if len(self._apdu) >= 3 and self._apdu[2] == 0xFF else 3
        part = bytearray(self._apdu[self._released:])
        for k in range(len(part)):
            if self._released + k >= head:
                part[k] = 0
        self._released = len(self._apdu)
        return bytes(part)

    def flush(self, end: bool = False) -> tuple[bytes, list[dict]]:
        if not self._apdu:
            return b"", []
        notes = []
        if not self._released:
            notes.append({"offset": self._offset, "reason": "apdu cut by a flush: its data masked whole"})
            self.counts["withheld"] = self.counts.get("withheld", 0) + 1
        return self._blind_part(), notes


class ZvtSerialRedactor:
    """Holds a frame from ``10 02`` to its CRC (at most ``2 * MAX_APDU + 6`` bytes stuffed); bytes between frames
    (ACK, NAK, noise) pass at once."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._raw = bytearray()      # the frame as on the wire, from 10 02
        self._data = bytearray()     # unstuffed APDU
        self._pos: list[int] = []    # raw offset of each unstuffed byte
        self._state = "ground"       # ground, dle0 (a 10 outside a frame), frame, dle, crc
        self._crc_left = 0
        self._offset = 0             # stream offset of the next byte fed
        self._frame_at = 0
        self._blind = False          # the rest of a frame released by flush(): data zeroed and passed at once

    def feed(self, data: bytes) -> tuple[bytes, list[dict]]:
        out = bytearray()
        notes: list[dict] = []
        for b in data:
            self._offset += 1
            st = self._state
            if st == "ground":
                if b == DLE:
                    self._state = "dle0"
                    self._raw = bytearray([b])
                    self._frame_at = self._offset - 1
                else:
                    out.append(b)
            elif st == "dle0":
                if b == STX:  # (blind when flush() released the 10 already)
                    self._raw.append(b)
                    self._data.clear()
                    self._pos.clear()
                    self._state = "frame"
                else:
                    out += self._raw
                    self._raw.clear()
                    self._state = "ground"
                    self._blind = False
                    out += self.feed(bytes([b]))[0]
                    self._offset -= 1
            elif st == "frame":
                self._raw.append(b)
                if b == DLE:
                    self._state = "dle"
                else:
                    self._pos.append(len(self._raw) - 1)
                    self._data.append(b)
                    if self._blind:
                        self._raw[-1] = 0
                    elif len(self._data) > MAX_APDU:
                        out += self._abandon()
            elif st == "dle":
                self._raw.append(b)
                if b == DLE:
                    self._pos.append(len(self._raw) - 1)
                    self._data.append(b)
                    self._state = "frame"
                elif b == ETX:
                    self._state = "crc"
                    self._crc_left = 2
                elif self._blind and len(self._raw) == 1:
                    # the 10 went out with a flush already: a frame whose start is released cannot be masked
                    # field by field; it is masked whole (b == 02, a restart) or the escape ends the blind frame
                    self._raw.clear()
                    if b == STX:
                        out.append(b)
                        self._state = "frame"
                        self._frame_at = self._offset - 2
                    else:
                        self._blind = False
                        self._state = "ground"
                        self._offset -= 1
                        out += self.feed(bytes([b]))[0]
                    continue
                else:  # 10 02 (restart) or a bad escape: the frame is abandoned; a restart's 10 02 starts anew
                    last = self._raw[-2:]
                    self._raw = self._raw[:-2]
                    out += self._abandon()
                    self._offset -= 2
                    out += self.feed(bytes(last))[0]
            elif st == "crc":
                self._raw.append(b)
                self._crc_left -= 1
                if not self._crc_left:
                    out += self._finish(notes)
            # a blind frame's bytes pass at once, but a DLE waits for the next byte: 10 02 is a restart, whose
            # new frame is masked field by field again
            if self._blind and self._state in ("frame", "crc"):
                out += self._raw
                self._raw.clear()
        return bytes(out), notes

    @property
    def held(self) -> int:
        return len(self._raw)

    def _abandon(self) -> bytes:
        """A frame the decoder drops: its data bytes are masked whole (zeros; DLE pairs kept)."""
        raw = self._raw
        if self._blind:
            self._blind = False
            self._raw = bytearray()
            self._state = "ground"
            return bytes(raw)
        for k in self._pos[3:]:
            if raw[k] != DLE:
                raw[k] = 0
        if len(self._pos) > 3:
            self.counts["withheld"] = self.counts.get("withheld", 0) + 1
        out = bytes(raw)
        self._raw = bytearray()
        self._state = "ground"
        return out

    def _finish(self, notes: list) -> bytes:
        raw, data = self._raw, self._data
        if self._blind:
            self._blind = False
            out = bytes(raw)
            self._raw = bytearray()
            self._state = "ground"
            return out
        got = raw[-2] | raw[-1] << 8
        matched = crc16_kermit(bytes(data) + b"\x03") == got
        before = bytes(data)
        mask_apdu(data, self.counts)
        if bytes(data) != before:
            shrink = keep_dle_count(before, data)
            if shrink:
                notes.append({"offset": self._frame_at, "shift": -shrink,
                              "reason": "masked DLE bytes unstuffed: the frame is shorter than on the wire"})
            crc = crc16_kermit(bytes(data) + b"\x03")
            if not matched:
                notes.append({"offset": self._frame_at, "reason": "checksum was wrong on the wire; left wrong",
                              "checksum": "not fixed"})
                if got == crc:
                    got ^= 0x0100
                crc = got
            raw = bytearray(b"\x10\x02" + bytes(data).replace(b"\x10", b"\x10\x10") + b"\x10\x03")
            raw += bytes([crc & 0xFF, crc >> 8])
        out = bytes(raw)
        self._raw = bytearray()
        self._state = "ground"
        return out

    def flush(self, end: bool = False) -> tuple[bytes, list[dict]]:
        if self._state == "ground":
            return b"", []
        if self._state == "dle0":  # a 10 that may start a frame: released; a frame it starts passes blind
            out = bytes(self._raw)
            self._raw = bytearray()
            self._blind = True
            return out, []
        # a frame still arriving: released with its data masked whole, and so is the rest of it when it comes; the
        # decoder will see a checksum error for it
        if self._blind:
            out = bytes(self._raw)
            self._raw.clear()
            return out, []
        notes = [{"offset": self._frame_at, "reason": "frame cut by a flush: its data masked whole",
                  "checksum": "not fixed"}]
        state = self._state
        out = self._abandon()
        self._state = state
        self._blind = True
        return out, notes

"""Generic STX/ETX ECR links (``docs/protocols/ecr.md``): the payload of each frame is masked as text (tracks and
PANs, ``protocols.redact.text``) and the frame's checksum (XOR, sum, CRC-16 of the preset) recomputed when it was
right on the wire. Bytes between frames are masked as text too."""

from __future__ import annotations

from protocols.ecr import tables as ET
from protocols.redact.text import TextRedactor, _bump, mask_text


class EcrRedactor:
    """Holds one frame, at most ``max_frame`` payload bytes plus STX, ETX and checksum (the decoder's bound)."""

    def __init__(self, options: dict) -> None:
        self.counts: dict[str, int] = {}
        self.cfg = ET.resolve(options)
        # With a field separator, a digit run never spans two fields: every run of 13 digits or more is masked, as
        # the decoder scrubs the payload. Without one, layouts read fields at fixed positions inside long digit runs
        # (Concert: POS number, amount, flags and currency form one 16-digit run), so only Luhn-valid PANs are, and
        # only whole digit runs (windows=False: a Luhn-valid window inside such a run is common by chance).
        self.luhn = self.cfg.fs is None
        self._between = TextRedactor(self.luhn, products=False)
        self._between.counts = self.counts
        self._frame = bytearray()
        self._state = "ground"  # ground, frame, csum
        self._left = 0
        self._offset = 0
        self._frame_at = 0
        self._blind = False

    def feed(self, data: bytes) -> tuple[bytes, list[dict]]:
        cfg = self.cfg
        out = bytearray()
        notes: list[dict] = []
        ground = bytearray()
        for b in data:
            self._offset += 1
            if self._state == "ground":
                if b == cfg.stx:
                    out += self._between.feed(bytes(ground))[0] + self._between.flush(end=True)[0]
                    ground.clear()
                    self._frame = bytearray([b])
                    self._frame_at = self._offset - 1
                    self._state = "frame"
                else:
                    ground.append(b)
                continue
            if self._blind and self._state == "frame" and b not in (cfg.etx, cfg.stx):
                b = 0x30
            self._frame.append(b)
            if self._state == "frame":
                if b == cfg.etx:
                    self._left = cfg.width
                    self._state = "csum"
                elif b == cfg.stx:  # restarted: the abandoned frame is masked as text
                    head = self._frame[:-1]
                    mask_text(head, self.counts, final=True, luhn=self.luhn, products=False, windows=False)
                    out += head
                    self._frame = bytearray([b])
                    self._frame_at = self._offset - 1
                    self._blind = False
                elif len(self._frame) - 1 > cfg.max_frame:
                    mask_text(self._frame, self.counts, final=True, luhn=self.luhn, products=False, windows=False)
                    out += self._frame
                    self._frame = bytearray()
                    self._state = "ground"
                    self._blind = False
                    continue
            else:
                self._left -= 1
            if self._state == "csum" and self._left <= 0:
                out += self._finish(notes)
            elif self._blind:
                out += self._frame
                self._frame.clear()
        out += self._between.feed(bytes(ground))[0]
        return bytes(out), notes

    @property
    def held(self) -> int:
        return len(self._frame) + self._between.held

    def _finish(self, notes: list) -> bytes:
        cfg, fr = self.cfg, self._frame
        if self._blind:
            self._blind = False
            out = bytes(fr)
            self._frame, self._state = bytearray(), "ground"
            return out
        w = cfg.width
        etx_at = len(fr) - 1 - w
        payload = fr[1:etx_at]
        before = bytes(payload)
        got_bytes = bytes(fr[etx_at + 1:])

        def check(p: bytes) -> bytes:
            covered = (bytes([cfg.stx]) if cfg.include_stx else b"") + p + (bytes([cfg.etx]) if cfg.include_etx else b"")
            v = ET.checksum(cfg.checksum, covered, cfg.seed)
            return bytes([v]) if w == 1 else (v.to_bytes(2, cfg.byte_order) if w == 2 else b"")

        mask_text(payload, self.counts, final=True, luhn=self.luhn, products=False, windows=False)
        if bytes(payload) != before:
            fr[1:etx_at] = payload
            if check(before) == got_bytes:
                fr[etx_at + 1:] = check(bytes(payload))
            elif w:
                notes.append({"offset": self._frame_at, "reason": "checksum was wrong on the wire; left wrong",
                              "checksum": "not fixed"})
                if check(bytes(payload)) == got_bytes:
                    fr[-1] ^= 0x01
        out = bytes(fr)
        self._frame, self._state = bytearray(), "ground"
        return out

    def flush(self, end: bool = False) -> tuple[bytes, list[dict]]:
        out = bytearray(self._between.flush(end=end)[0])
        notes: list[dict] = []
        if self._state != "ground" and self._frame:
            if not self._blind:
                # the payload so far (up to the ETX when it came) becomes '0'; the rest of the frame follows blind
                stop = len(self._frame) if self._state == "frame" else len(self._frame) - 1 - (self.cfg.width - self._left)
                for i in range(1, stop):
                    self._frame[i] = 0x30
                notes.append({"offset": self._frame_at, "reason": "frame cut by a flush: its payload masked whole",
                              "checksum": "not fixed"})
                _bump(self.counts, "withheld")
                self._blind = True
            out += self._frame
            self._frame.clear()
        return bytes(out), notes

"""Pure-Python magnetic stripe reader decoder: the readable twin of ``native/msr.c``. Contract:
``docs/protocols/msr.md``. Tracks are framed by their sentinels (and an LRC byte with ``lrc=on``); separators
(CR, CR LF, LF) between them are skipped; a swipe ends after the reader's last track, at a track that cannot
follow the ones read, at a quiet gap seen through ``tick(now_ns)``, or at ``close()``. Each swipe leaves as one
``msr.swipe`` holding only the masked PAN and the numbers of the tracks read."""

from __future__ import annotations

import msgpack

from protocols.msr import tables as T
from protocols.msr.track import swipe_event, track_pan

_pack = msgpack.Packer(use_bin_type=True).pack

IDLE, TRACK, SKIP, LRC, LRC_SKIP = range(5)
PCT, SEMI, QM = 0x25, 0x3B, 0x3F


def _error(code: str, offset: int) -> dict:
    # raw is always empty: any byte of a track may be card data
    return {"type": "protocol.error", "data": {"code": code, "reason": T.ERRORS[code], "offset": offset, "raw": b""}}


class ReferenceMsrDecoder:
    def __init__(self, cfg: T.Config):
        self.cfg = cfg
        self.seps = T.SEPARATORS[cfg.separator]
        self.top = max(cfg.tracks)
        self.semi = [t for t in (2, 3) if t in cfg.tracks] or [2]
        self.gap_ns = cfg.gap_ms * 1_000_000
        self.offset = 0
        self.mode = IDLE
        self.junk = False
        self.buf = bytearray()
        self.tnum = 0
        self.tstart = 0
        # the swipe
        self.last = 0          # the number of the last track begun in this swipe; 0: no swipe
        self.sstart = 0
        self.good: list[int] = []
        self.pan: bytes | None = None
        self.mismatch = False
        # time
        self.fresh = False
        self.last_seen: int | None = None

    # ------------------------------------------------------------------ swipes
    def _end_swipe(self, out: list) -> None:
        if not self.last:
            return
        if self.mismatch:
            out.append(_error("msr_pan_mismatch", self.sstart))
        out.append(swipe_event(None if self.mismatch else self.pan, self.good))
        self.last = 0
        self.good = []
        self.pan = None
        self.mismatch = False

    def _track_done(self, out: list) -> None:
        if self.tnum == self.top:
            self._end_swipe(out)

    def _start_track(self, b: int, off: int, out: list) -> None:
        if b == PCT:
            n = 1 if self.last < 1 else 0
        else:
            n = next((t for t in self.semi if t > self.last), 0)
        if not n:
            self._end_swipe(out)
            n = 1 if b == PCT else self.semi[0]
        if not self.last:
            self.sstart = off
        self.last = n
        self.tnum = n
        self.tstart = off
        self.buf = bytearray((b,))
        self.mode = TRACK
        self.junk = False

    def _finish(self, lrc: int | None, out: list) -> None:
        n, track = self.tnum, bytes(self.buf)
        base, top = T.BASE[n], T.BASE[n] + T.MASK[n]
        data = track[1:-1]
        if any(c < base or c > top for c in data) or (n == 1 and data == b"E"):
            out.append(_error("msr_bad_track", self.tstart))
        elif lrc is not None and not (base <= lrc <= top and _lrc(track, base) == lrc - base):
            out.append(_error("msr_bad_lrc", self.tstart))
        elif data:
            self.good.append(n)
            pan = track_pan(track, n) if n < 3 else None
            if pan is not None:
                if self.pan is None:
                    self.pan = pan
                elif self.pan != pan:
                    self.mismatch = True
        self.mode = IDLE
        self._track_done(out)

    def _flush(self, out: list) -> None:
        """A gap or the end of the stream: whatever is open ends."""
        if self.mode == TRACK:
            out.append(_error("msr_no_end_sentinel", self.tstart))
            self.mode = IDLE
            self._track_done(out)
        elif self.mode == LRC:
            out.append(_error("msr_bad_lrc", self.tstart))
            self.mode = IDLE
            self._track_done(out)
        self.mode = IDLE
        self.junk = False
        self._end_swipe(out)

    # ------------------------------------------------------------------ API
    def feed(self, data) -> bytes:
        data = bytes(data)
        if not data:
            return b""
        out: list = []
        seps, lrc_on, base = self.seps, self.cfg.lrc, self.offset
        for k, b in enumerate(data):
            mode = self.mode
            if mode == TRACK:
                if b == QM:
                    self.buf.append(b)
                    if lrc_on:
                        self.mode = LRC
                    else:
                        self._finish(None, out)
                    continue
                if b == PCT or b == SEMI or b in seps:
                    out.append(_error("msr_no_end_sentinel", self.tstart))
                    self.mode = IDLE
                    self._track_done(out)
                    if b in seps:
                        self.junk = False
                        continue
                    mode = IDLE  # the start sentinel begins the next track below
                elif len(self.buf) >= T.MAX_TRACK[self.tnum] - 1:
                    out.append(_error("msr_track_too_long", self.tstart))
                    self.mode = SKIP
                    self._track_done(out)
                    continue
                else:
                    self.buf.append(b)
                    continue
            elif mode == SKIP:
                if b == QM:
                    self.mode = LRC_SKIP if lrc_on else IDLE
                    continue
                if b in seps:
                    self.mode = IDLE
                    self.junk = False
                    continue
                if b != PCT and b != SEMI:
                    continue
                self.mode = mode = IDLE
            elif mode == LRC:
                self._finish(b, out)
                continue
            elif mode == LRC_SKIP:
                self.mode = IDLE
                continue
            # IDLE
            if b == PCT or b == SEMI:
                self._start_track(b, base + k, out)
            elif b in seps:
                self.junk = False
            elif not self.junk:
                out.append(_error("unexpected_byte", base + k))
                self.junk = True
        self.offset += len(data)
        self.fresh = True
        return b"".join(_pack(e) for e in out)

    def tick(self, now_ns: int) -> bytes:
        if not -(1 << 63) <= now_ns < (1 << 63):
            raise OverflowError("tick(now_ns): now_ns must fit in a signed 64-bit integer")
        if self.fresh:
            self.fresh = False
            self.last_seen = now_ns
            return b""
        out: list = []
        if ((self.last or self.mode != IDLE or self.junk) and self.last_seen is not None
                and now_ns - self.last_seen > self.gap_ns):
            self._flush(out)
        return b"".join(_pack(e) for e in out)

    def close(self) -> bytes:
        out: list = []
        self._flush(out)
        return b"".join(_pack(e) for e in out)


def _lrc(track: bytes, base: int) -> int:
    """ISO/IEC 7811-2: the exclusive-or of the character codes (parity excluded) from start to end sentinel."""
    x = 0
    for c in track:
        x ^= c - base
    return x

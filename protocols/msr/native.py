"""The C magnetic stripe reader decoder (``native/msr.c``) behind the same interface as the reference decoder."""

from __future__ import annotations

from protocols.msr import tables as T
from protocols.native_decoder import NativeDecoder, ffi, lib  # noqa: F401 - ffi re-exported for tests

_SEPARATOR = {"cr": 0, "crlf": 1, "lf": 2, "none": 3}
_INT64 = (-(1 << 63), (1 << 63) - 1)


class NativeMsrDecoder(NativeDecoder):
    __slots__ = ()

    def __init__(self, cfg: T.Config):
        c = ffi.new("tw_msr_config *")
        c.separator = _SEPARATOR[cfg.separator]
        c.lrc = 1 if cfg.lrc else 0
        c.tracks = sum(1 << t for t in cfg.tracks)
        c.gap_ms = cfg.gap_ms
        super().__init__(lib.tw_msr_new(c), lib.tw_msr_free, lib.tw_msr_feed, lib.tw_msr_close, "MSR decoder")

    def tick(self, now_ns: int) -> bytes:
        if not _INT64[0] <= now_ns <= _INT64[1]:
            raise OverflowError("tick(now_ns): now_ns must fit in a signed 64-bit integer")
        return self._take(lib.tw_msr_tick(self._dec, now_ns, self._out))

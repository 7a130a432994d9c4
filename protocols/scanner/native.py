"""The C barcode scanner decoder (``native/scanner.c``) behind the same interface as the reference decoders."""

from __future__ import annotations

from protocols.native_decoder import NativeDecoder, ffi, lib  # noqa: F401 - ffi re-exported for tests
from protocols.scanner import tables as T

_SUFFIX = {"cr": 0, "crlf": 1, "lf": 2, "tab": 3, "none": 4}
_AIM = {"auto": 0, "on": 1, "off": 2}
_INT64 = (-(1 << 63), (1 << 63) - 1)


class NativeScannerDecoder(NativeDecoder):
    __slots__ = ()

    def __init__(self, cfg: T.Config):
        c = ffi.new("tw_scanner_config *")
        c.hid = cfg.hid
        c.suffix = _SUFFIX[cfg.suffix]
        c.gap_ms = cfg.gap_ms
        c.aim = _AIM[cfg.aim]
        c.prefix_len = len(cfg.prefix)
        for k, b in enumerate(cfg.prefix):
            c.prefix[k] = b
        super().__init__(lib.tw_scanner_new(c), lib.tw_scanner_free, lib.tw_scanner_feed, lib.tw_scanner_close,
                         "scanner decoder")

    def tick(self, now_ns: int) -> bytes:
        if not _INT64[0] <= now_ns <= _INT64[1]:
            raise OverflowError("tick(now_ns): now_ns must fit in a signed 64-bit integer")
        return self._take(lib.tw_scanner_tick(self._dec, now_ns, self._out))

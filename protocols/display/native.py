"""The C customer display decoder (``native/display.c``) behind the same interface as the reference decoder. The
code tables are the printer profile's C arrays, shared with the ESC/POS wrapper (``protocols.escpos.native``)."""

from __future__ import annotations

from protocols.display import tables as T
from protocols.escpos.native import _tables_of
from protocols.escpos.profiles import load_profile
from protocols.native_decoder import NativeDecoder, ffi, lib  # noqa: F401 - ffi re-exported for tests

_DIALECT = {"epson": 1, "cd5220": 2}
_INT64 = (-(1 << 63), (1 << 63) - 1)


class NativeDisplayDecoder(NativeDecoder):
    __slots__ = ("_tables",)

    def __init__(self, cfg: T.Config):
        self._tables = t = _tables_of(load_profile(cfg.profile))  # the decoder points into these arrays
        c = ffi.new("tw_display_config *")
        c.dialect = _DIALECT[cfg.dialect]
        c.columns = cfg.columns
        c.rows = cfg.rows
        c.codepage_index = t.codepage_index
        c.codepages = t.codepages
        c.n_codepages = len(t.profile.codepages)
        c.charset_index = t.charset_index
        c.charsets = t.charsets
        c.n_charsets = len(t.profile.charsets)
        c.default_codepage = t.profile.default_codepage
        c.default_charset = t.profile.default_charset
        super().__init__(lib.tw_display_new(c), lib.tw_display_free, lib.tw_display_feed, lib.tw_display_close,
                         "display decoder")

    def tick(self, now_ns: int) -> bytes:
        if not _INT64[0] <= now_ns <= _INT64[1]:
            raise OverflowError("tick(now_ns): now_ns must fit in a signed 64-bit integer")
        return self._take(lib.tw_display_tick(self._dec, now_ns, self._out))

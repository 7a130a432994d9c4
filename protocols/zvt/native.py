"""The C ZVT decoder (link layer ``native/zvt_link.c`` + APDU layer ``native/zvt_apdu.c``) behind the same interface as the reference decoder.
Its state is allocated once in C and never grows; the plumbing is ``protocols.native_decoder``."""

from __future__ import annotations

from protocols.native_decoder import NativeDecoder, ffi, lib  # noqa: F401 - ffi re-exported for tests

_FRAMINGS = {"serial": 0, "tcp": 1}


class NativeZvtLinkDecoder(NativeDecoder):
    __slots__ = ()

    def __init__(self, framing: str, strict: bool = False):
        if framing not in _FRAMINGS:
            raise ValueError(f"ZVT framing must be serial or tcp, not {framing!r}")
        super().__init__(lib.tw_zvt_link_new(_FRAMINGS[framing], 1 if strict else 0), lib.tw_zvt_link_free,
                         lib.tw_zvt_link_feed,
                         lib.tw_zvt_link_close, "ZVT link decoder")

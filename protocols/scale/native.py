"""The C scale decoder (``native/scale.c``) behind the same interface as the reference decoder."""

from __future__ import annotations

from protocols.native_decoder import NativeDecoder, ffi, lib  # noqa: F401 - ffi re-exported for tests
from protocols.scale import tables as T

_PROTOCOL = {"scale-nci": 0, "scale-toledo": 1, "scale-cas": 2, "magellan": 3}
_UNIT = {"lb": 0, "kg": 1}


class NativeScaleDecoder(NativeDecoder):
    __slots__ = ()

    def __init__(self, cfg: T.Config):
        c = ffi.new("tw_scale_config *")
        c.protocol = _PROTOCOL[cfg.protocol]
        c.from_device = int(cfg.from_device)
        c.unit = _UNIT[cfg.unit]
        super().__init__(lib.tw_scale_new(c), lib.tw_scale_free, lib.tw_scale_feed, lib.tw_scale_close,
                         "scale decoder")

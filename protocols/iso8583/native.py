"""The C ISO 8583 and lenframe decoders (``native/iso8583.c``, ``native/lenframe.c``) behind the same interface
as the reference decoders. The spec is compiled here into the flat table C decodes with (C checks it again)."""

from __future__ import annotations

from protocols.iso8583 import tables as T
from protocols.iso8583.spec import F_DEFINED, F_DIGITS, F_PAD_RIGHT, F_TLV, Spec
from protocols.native_decoder import NativeDecoder, ffi, lib  # noqa: F401 - ffi re-exported for tests

_TABLES: dict = {}


def compile_spec(spec: Spec):
    """The spec as a ``tw_iso_field[129]`` (cached per spec)."""
    table = _TABLES.get(spec)
    if table is None:
        table = ffi.new("tw_iso_field[129]")
        for n, f in enumerate(spec.fields):
            if f is None:
                continue
            e = table[n]
            e.max = f.max
            e.kind = f.kind
            e.prefix = f.prefix
            e.prefix_width = f.prefix_width
            e.data = f.data
            e.flags = F_DEFINED | (F_DIGITS if f.digits else 0) | (F_PAD_RIGHT if f.pad_right else 0) | \
                (F_TLV if f.tlv else 0)
        _TABLES[spec] = table
    return table


def _compile_bins():
    bins = ffi.new("tw_iso_bin[]", len(T.BINS))
    for i, (brand, digits, lo, hi) in enumerate(T.BINS):
        bins[i].lo = lo
        bins[i].hi = hi
        bins[i].digits = digits
        bins[i].brand = brand.encode("ascii")
    return bins


_BINS = _compile_bins()


def make_config(spec: Spec, framing: str, header: int, strict: bool):
    cfg = ffi.new("tw_iso_config *")
    table = compile_spec(spec)
    cfg.mti = spec.mti
    cfg.bitmap_hex = int(spec.bitmap_hex)
    cfg.fields = table
    cfg.framing = T.FRAMINGS[framing][0]
    cfg.header = header
    cfg.strict = int(strict)
    cfg.bins = _BINS
    cfg.n_bins = len(T.BINS)
    return cfg, table


class NativeIso8583Decoder(NativeDecoder):
    __slots__ = ()

    def __init__(self, spec: Spec, framing: str, header: int, strict: bool):
        cfg, _table = make_config(spec, framing, header, strict)
        if lib.tw_iso8583_check_config(cfg) != 0:
            raise ValueError(f"the C core refused ISO 8583 spec {spec.name!r}")
        super().__init__(lib.tw_iso8583_new(cfg), lib.tw_iso8583_free, lib.tw_iso8583_feed, lib.tw_iso8583_close,
                         "ISO 8583 decoder")


class NativeLenframeDecoder(NativeDecoder):
    __slots__ = ()

    def __init__(self, framing: str, header: int):
        super().__init__(lib.tw_lenframe_new(T.FRAMINGS[framing][0], header), lib.tw_lenframe_free,
                         lib.tw_lenframe_feed, lib.tw_lenframe_close, "lenframe decoder")

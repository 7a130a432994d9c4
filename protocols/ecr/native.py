"""The C ECR link decoder (``native/ecr.c``) behind the same interface as the reference decoder. The configuration
(settings and layout tables) is flattened into ``tw_ecr_config`` here; C keeps pointers to its strings and tables,
so they live in a module-level cache (one per distinct configuration) for the life of the process."""

from __future__ import annotations

from protocols.ecr import tables as T
from protocols.native_decoder import NativeDecoder, ffi, lib  # noqa: F401 - ffi re-exported for tests

_CHECKSUM = {"none": 0, "xor": 1, "sum": 2, "crc16-kermit": 3, "crc16-xmodem": 4}
_MATCH = {None: 0, "code": 1, "length": 2}
_ITEM = {"const": 0, "str": 1, "int": 2, "currency": 3, "approved": 4, "pan": 5, "withheld": 6}
NONE = -1

_built: dict = {}  # cache key -> (config cdata, keep-alive list)


def _bytes(keep: list, text: str | bytes):
    raw = text.encode("latin-1") if isinstance(text, str) else text
    buf = ffi.new("char[]", raw or b"\0")
    keep.append(buf)
    return buf, len(raw)


def _opt(v):
    return NONE if v is None else v


def build_config(cfg: T.Config):
    """The tw_ecr_config for cfg (cached: the C decoder keeps pointers into it)."""
    key = (cfg.dialect, cfg.stx, cfg.etx, cfg.checksum, cfg.byte_order, cfg.include_stx, cfg.include_etx, cfg.seed,
           cfg.fs, cfg.us, cfg.ack, cfg.nak, cfg.enq, cfg.eot, cfg.max_frame, cfg.strict, cfg.match,
           id(cfg.messages))
    hit = _built.get(key)
    if hit is not None:
        return hit[0]
    keep: list = [cfg.messages]
    c = ffi.new("tw_ecr_config *")
    keep.append(c)
    c.stx, c.etx = cfg.stx, cfg.etx
    c.checksum = _CHECKSUM[cfg.checksum]
    c.crc_big_endian = cfg.byte_order == "big"
    c.include_stx, c.include_etx = cfg.include_stx, cfg.include_etx
    c.seed = cfg.seed
    c.fs, c.us = _opt(cfg.fs), _opt(cfg.us)
    c.ack, c.nak, c.enq, c.eot = _opt(cfg.ack), _opt(cfg.nak), _opt(cfg.enq), _opt(cfg.eot)
    c.max_frame = cfg.max_frame
    c.strict = cfg.strict
    c.dialect, c.dialect_len = _bytes(keep, cfg.dialect)
    c.match = _MATCH[cfg.match]
    specs = cfg.messages
    msgs = ffi.new("tw_ecr_message[]", max(len(specs), 1))
    keep.append(msgs)
    for k, spec in enumerate(specs):
        m = msgs[k]
        if cfg.match == "code":
            m.code, m.code_len = _bytes(keep, spec["code"])
            m.code_field = spec["code_field"]
        else:
            m.length = spec["length"]
        if spec["where"] is not None:
            m.where_at = spec["where"][0]
            m.where, m.where_len = _bytes(keep, spec["where"][1])
        else:
            m.where_at = -1
        m.event, m.event_len = _bytes(keep, spec["event"])
        items = ffi.new("tw_ecr_item[]", max(len(spec["items"]), 1))
        keep.append(items)
        for i, item in enumerate(spec["items"]):
            name, source, kind = item[0], item[1], item[2]
            it = items[i]
            it.key, it.key_len = _bytes(keep, name)
            it.type = _ITEM[kind]
            it.sub = -1
            if source is not None:
                if source[0] == "field":
                    it.field, it.sub = source[1], source[2]
                else:
                    it.start, it.end = source[1], source[2]
            if kind == "const":
                it.value, it.value_len = _bytes(keep, item[3])
            elif kind == "approved":
                it.value, it.value_len = _bytes(keep, b"".join(v.encode("latin-1") + b"\0" for v in item[3]))
        m.items, m.n_items = items, len(spec["items"])
    c.messages, c.n_messages = msgs, len(specs)
    if lib.tw_ecr_check_config(c) != 0:  # the Python checks come first; this is the C side's own check
        raise ValueError("the ecr configuration was rejected by the C decoder (bad_config)")
    _built[key] = (c, keep)
    return c


class NativeEcrDecoder(NativeDecoder):
    __slots__ = ()

    def __init__(self, cfg: T.Config):
        c = build_config(cfg)
        super().__init__(lib.tw_ecr_new(c), lib.tw_ecr_free, lib.tw_ecr_feed, lib.tw_ecr_close, "ECR link decoder")

"""Pure-Python generic STX/ETX ECR link decoder: the readable twin of ``native/ecr.c``. Contract:
``docs/protocols/ecr.md``. Payloads and fields leave only scrubbed (``protocols.card``); error ``raw`` holds at
most the STX byte, never a payload byte."""

from __future__ import annotations

import msgpack

from protocols.card import mask_pan, scrub, scrub_text
from protocols.ecr import tables as T

_pack = msgpack.Packer(use_bin_type=True).pack


def _error(code: str, offset: int, raw: bytes) -> dict:
    return {"type": "protocol.error",
            "data": {"code": code, "reason": T.ERRORS[code], "offset": offset, "raw": bytes(raw[:T.MAX_ERROR_RAW])}}


def _text(raw: bytes) -> str:
    return scrub_text(raw.decode("latin-1"))


def split_fields(cfg: T.Config, payload: bytes) -> list:
    fields: list = []
    for part in payload.split(bytes([cfg.fs])):
        if cfg.us is not None and cfg.us in part:
            fields.append([_text(sub) for sub in part.split(bytes([cfg.us]))])
        else:
            fields.append(_text(part))
    return fields


def _field_spans(cfg: T.Config, payload: bytes) -> list[tuple[int, int]]:
    """(start, end) of every field."""
    spans, start = [], 0
    while True:
        k = payload.find(cfg.fs, start)
        if k < 0:
            spans.append((start, len(payload)))
            return spans
        spans.append((start, k))
        start = k + 1


def _source_span(cfg: T.Config, payload: bytes, spans, source) -> tuple[int, int] | None:
    """The payload span [a, b) an item reads, or None when the message does not have it."""
    kind, a, b = source
    if kind == "slice":
        return a, b
    if a >= len(spans):
        return None
    start, end = spans[a]
    if b < 0:
        return start, end
    # sub-field b of the field: split on us (a field without us is its own sub-field 0)
    for _ in range(b):
        k = payload.find(cfg.us, start, end) if cfg.us is not None else -1
        if k < 0:
            return None
        start = k + 1
    k = payload.find(cfg.us, start, end) if cfg.us is not None else -1
    return start, (end if k < 0 else k)


def find_layout(cfg: T.Config, payload: bytes):
    """The first layout the payload matches, with the field spans (code layouts), or (None, None)."""
    if cfg.match == "code":
        spans = _field_spans(cfg, payload)
        text = [payload[a:b] for a, b in spans]
        for spec in cfg.messages:
            cf = spec["code_field"]
            if cf >= len(text) or text[cf] != spec["code"].encode("latin-1"):
                continue
            where = spec["where"]
            if where is not None and (where[0] >= len(text) or text[where[0]] != where[1].encode("latin-1")):
                continue
            return spec, spans
    elif cfg.match == "length":
        for spec in cfg.messages:
            if spec["length"] != len(payload):
                continue
            where = spec["where"]
            if where is not None and payload[where[0]:where[0] + len(where[1])] != where[1].encode("latin-1"):
                continue
            return spec, None
    return None, None


def semantic(cfg: T.Config, payload: bytes) -> tuple[dict | None, bool, list, list]:
    """For a payload under cfg's layout table: the semantic event (None when no layout matches), whether a field
    failed its layout (bad_field), the withheld keys present and their payload spans."""
    spec, spans = find_layout(cfg, payload)
    if spec is None:
        return None, False, [], []
    data: dict = {}
    bad = False
    withheld, hidden = [], []
    for item in spec["items"]:
        key, source, kind = item[0], item[1], item[2]
        if kind == "const":
            data[key] = item[3]
            continue
        span = _source_span(cfg, payload, spans, source)
        if span is None:
            continue
        a, b = span
        while a < b and payload[a] == 0x20:
            a += 1
        while b > a and payload[b - 1] == 0x20:
            b -= 1
        raw = payload[a:b]
        if not raw:
            continue
        if kind == "str":
            data[key] = _text(raw)
        elif kind == "int":
            if len(raw) <= T.MAX_INT_DIGITS and all(0x30 <= c <= 0x39 for c in raw):
                data[key] = int(raw)
            else:
                bad = True
        elif kind == "currency":
            if len(raw) == 3 and all(0x30 <= c <= 0x39 for c in raw):
                data[key] = raw.decode("ascii")
            else:
                bad = True
        elif kind == "approved":
            data[key] = raw.decode("latin-1") in item[3]
        elif kind == "pan":
            data[key] = mask_pan(raw.decode("latin-1"))
        else:  # withheld
            withheld.append(key)
            hidden.append((a, b))
    return {"type": spec["event"], "data": data}, bad, withheld, hidden


class ReferenceEcrDecoder:
    def __init__(self, cfg: T.Config):
        self.cfg = cfg
        self._offset = 0
        self._out: list[dict] = []
        self._links = {}
        for name in ("ack", "nak", "enq", "eot"):
            value = getattr(cfg, name)
            if value is not None:
                self._links[value] = {"type": f"link.{name}", "data": {}}
        self._state = "ground"       # ground | frame | check (the checksum bytes after ETX)
        self._garbage = False        # inside a run of bytes skipped silently (its first byte was reported)
        self._frame_off = 0
        self._payload = bytearray()
        self._check = bytearray()

    # ------------------------------------------------------------------ public
    def feed(self, data) -> bytes:
        data = bytes(data)
        base = self._offset
        self._offset += len(data)
        for k, b in enumerate(data):
            self._byte(b, base + k)
        return self._drain()

    def close(self) -> bytes:
        if self._state != "ground":
            self._out.append(_error("truncated", self._frame_off, bytes([self.cfg.stx])))
            self._state = "ground"
        return self._drain()

    def _drain(self) -> bytes:
        out = b"".join(_pack(ev) for ev in self._out)
        self._out.clear()
        return out

    # ------------------------------------------------------------------ the link (section 3)
    def _start(self, off: int) -> None:
        self._state = "frame"
        self._garbage = False
        self._frame_off = off
        self._payload = bytearray()

    def _byte(self, b: int, off: int) -> None:
        cfg = self.cfg
        state = self._state
        if state == "ground":
            if b == cfg.stx:
                self._start(off)
            elif b in self._links:
                self._garbage = False
                self._out.append(self._links[b])
            elif not self._garbage:
                self._garbage = True
                self._out.append(_error("unexpected_byte", off, b""))
        elif state == "frame":
            if b == cfg.stx:
                self._out.append(_error("frame_restarted", self._frame_off, bytes([cfg.stx])))
                self._start(off)
            elif b == cfg.etx:
                self._check = bytearray()
                if cfg.width == 0:
                    self._done()
                else:
                    self._state = "check"
            elif len(self._payload) == cfg.max_frame:
                self._out.append(_error("frame_over_limit", self._frame_off, bytes([cfg.stx])))
                self._state = "ground"
                self._garbage = True
            else:
                self._payload.append(b)
        else:  # check
            self._check.append(b)
            if len(self._check) == cfg.width:
                self._done()

    def _done(self) -> None:
        cfg = self.cfg
        self._state = "ground"
        payload = bytes(self._payload)
        covered = (bytes([cfg.stx]) if cfg.include_stx else b"") + payload + (bytes([cfg.etx]) if cfg.include_etx
                                                                               else b"")
        if cfg.width:
            expected = T.checksum(cfg.checksum, covered, cfg.seed)
            got = int.from_bytes(self._check, cfg.byte_order)
            if got != expected:
                self._out.append({"type": "link.checksum_error", "data": {"expected": expected, "got": got}})
                return
        event, bad, withheld, hidden = semantic(cfg, payload)
        if bad:
            self._out.append(_error("bad_field", self._frame_off, bytes([cfg.stx])))
            if cfg.strict:
                return
        if hidden:
            shown = bytearray(payload)
            for a, b in hidden:
                shown[a:b] = b"*" * (b - a)
            payload = bytes(shown)
        data = {"dialect": cfg.dialect, "payload": scrub(payload)}
        if cfg.fs is not None:
            data["fields"] = split_fields(cfg, payload)
        if withheld:
            data["withheld"] = withheld
        self._out.append({"type": "ecr.frame", "data": data})
        if event is not None:
            self._out.append(event)

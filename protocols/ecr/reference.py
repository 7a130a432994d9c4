"""Pure-Python generic STX/ETX ECR link decoder: the readable twin of ``native/ecr.c``. Contract:
``docs/protocols/ecr.md``. Payloads and fields leave only scrubbed (``protocols.card``); error ``raw`` holds at
most the STX byte, never a payload byte."""

from __future__ import annotations

import msgpack

from protocols.card import scrub, scrub_text
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


def semantic(cfg: T.Config, payload: bytes) -> tuple[dict | None, bool]:
    """The semantic event of a payload under cfg's layout table (None when the message is not in it), and whether
    a field failed its layout (bad_field)."""
    if cfg.match == "code":
        parts = payload.split(bytes([cfg.fs]))
        spec = cfg.messages.get(parts[0].decode("latin-1"))
    elif cfg.match == "length":
        parts = None
        spec = cfg.messages.get(len(payload))
        if spec is not None and spec["where"] is not None and payload[spec["where"][0]] != spec["where"][1]:
            spec = None
    else:
        return None, False
    if spec is None:
        return None, False
    data: dict = {}
    bad = False
    for item in spec["items"]:
        key, source, kind = item[0], item[1], item[2]
        if kind == "const":
            data[key] = item[3]
            continue
        if isinstance(source, int):
            if source >= len(parts):
                continue
            raw = parts[source]
        else:
            raw = payload[source[0]:source[1]]
        raw = raw.strip(b" ")
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
        else:  # approved
            data[key] = raw.decode("latin-1") in item[3]
    return {"type": spec["event"], "data": data}, bad


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
        event, bad = semantic(cfg, payload)
        if bad:
            self._out.append(_error("bad_field", self._frame_off, bytes([cfg.stx])))
            if cfg.strict:
                return
        data = {"dialect": cfg.dialect, "payload": scrub(payload)}
        if cfg.fs is not None:
            data["fields"] = split_fields(cfg, payload)
        self._out.append({"type": "ecr.frame", "data": data})
        if event is not None:
            self._out.append(event)

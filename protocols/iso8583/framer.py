"""The length-prefix framer of ``docs/protocols/iso8583.md`` section 1 in pure Python: the twin of
``native/lenframe.c``, used by both reference decoders (``lenframe`` and ``iso8583``)."""

from __future__ import annotations

from protocols.iso8583.tables import FRAMINGS

_HEX = frozenset(b"0123456789ABCDEFabcdef")


def parse_prefix(framing: str, pre: bytes) -> tuple[str | None, int]:
    """(error code or None, length) for a complete prefix."""
    if framing in ("len2", "len4"):
        return None, int.from_bytes(pre, "big")
    if framing == "ascii4":
        if not all(0x30 <= c <= 0x39 for c in pre):
            return "bad_length_prefix", 0
        return None, int(pre)
    if framing == "hex4":
        if not all(c in _HEX for c in pre):
            return "bad_length_prefix", 0
        return None, int(pre, 16)
    if framing == "bcd2":
        if any((c >> 4) > 9 or (c & 15) > 9 for c in pre):
            return "bad_length_prefix", 0
        return None, int(pre.hex())
    # vmlh: 2-byte big-endian length, 2 reserved zero bytes
    if pre[2] or pre[3]:
        return "bad_length_prefix", 0
    return None, int.from_bytes(pre[:2], "big")


class Framer:
    """``feed(data, base)`` returns a list of ``("frame", offset, prefix, body)`` and
    ``("error", code, offset)`` (no raw bytes: a length framing cannot tell its prefix from message data once
    out of step, so its errors quote nothing); ``close()`` the same for the end of the stream. ``body`` holds the link
    header followed by the message."""

    def __init__(self, framing: str, header: int, bound: int):
        self.framing = framing
        self.plen = FRAMINGS[framing][1]
        self.header = header
        self.bound = bound
        self.pre = bytearray()
        self.pre_off = 0
        self.run = False            # inside a run of prefix errors (only its first is reported)
        self.in_frame = False
        self.need = 0
        self.frame_off = 0
        self.prefix = b""
        self.body = bytearray()
        self.overflow = False       # framing none: the stream outgrew the bound

    def feed(self, data: bytes, base: int) -> list:
        out: list = []
        if self.plen == 0:
            if not self.overflow:
                room = self.bound - len(self.body)
                if len(data) > room:
                    self.overflow = True
                    self.body = bytearray()
                    out.append(("error", "length_too_large", 0))
                else:
                    self.body += data
            return out
        i, n = 0, len(data)
        while i < n:
            if self.in_frame:
                take = min(self.need, n - i)
                self.body += data[i:i + take]
                i += take
                self.need -= take
                if self.need == 0:
                    self._done(out)
                continue
            if not self.pre:
                self.pre_off = base + i
            self.pre.append(data[i])
            i += 1
            if len(self.pre) == self.plen:
                self._prefix(out)
        return out

    def _prefix(self, out: list) -> None:
        code, length = parse_prefix(self.framing, bytes(self.pre))
        if code is None:
            if length < self.header:
                code = "bad_length_prefix"
            elif length > self.bound:
                code = "length_too_large"
        if code is not None:
            if not self.run:
                self.run = True
                out.append(("error", code, self.pre_off))
            del self.pre[0]          # skip the prefix's first byte, read a prefix again from the next one
            self.pre_off += 1
            return
        self.run = False
        self.in_frame = True
        self.frame_off = self.pre_off
        self.prefix = bytes(self.pre)
        self.pre.clear()
        self.need = length
        self.body = bytearray()
        if length == 0:
            self._done(out)

    def _done(self, out: list) -> None:
        out.append(("frame", self.frame_off, self.prefix, bytes(self.body)))
        self.in_frame = False
        self.body = bytearray()

    def close(self) -> list:
        if self.plen == 0:
            if self.overflow or not self.body:
                return []
            return [("frame", 0, b"", bytes(self.body))]
        if self.in_frame:
            return [("error", "truncated", self.frame_off)]
        if self.pre:
            return [("error", "truncated", self.pre_off)]
        return []

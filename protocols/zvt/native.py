"""The C ZVT link-layer decoder (``native/zvt_link.c``) behind the same interface as the reference decoder.

The input reaches C without a copy (``ffi.from_buffer``, or a ``bytes`` object's own buffer, which cffi passes
as it is); C appends msgpack events to one output buffer per decoder, which is copied out once per call and then
emptied. The decoder's state is allocated once in C; it never grows.
"""

from __future__ import annotations

try:
    from protocols._native import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError("the C core protocols._native is not built; run `make native`") from exc

from protocols.decoder import DecoderClosed

#: An output buffer that grew beyond this (a feed of many megabytes of ACKs, say) is shrunk back after the call.
#: Every event here is small (EVENT_ROOM in zvt_link.c is 128 bytes plus a reason), so a buffer larger than
#: _OUT_KEEP always follows an output of more than _OUT_CHECK bytes; smaller outputs skip the check.
_OUT_KEEP = 1 << 20
_OUT_CHECK = _OUT_KEEP // 2
_FRAMINGS = {"serial": 0, "tcp": 1}

# looked up once: feed() runs once per chunk
_from_buffer = ffi.from_buffer
_buffer = ffi.buffer
_feed = lib.tw_zvt_link_feed

_ERROR_CODES = {ffi.string(lib.tw_error_name(code)).decode(): code for code in range(lib.tw_error_count())}
_NOMEM = _ERROR_CODES["nomem"]
_CLOSED = _ERROR_CODES["closed"]


class NativeZvtLinkDecoder:
    __slots__ = ("_dec", "_out", "_view", "_view_cap")

    def __init__(self, framing: str):
        if framing not in _FRAMINGS:
            raise ValueError(f"ZVT framing must be serial or tcp, not {framing!r}")
        dec = lib.tw_zvt_link_new(_FRAMINGS[framing])
        if dec == ffi.NULL:
            raise MemoryError("could not create the ZVT link decoder")
        self._dec = ffi.gc(dec, lib.tw_zvt_link_free)
        out = ffi.new("tw_out *")
        lib.tw_out_init(out)
        self._out = ffi.gc(out, lib.tw_out_free)
        # A view of the whole output buffer, valid while its capacity is _view_cap: the buffer only moves when it
        # grows (the capacity changes) or in _take() (which drops the view).
        self._view = None
        self._view_cap = -1

    def feed(self, data) -> bytes:
        if not data:
            return b""
        out = self._out
        if type(data) is bytes:
            # cffi hands C the bytes object's own buffer for a uint8_t * argument: no copy, like from_buffer
            rc = _feed(self._dec, data, len(data), out)
        else:
            buf = _from_buffer("uint8_t[]", data)
            rc = _feed(self._dec, buf, len(buf), out)
        size = out.len
        if rc or size > _OUT_CHECK:
            return self._take(rc)
        if not size:
            return b""
        cap = out.cap
        if cap != self._view_cap:
            self._view = _buffer(out.data, cap)
            self._view_cap = cap
        blob = self._view[:size]
        out.len = 0
        return blob

    def close(self) -> bytes:
        return self._take(lib.tw_zvt_link_close(self._dec, self._out))

    def _take(self, rc: int) -> bytes:
        out = self._out
        self._view = None
        self._view_cap = -1
        size = out.len
        blob = ffi.buffer(out.data, size)[:] if size else b""
        if out.cap > _OUT_KEEP:
            lib.tw_out_trim(out, _OUT_KEEP)
        else:
            out.len = 0
            out.oom = 0
        if rc:
            if rc == _NOMEM:
                raise MemoryError("the ZVT link decoder ran out of memory")
            if rc == _CLOSED:
                raise DecoderClosed("the ZVT link decoder was used after close()")
            raise RuntimeError(f"ZVT link decoder failed: {ffi.string(lib.tw_error_name(rc)).decode()}")
        return blob

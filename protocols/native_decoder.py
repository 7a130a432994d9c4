"""Plumbing shared by every C-backed decoder: zero-copy input, one output buffer per decoder copied out once
per call, status codes turned into Python exceptions.

The input reaches C without a copy (``ffi.from_buffer``, or a ``bytes`` object's own buffer, which cffi passes as
it is for a ``uint8_t *`` argument). C appends msgpack events to the decoder's ``tw_out``; ``feed()`` copies them
out and empties it. cffi releases the GIL around each C call, so a decoder belongs to one thread at a time.
"""

from __future__ import annotations

try:
    from protocols._native import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError("the C core protocols._native is not built; run `make native`") from exc

from protocols.decoder import DecoderClosed

#: An output buffer that grew beyond this (a large image with its bits, megabytes of small events) is shrunk
#: back after the call. Decoders reserve at most a few KiB more than they write, so a buffer larger than
#: _OUT_KEEP always follows an output of more than _OUT_CHECK bytes; smaller outputs skip the check.
_OUT_KEEP = 1 << 20
_OUT_CHECK = _OUT_KEEP // 2

# looked up once: feed() runs once per chunk
_from_buffer = ffi.from_buffer
_buffer = ffi.buffer

ERROR_CODES = {ffi.string(lib.tw_error_name(code)).decode(): code for code in range(lib.tw_error_count())}
_NOMEM = ERROR_CODES["nomem"]
_CLOSED = ERROR_CODES["closed"]


class NativeDecoder:
    """Base of the C-backed decoders. A subclass creates its C decoder and passes the handle with the C functions
    that feed, close and free it."""

    __slots__ = ("_dec", "_out", "_view", "_view_cap", "_feed_c", "_close_c", "_what")

    def __init__(self, handle, free, feed, close, what: str):
        if handle == ffi.NULL:
            raise MemoryError(f"could not create the {what}")
        self._dec = ffi.gc(handle, free)
        self._feed_c = feed
        self._close_c = close
        self._what = what
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
            rc = self._feed_c(self._dec, data, len(data), out)
        else:
            buf = _from_buffer("uint8_t[]", data)
            rc = self._feed_c(self._dec, buf, len(buf), out)
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
        return self._take(self._close_c(self._dec, self._out))

    def _take(self, rc: int) -> bytes:
        out = self._out
        self._view = None
        self._view_cap = -1
        size = out.len
        blob = _buffer(out.data, size)[:] if size else b""
        if out.cap > _OUT_KEEP:
            lib.tw_out_trim(out, _OUT_KEEP)
        else:
            out.len = 0
            out.oom = 0
        if rc:
            if rc == _NOMEM:
                raise MemoryError(f"the {self._what} ran out of memory")
            if rc == _CLOSED:
                raise DecoderClosed(f"the {self._what} was used after close()")
            raise RuntimeError(f"{self._what} failed: {ffi.string(lib.tw_error_name(rc)).decode()}")
        return blob

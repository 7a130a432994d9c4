"""The C ESC/POS decoder (``native/escpos.c``) behind the same interface as the reference decoder.

The input reaches C without a copy (``ffi.from_buffer``, or a ``bytes`` object's own buffer, which cffi passes
as it is); C appends msgpack events to one output buffer per decoder, which is copied out once per call and then
emptied. The profile's tables are turned into C arrays once
per profile and kept for the life of the process; decoders point at them, they never copy them.
"""

from __future__ import annotations

try:
    from protocols._native import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError("the C core protocols._native is not built; run `make native`") from exc

from protocols.decoder import DecoderClosed
from protocols.escpos.profiles import Profile

#: An output buffer that grew beyond this (a large image with its bits) is shrunk back after the call. The C side
#: reserves at most ~130 KiB more than it writes (the worst-case room of a line with 1024 spans), so a buffer
#: larger than _OUT_KEEP always follows an output of more than _OUT_KEEP // 2 bytes; smaller outputs skip the check.
_OUT_KEEP = 1 << 20
_OUT_CHECK = _OUT_KEEP // 2
_DIRECTIONS = {"to_device": 0, "from_device": 1}
_INT64 = (-(1 << 63), (1 << 63) - 1)

# looked up once: feed() runs once per chunk
_from_buffer = ffi.from_buffer
_buffer = ffi.buffer
_feed = lib.tw_escpos_feed

_ERROR_CODES = {ffi.string(lib.tw_error_name(code)).decode(): code for code in range(lib.tw_error_count())}
_NOMEM = _ERROR_CODES["nomem"]
_CLOSED = _ERROR_CODES["closed"]


class _ProfileTables:
    """A profile's tables as C arrays, and the cdata that owns each of them."""

    __slots__ = ("profile", "codepage_index", "codepages", "charset_index", "charsets", "kanji_single",
                 "kanji_double")

    def __init__(self, profile: Profile):
        _check_shapes(profile)
        self.profile = profile
        self.codepage_index = ffi.new("int16_t[256]", list(profile.codepage_index))
        self.codepages = ffi.new("uint16_t[]", [cp for table in profile.codepages for cp in table])
        self.charset_index = ffi.new("int16_t[256]", list(profile.charset_index))
        self.charsets = ffi.new("uint16_t[]", [cp for table in profile.charsets for cp in table])
        self.kanji_single = ffi.new("uint16_t[128]", list(profile.kanji_single))
        self.kanji_double = ffi.new("uint16_t[]", list(profile.kanji_double))

    def config(self, direction: int, images: bool):
        cfg = ffi.new("tw_escpos_config *")
        cfg.direction = direction
        cfg.images = 1 if images else 0
        cfg.codepage_index = self.codepage_index
        cfg.codepages = self.codepages
        cfg.n_codepages = len(self.profile.codepages)
        cfg.charset_index = self.charset_index
        cfg.charsets = self.charsets
        cfg.n_charsets = len(self.profile.charsets)
        cfg.default_codepage = self.profile.default_codepage
        cfg.default_charset = self.profile.default_charset
        cfg.kanji_single = self.kanji_single
        cfg.kanji_double = self.kanji_double
        return cfg


def _check_shapes(profile: Profile) -> None:
    """C trusts the table sizes it is handed; a Profile is a plain dataclass, so check them here."""
    shapes = [
        ("codepage_index", len(profile.codepage_index) == 256),
        ("charset_index", len(profile.charset_index) == 256),
        ("codepages", all(len(t) == 128 for t in profile.codepages)),
        ("charsets", all(len(t) == 128 for t in profile.charsets)),
        ("kanji_single", len(profile.kanji_single) == 128),
        ("kanji_double", len(profile.kanji_double) == 128 * 256),
    ]
    bad = [name for name, ok in shapes if not ok]
    if bad:
        raise ValueError(f"printer profile {profile.name!r} has tables of the wrong size: {', '.join(bad)}")


_tables: dict[str, _ProfileTables] = {}
_request_kinds: dict[str, int] = {}


def _tables_of(profile: Profile) -> _ProfileTables:
    tables = _tables.get(profile.name)
    # profiles are cached by load_profile, so identity is the common case; == compares every table entry
    if tables is None or (tables.profile is not profile and tables.profile != profile):
        tables = _tables[profile.name] = _ProfileTables(profile)
    return tables


def _request_kind(kind: str) -> int:
    code = _request_kinds.get(kind)
    if code is None:
        code = _request_kinds[kind] = lib.tw_escpos_request_kind(kind.encode("utf-8", "replace"))
    return code


class NativeEscposDecoder:
    __slots__ = ("_dec", "_out", "_tables", "_view", "_view_cap")

    def __init__(self, direction: str, profile: Profile, images: bool):
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(_DIRECTIONS)}, not {direction!r}")
        self._tables = _tables_of(profile)  # the decoder points into these arrays: keep them alive with it
        cfg = self._tables.config(_DIRECTIONS[direction], images)
        if lib.tw_escpos_check_config(cfg) != 0:
            raise ValueError(f"printer profile {profile.name!r} is inconsistent (a table index or default "
                             "names a table that does not exist)")
        dec = lib.tw_escpos_new(cfg)
        if dec == ffi.NULL:
            raise MemoryError("could not create the ESC/POS decoder")
        self._dec = ffi.gc(dec, lib.tw_escpos_free)
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
        return self._take(lib.tw_escpos_close(self._dec, self._out))

    def note_request(self, kind: str, n: int) -> None:
        n = min(max(int(n), _INT64[0]), _INT64[1])
        lib.tw_escpos_note_request(self._dec, _request_kind(kind), n)

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
                raise MemoryError("the ESC/POS decoder ran out of memory")
            if rc == _CLOSED:
                raise DecoderClosed("the ESC/POS decoder was used after close()")
            raise RuntimeError(f"ESC/POS decoder failed: {ffi.string(lib.tw_error_name(rc)).decode()}")
        return blob

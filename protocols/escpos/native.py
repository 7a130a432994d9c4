"""The C ESC/POS decoder (``native/escpos.c``) behind the same interface as the reference decoder.

The profile's tables are turned into C arrays once per profile and kept for the life of the process; decoders
point at them, they never copy them. The feed/close plumbing is ``protocols.native_decoder``.
"""

from __future__ import annotations

from protocols.escpos.profiles import Profile
from protocols.native_decoder import NativeDecoder, ffi, lib

_DIRECTIONS = {"to_device": 0, "from_device": 1}
_INT64 = (-(1 << 63), (1 << 63) - 1)


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

    def config(self, direction: int, images: bool, drawer_low: bool = False):
        cfg = ffi.new("tw_escpos_config *")
        cfg.direction = direction
        cfg.drawer_open_level = 1 if drawer_low else 0
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


class NativeEscposDecoder(NativeDecoder):
    __slots__ = ("_tables",)

    def __init__(self, direction: str, profile: Profile, images: bool, drawer_low: bool = False):
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(_DIRECTIONS)}, not {direction!r}")
        self._tables = _tables_of(profile)  # the decoder points into these arrays: keep them alive with it
        cfg = self._tables.config(_DIRECTIONS[direction], images, drawer_low)
        if lib.tw_escpos_check_config(cfg) != 0:
            raise ValueError(f"printer profile {profile.name!r} is inconsistent (a table index or default "
                             "names a table that does not exist)")
        super().__init__(lib.tw_escpos_new(cfg), lib.tw_escpos_free, lib.tw_escpos_feed, lib.tw_escpos_close,
                         "ESC/POS decoder")

    def note_request(self, kind: str, n: int) -> None:
        n = min(max(int(n), _INT64[0]), _INT64[1])
        lib.tw_escpos_note_request(self._dec, _request_kind(kind), n)

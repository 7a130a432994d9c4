"""Magnetic stripe reader tables as data (``docs/protocols/msr.md``): options and their validation, the track
formats (start sentinel, character set, LRC width, length bound) and error reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: characters of one track from its start sentinel to its end sentinel (ISO/IEC 7811: 79 / 40 / 107 characters
#: a track holds, the LRC included): TW_MAX_MSR_TRACK1..3 in native/tw_bounds.h
MAX_TRACK = {1: 78, 2: 39, 3: 106}
#: the code of a track character is its byte minus this base (track 1: 6-bit 0x20..0x5F, tracks 2, 3: 4-bit
#: 0x30..0x3F); the LRC is the exclusive-or of the codes from start sentinel to end sentinel (ISO/IEC 7811-2)
BASE = {1: 0x20, 2: 0x30, 3: 0x30}
MASK = {1: 0x3F, 2: 0x0F, 3: 0x0F}
START = {1: 0x25, 2: 0x3B, 3: 0x3B}   # % and ;
END = 0x3F                            # ?

SEPARATORS = {"cr": b"\r", "crlf": b"\r\n", "lf": b"\n", "none": b""}
GAP_MS_MIN, GAP_MS_MAX = 1, 60000
OPTIONS = ("separator", "lrc", "tracks", "gap_ms")

ERRORS = {
    "unexpected_byte": "A byte outside any frame that is not a link control byte.",
    "msr_no_end_sentinel": "A magnetic stripe track without its end sentinel; it was dropped.",
    "msr_track_too_long": "A magnetic stripe track longer than its track can hold; it was dropped.",
    "msr_bad_track": "A magnetic stripe track with characters outside its character set, or a read error.",
    "msr_bad_lrc": "A magnetic stripe track whose LRC character does not match its data.",
    "msr_pan_mismatch": "The tracks of one card swipe hold different account numbers.",
}


@dataclass(frozen=True)
class Config:
    separator: str = "cr"
    lrc: bool = False
    tracks: tuple[int, ...] = (1, 2, 3)
    gap_ms: int = 50


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("on", "true", "yes", "1"):
            return True
        if v in ("off", "false", "no", "0"):
            return False
    raise ValueError(f"msr option {name}={value!r}: use on (true) or off (false)")


def resolve(options: dict[str, Any]) -> Config:
    """The configuration from ``Decoder("msr", **options)``; raises ValueError naming the option."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown msr option(s) {', '.join(unknown)}; the options are: {', '.join(OPTIONS)}")
    sep = options.get("separator", "cr")
    if not isinstance(sep, str) or sep.strip().lower() not in SEPARATORS:
        raise ValueError(f"msr option separator={sep!r} is unknown; use one of: {', '.join(SEPARATORS)}")
    lrc = _flag("lrc", options.get("lrc", False))
    tracks = options.get("tracks", "123")
    if isinstance(tracks, bool) or not isinstance(tracks, (int, str)):
        raise ValueError(f"msr option tracks={tracks!r}: give the tracks the reader sends, e.g. 12 or 123")
    text = str(tracks).strip().replace(",", "")
    if not text or any(c not in "123" for c in text) or len(set(text)) != len(text):
        raise ValueError(f"msr option tracks={tracks!r}: give the tracks the reader sends, e.g. 12 or 123")
    gap = options.get("gap_ms", 50)
    if isinstance(gap, bool) or not isinstance(gap, (int, str)):
        raise ValueError(f"msr option gap_ms={gap!r}: give an integer number of milliseconds")
    if isinstance(gap, str):
        try:
            gap = int(gap.strip(), 10)
        except ValueError:
            raise ValueError(f"msr option gap_ms={gap!r}: give an integer number of milliseconds") from None
    if not GAP_MS_MIN <= gap <= GAP_MS_MAX:
        raise ValueError(f"msr option gap_ms={gap!r} is out of range {GAP_MS_MIN}..{GAP_MS_MAX}")
    return Config(separator=sep.strip().lower(), lrc=lrc, tracks=tuple(sorted(int(c) for c in text)), gap_ms=gap)

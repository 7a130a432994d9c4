"""Customer pole displays: the command tables (CD5220 and Epson DM-D / ESC/POS display mode), options, bounds and
error codes as data. ``native/display.c`` holds the same command table (``tw_display_command_table``); a test
compares the two. Contract: ``docs/protocols/display.md``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# bounds (native/tw_bounds.h)
MAX_COLUMNS = 40  # TW_MAX_DISPLAY_COLUMNS
MAX_ROWS = 4  # TW_MAX_DISPLAY_ROWS
MAX_MARQUEE = 40  # TW_MAX_DISPLAY_MARQUEE: ESC Q D holds at most 40 characters

DIALECTS = ("epson", "cd5220")
EPSON = 1
CD5220 = 2
BOTH = EPSON | CD5220

ERRORS = {
    "truncated": "The stream ended inside a command.",
    "bad_parameter": "A known command with a parameter outside its documented values.",
    "unknown_code_table": "ESC t selected a code table this printer profile does not define.",
    "unknown_charset": "ESC R selected an international character set that is not defined.",
    "unknown_display_command": "A display control byte or command that the display's command table does not define.",
    "display_string_too_long": "A display string command (ESC Q) longer than its line; it was cut at the limit.",
    "display_string_interrupted": "A display string command (ESC Q) cut short by a control byte before its CR.",
}

# actions (the same numbers in native/display.c)
(A_BS, A_HT, A_LF, A_UP, A_HOME, A_LEFTMOST, A_RIGHTMOST, A_BOTTOM, A_CLR, A_CAN, A_POS, A_MODE, A_CURSOR,
 A_BRIGHTNESS, A_BLINK, A_REVERSE, A_CODEPAGE, A_CHARSET, A_INIT, A_SELECT, A_DEFINE, A_USER_CHARS,
 A_CANCEL_USER, A_STRING, A_IGNORE) = range(25)

ACTION_NAMES = ("BS", "HT", "LF", "UP", "HOME", "LEFTMOST", "RIGHTMOST", "BOTTOM", "CLR", "CAN", "POS", "MODE",
                "CURSOR", "BRIGHTNESS", "BLINK", "REVERSE", "CODEPAGE", "CHARSET", "INIT", "SELECT", "DEFINE",
                "USER_CHARS", "CANCEL_USER", "STRING", "IGNORE")

#: (dialects, command bytes, parameter bytes, action, argument). The argument: the mode for A_MODE (1 overwrite,
#: 2 vertical scroll, 3 horizontal scroll), the line for A_STRING (0 upper, 1 lower, 2 upper-line marquee).
#: Sources: POSX XP8200 manual 4.1.2 (Epson mode), Posiflex PD-300 manual, Epson DM-D110 specification 5.4,
#: P07303 manual 7.2 (CD5220 standard mode), lcdproc serialPOS_cd5220.c.
COMMANDS: tuple[tuple[int, bytes, int, int, int], ...] = (
    (BOTH, b"\x08", 0, A_BS, 0),
    (BOTH, b"\x09", 0, A_HT, 0),
    (BOTH, b"\x0a", 0, A_LF, 0),
    (BOTH, b"\x0b", 0, A_HOME, 0),
    (BOTH, b"\x0c", 0, A_CLR, 0),
    (BOTH, b"\x0d", 0, A_LEFTMOST, 0),
    (BOTH, b"\x18", 0, A_CAN, 0),
    (BOTH, b"\x1b\x40", 0, A_INIT, 0),
    (BOTH, b"\x1b\x74", 1, A_CODEPAGE, 0),
    (BOTH, b"\x1b\x52", 1, A_CHARSET, 0),
    (BOTH, b"\x1b\x26", 3, A_DEFINE, 0),
    (BOTH, b"\x1b\x25", 1, A_USER_CHARS, 0),
    (BOTH, b"\x1b\x3f", 1, A_CANCEL_USER, 0),
    (BOTH, b"\x1f\x01", 0, A_MODE, 1),
    (BOTH, b"\x1f\x02", 0, A_MODE, 2),
    (BOTH, b"\x1f\x03", 0, A_MODE, 3),
    (BOTH, b"\x1f\x0a", 0, A_UP, 0),
    (BOTH, b"\x1f\x0d", 0, A_RIGHTMOST, 0),
    (BOTH, b"\x1f\x42", 0, A_BOTTOM, 0),
    (BOTH, b"\x1f\x45", 1, A_BLINK, 0),
    (EPSON, b"\x1b\x3d", 1, A_SELECT, 0),
    (EPSON, b"\x1f\x24", 2, A_POS, 0),
    (EPSON, b"\x1f\x43", 1, A_CURSOR, 0),
    (EPSON, b"\x1f\x58", 1, A_BRIGHTNESS, 0),
    (EPSON, b"\x1f\x72", 1, A_REVERSE, 0),
    (EPSON, b"\x1f\x2e", 1, A_IGNORE, 0),  # US . n  period display
    (EPSON, b"\x1f\x2c", 1, A_IGNORE, 0),  # US , n  comma display
    (EPSON, b"\x1f\x3b", 1, A_IGNORE, 0),  # US ; n  semicolon display
    (EPSON, b"\x1f\x23", 2, A_IGNORE, 0),  # US # n m  annunciator
    (CD5220, b"\x1b\x11", 0, A_MODE, 1),
    (CD5220, b"\x1b\x12", 0, A_MODE, 2),
    (CD5220, b"\x1b\x13", 0, A_MODE, 3),
    (CD5220, b"\x1b\x51\x41", 0, A_STRING, 0),
    (CD5220, b"\x1b\x51\x42", 0, A_STRING, 1),
    (CD5220, b"\x1b\x51\x44", 0, A_STRING, 2),
    (CD5220, b"\x1b\x5b\x44", 0, A_BS, 0),
    (CD5220, b"\x1b\x5b\x43", 0, A_HT, 0),
    (CD5220, b"\x1b\x5b\x41", 0, A_UP, 0),
    (CD5220, b"\x1b\x5b\x42", 0, A_LF, 0),
    (CD5220, b"\x1b\x5b\x48", 0, A_HOME, 0),
    (CD5220, b"\x1b\x5b\x4c", 0, A_LEFTMOST, 0),
    (CD5220, b"\x1b\x5b\x52", 0, A_RIGHTMOST, 0),
    (CD5220, b"\x1b\x5b\x4b", 0, A_BOTTOM, 0),
    (CD5220, b"\x1b\x6c", 2, A_POS, 0),
    (CD5220, b"\x1b\x5f", 1, A_CURSOR, 0),
    (CD5220, b"\x1b\x2a", 1, A_BRIGHTNESS, 0),
    (CD5220, b"\x1b\x23", 1, A_IGNORE, 0),  # ESC # n  command type select
    (CD5220, b"\x1f\x40", 0, A_IGNORE, 0),  # US @  self test
)

#: display.control "setting" names by action
SETTINGS = {A_MODE: "mode", A_CURSOR: "cursor", A_BRIGHTNESS: "brightness", A_BLINK: "blink",
            A_REVERSE: "reverse", A_USER_CHARS: "user_chars"}


@dataclass(frozen=True)
class Config:
    dialect: str = "epson"
    columns: int = 20
    rows: int = 2
    profile: str = "generic"


OPTIONS = ("columns", "rows", "profile")


def _int_option(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"display option {name}={value!r}: give an integer {lo}..{hi}")
    if isinstance(value, str):
        try:
            value = int(value.strip(), 10)
        except ValueError:
            raise ValueError(f"display option {name}={value!r}: give an integer {lo}..{hi}") from None
    if not lo <= value <= hi:
        raise ValueError(f"display option {name}={value!r} is out of range {lo}..{hi}")
    return value


def resolve(options: dict[str, Any], dialect: str) -> Config:
    """The configuration from ``Decoder("display-<dialect>", **options)``; raises ValueError naming the option."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown display-{dialect} option(s) {', '.join(unknown)}; the options are: "
                         f"{', '.join(OPTIONS)}")
    columns = _int_option("columns", options.get("columns", 20), 1, MAX_COLUMNS)
    rows = _int_option("rows", options.get("rows", 2), 1, MAX_ROWS)
    profile = options.get("profile", "generic")
    if not isinstance(profile, str):
        raise ValueError(f"display option profile={profile!r}: give a printer profile name")
    from protocols.escpos.profiles import load_profile, profile_names

    profile = profile.strip()
    try:
        load_profile(profile)
    except ValueError:
        raise ValueError(f"display option profile={profile!r} is unknown; known profiles: "
                         f"{', '.join(profile_names())}") from None
    return Config(dialect=dialect, columns=columns, rows=rows, profile=profile)

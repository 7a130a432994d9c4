"""Printer profiles as data: code tables, international sets and the Kanji encoding.

Both backends read the same tables from here, so the C core and the reference decoder cannot disagree
about a character. A profile is built once per process and cached.

Layout handed to either decoder (all plain lists of ints, the C wrapper copies them into arrays once):

* ``codepage_index[n]`` – slot in ``codepages`` that ``ESC t n`` selects, or -1 (not in the profile);
* ``codepages[slot]`` – 128 code points for bytes 0x80..0xFF (0xFFFD where the table has no character);
* ``charset_index[n]`` – slot in ``charsets`` that ``ESC R n`` selects, or -1;
* ``charsets[slot]`` – 128 code points for bytes 0x00..0x7F (the ASCII map with the national variants);
* ``kanji_single`` – 128 entries for bytes 0x80..0xFF in Kanji mode: a code point, or 0 for a lead byte;
* ``kanji_double`` – 128 × 256 entries, ``(lead - 0x80) * 256 + trail`` → code point, 0 = no character.
"""

from __future__ import annotations

import codecs
import json
import os
from dataclasses import dataclass
from functools import lru_cache

_HERE = os.path.dirname(os.path.abspath(__file__))
REPLACEMENT = 0xFFFD
_CHARSET_POSITIONS = (0x23, 0x24, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x60, 0x7B, 0x7C, 0x7D, 0x7E)


@dataclass(frozen=True)
class Profile:
    name: str
    codepage_index: tuple[int, ...]
    codepages: tuple[tuple[int, ...], ...]
    charset_index: tuple[int, ...]
    charsets: tuple[tuple[int, ...], ...]
    default_codepage: int
    default_charset: int
    kanji_single: tuple[int, ...]
    kanji_double: tuple[int, ...]


def _load_json(name: str) -> dict:
    with open(os.path.join(_HERE, name), encoding="utf-8") as fh:
        return json.load(fh)


def profile_names() -> list[str]:
    return sorted(k for k in _load_json("profiles.json") if not k.startswith("_"))


def _high_half(codec: str) -> tuple[int, ...]:
    """128 code points for bytes 0x80..0xFF of a single-byte table."""
    if codec == "katakana":
        # JIS X 0201: A1..DF are the half-width katakana U+FF61..U+FF9F; the rest is undefined.
        return tuple(0xFF61 + (b - 0xA1) if 0xA1 <= b <= 0xDF else REPLACEMENT for b in range(0x80, 0x100))
    decoder = codecs.lookup(codec)
    out = []
    for b in range(0x80, 0x100):
        try:
            text, _ = decoder.decode(bytes([b]), "strict")
        except UnicodeDecodeError:
            out.append(REPLACEMENT)
            continue
        out.append(ord(text) if len(text) == 1 and ord(text) <= 0xFFFF else REPLACEMENT)
    return tuple(out)


def _charset(chars: str) -> tuple[int, ...]:
    table = list(range(0x80))
    for pos, ch in zip(_CHARSET_POSITIONS, chars, strict=True):
        table[pos] = ord(ch)
    return tuple(table)


def _kanji_tables(codec: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    single = [0] * 128
    double = [0] * (128 * 256)
    for b in range(0x80, 0x100):
        try:
            text = bytes([b]).decode(codec)
            single[b - 0x80] = ord(text) if len(text) == 1 else REPLACEMENT
            continue
        except UnicodeDecodeError:
            pass
        is_lead = False
        for t in range(0x40, 0x100):
            try:
                text = bytes([b, t]).decode(codec)
            except UnicodeDecodeError:
                continue
            if len(text) == 1 and ord(text) <= 0xFFFF:
                double[(b - 0x80) * 256 + t] = ord(text)
                is_lead = True
        single[b - 0x80] = 0 if is_lead else REPLACEMENT
    return tuple(single), tuple(double)


@lru_cache(maxsize=None)
def load_profile(name: str) -> Profile:
    profiles = _load_json("profiles.json")
    if name.startswith("_") or name not in profiles:
        raise ValueError(f"unknown printer profile {name!r}; known profiles: {', '.join(profile_names())}")
    spec = profiles[name]
    codepage_index = [-1] * 256
    codepages: list[tuple[int, ...]] = []
    slot_of_codec: dict[str, int] = {}
    for n, codec in sorted(spec["codepages"].items(), key=lambda kv: int(kv[0])):
        if codec not in slot_of_codec:
            slot_of_codec[codec] = len(codepages)
            codepages.append(_high_half(codec))
        codepage_index[int(n)] = slot_of_codec[codec]
    sets = _load_json("charsets.json")["sets"]
    charset_index = [-1] * 256
    charsets: list[tuple[int, ...]] = []
    for n, entry in sorted(sets.items(), key=lambda kv: int(kv[0])):
        charset_index[int(n)] = len(charsets)
        charsets.append(_charset(entry["chars"]))
    single, double = _kanji_tables(spec["kanji"])
    default_codepage = int(spec["default_codepage"])
    default_charset = int(spec["default_charset"])
    if codepage_index[default_codepage] < 0 or charset_index[default_charset] < 0:
        raise ValueError(f"profile {name!r}: its defaults name a table it does not define")
    return Profile(
        name=name,
        codepage_index=tuple(codepage_index),
        codepages=tuple(codepages),
        charset_index=tuple(charset_index),
        charsets=tuple(charsets),
        default_codepage=default_codepage,
        default_charset=default_charset,
        kanji_single=single,
        kanji_double=double,
    )

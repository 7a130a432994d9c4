"""Decoder options as every protocol reads them. Options arrive as Python values (``Decoder("ecr", seed=0x7F)``)
or as strings from the command line (``-o seed=0x7F``, ``-o strict=true``; the CLI turns plain decimal digits
into ints and true/false into bools first), so each reader accepts both and raises one ``ValueError`` that names
the protocol, the option and what it expects."""

from __future__ import annotations

from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def boolean(owner: str, name: str, value: Any) -> bool:
    """``True``/``False``, 1/0, or one of true/false, yes/no, on/off, 1/0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"{owner} option {name}={value!r} is not a boolean; use true/false (or 1/0, yes/no)")


def integer(owner: str, name: str, value: Any) -> int:
    """An int, or a string in decimal (``2``) or 0x-hex (``0x02``); never a bool."""
    if isinstance(value, bool):
        raise ValueError(f"{owner} option {name} must be an integer, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            if text.startswith("0x"):
                return int(text[2:], 16)
            if text.isdigit():
                return int(text, 10)
        except ValueError:
            pass
        raise ValueError(f"{owner} option {name}={value!r} is not a number; write it in decimal (2) or 0x-hex (0x02)")
    raise ValueError(f"{owner} option {name} must be an integer or a string, not {type(value).__name__}")

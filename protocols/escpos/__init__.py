"""ESC/POS receipt printers: the command table and code pages as data, a pure-Python reference decoder and
the wrapper of the C decoder, behind one interface. The contract is ``docs/protocols/escpos.md``."""

from __future__ import annotations

from typing import Any

from protocols.escpos.profiles import load_profile, profile_names

OPTIONS = {"profile": str, "images": bool, "drawer_open_level": str}
#: drawer_open_level: which level of drawer kick connector pin 3 means "open" (escpos.md section 9)
DRAWER_LEVELS = ("high", "low")


def make_backend(backend: str, direction: str, profile: str = "generic", images: bool = False,
                 drawer_open_level: str = "high", **extra: Any):
    if extra:
        raise ValueError(
            f"unknown escpos option(s) {', '.join(sorted(extra))}; known options: {', '.join(OPTIONS)}"
        )
    if not isinstance(profile, str):
        raise TypeError("escpos option 'profile' must be a str")
    if not isinstance(images, bool):
        raise TypeError("escpos option 'images' must be a bool")
    level = drawer_open_level.strip().lower() if isinstance(drawer_open_level, str) else drawer_open_level
    if level not in DRAWER_LEVELS:
        raise ValueError(f"escpos option 'drawer_open_level' must be 'high' or 'low' (the level of drawer kick "
                         f"connector pin 3 that means open), not {drawer_open_level!r}")
    prof = load_profile(profile)
    if backend == "native":
        from protocols.escpos.native import NativeEscposDecoder

        return NativeEscposDecoder(direction, prof, images, level == "low")
    from protocols.escpos.reference import ReferenceEscposDecoder

    return ReferenceEscposDecoder(direction, prof, images, level == "low")


__all__ = ["OPTIONS", "make_backend", "load_profile", "profile_names"]

"""ESC/POS receipt printers: the command table and code pages as data, a pure-Python reference decoder and
the wrapper of the C decoder, behind one interface. The contract is ``docs/protocols/escpos.md``."""

from __future__ import annotations

from typing import Any

from protocols.escpos.profiles import load_profile, profile_names

OPTIONS = {"profile": str, "images": bool}


def make_backend(backend: str, direction: str, profile: str = "generic", images: bool = False, **extra: Any):
    if extra:
        raise ValueError(
            f"unknown escpos option(s) {', '.join(sorted(extra))}; known options: {', '.join(OPTIONS)}"
        )
    if not isinstance(profile, str):
        raise TypeError("escpos option 'profile' must be a str")
    if not isinstance(images, bool):
        raise TypeError("escpos option 'images' must be a bool")
    prof = load_profile(profile)
    if backend == "native":
        from protocols.escpos.native import NativeEscposDecoder

        return NativeEscposDecoder(direction, prof, images)
    from protocols.escpos.reference import ReferenceEscposDecoder

    return ReferenceEscposDecoder(direction, prof, images)


__all__ = ["OPTIONS", "make_backend", "load_profile", "profile_names"]

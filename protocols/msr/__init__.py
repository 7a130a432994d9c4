"""Magnetic stripe card readers (ISO 7811/7813 tracks 1, 2 and 3), keyboard-wedge or raw serial, decoded into
one ``msr.swipe`` per card swipe with the PAN masked. A C decoder and its pure-Python twin. Contract:
``docs/protocols/msr.md``. ``protocols.msr.track`` holds the track rules the scanner decoder shares."""

from __future__ import annotations

from typing import Any


def make_backend(backend: str, direction: str, **options: Any):
    from protocols.msr.tables import resolve

    cfg = resolve(options)
    if backend == "native":
        from protocols.msr.native import NativeMsrDecoder

        return NativeMsrDecoder(cfg)
    from protocols.msr.reference import ReferenceMsrDecoder

    return ReferenceMsrDecoder(cfg)


__all__ = ["make_backend"]

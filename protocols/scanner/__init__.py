"""Barcode scanners: serial labels (prefix, suffix or inter-character gap) and USB HID-POS input reports, decoded
into ``scanner.data`` events with AIM symbology identifiers, EAN/UPC check digits, UPC-E expansion and GS1 element
strings. A C decoder and its pure-Python twin. Contract: ``docs/protocols/scanner.md``."""

from __future__ import annotations

from typing import Any

from protocols.scanner.tables import Config, resolve

__all__ = ["Config", "make_backend", "resolve"]


def make_backend(backend: str, direction: str, hid: bool = False, **options: Any):
    cfg = resolve(options, hid=hid)
    if backend == "native":
        from protocols.scanner.native import NativeScannerDecoder

        return NativeScannerDecoder(cfg)
    from protocols.scanner.reference import ReferenceHidPosDecoder, ReferenceScannerDecoder

    return ReferenceHidPosDecoder(cfg) if hid else ReferenceScannerDecoder(cfg)

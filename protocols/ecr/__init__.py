"""Generic STX … ETX + checksum ECR links (Ingenico Concert, Transbank POS Integrado, Nexi TraditionalPOS, PAX
POSLink and any dialect given by its settings): link framing with ACK/NAK/ENQ/EOT, frames with their fields, and
semantic payment events for the dialects whose message layouts are verified. A C decoder and its pure-Python twin.
Contract: ``docs/protocols/ecr.md``."""

from __future__ import annotations

from typing import Any

from protocols.ecr.tables import Config, resolve

__all__ = ["Config", "make_backend", "resolve"]


def make_backend(backend: str, direction: str, **options: Any):
    cfg = resolve(options)
    if backend == "native":
        from protocols.ecr.native import NativeEcrDecoder

        return NativeEcrDecoder(cfg)
    from protocols.ecr.reference import ReferenceEcrDecoder

    return ReferenceEcrDecoder(cfg)

"""Scales: NCI / Weigh-Tronix SCP-01, Toledo 8213/8217, CAS continuous output and Datalogic Magellan SCI (scanner
and scale on one line), decoded into ``scale.weight``, ``scale.status`` and ``scale.request`` events (Magellan
labels into ``scanner.data`` through the scanner decoder). A C decoder and its pure-Python twin. Contract:
``docs/protocols/scale.md``."""

from __future__ import annotations

from typing import Any

from protocols.scale.tables import Config, resolve

__all__ = ["Config", "make_backend", "resolve"]


def make_backend(backend: str, protocol: str, direction: str, **options: Any):
    cfg = resolve(protocol, direction, options)
    if backend == "native":
        from protocols.scale.native import NativeScaleDecoder

        return NativeScaleDecoder(cfg)
    from protocols.scale.reference import ReferenceScaleDecoder

    return ReferenceScaleDecoder(cfg)

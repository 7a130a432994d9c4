"""Customer pole displays (CD5220 and Epson DM-D / ESC/POS display mode): a model of the visible display fed by
the display's commands, emitting ``display.text`` after each burst. A C decoder and its pure-Python twin.
Contract: ``docs/protocols/display.md``."""

from __future__ import annotations

from typing import Any

from protocols.display.tables import Config, resolve

__all__ = ["Config", "make_backend", "resolve"]


def make_backend(backend: str, direction: str, dialect: str, **options: Any):
    cfg = resolve(options, dialect)
    if backend == "native":
        from protocols.display.native import NativeDisplayDecoder

        return NativeDisplayDecoder(cfg)
    from protocols.display.reference import ReferenceDisplayDecoder

    return ReferenceDisplayDecoder(cfg)

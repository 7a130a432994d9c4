"""ISO 8583 behind a length-prefixed framing (``iso8583``) and the length framer alone (``lenframe``), each a C
decoder with a pure-Python twin. Contract: ``docs/protocols/iso8583.md``; specs as data in ``specs/``."""

from __future__ import annotations

from typing import Any

from protocols.iso8583 import tables as T
from protocols.options import boolean, integer

_ISO_OPTIONS = ("spec", "framing", "header", "strict")
_LENFRAME_OPTIONS = ("framing", "header")


def _header(value: Any) -> int:
    header = integer("iso8583", "header", value)
    if not 0 <= header <= T.MAX_HEADER:
        raise ValueError(f"iso8583 option header={value!r} is out of range: 0..{T.MAX_HEADER} link header bytes")
    return header


def _strict(value: Any) -> bool:
    return boolean("iso8583", "strict", value)


def _framing(value: Any, allow_none: bool) -> str:
    names = [n for n in T.FRAMINGS if allow_none or n != "none"]
    if value not in names:
        raise ValueError(f"framing must be one of {', '.join(names)}, not {value!r}")
    return value


def _check(options: dict, known: tuple, what: str) -> None:
    extra = set(options) - set(known)
    if extra:
        raise ValueError(f"unknown {what} option(s) {', '.join(sorted(extra))}; options: {', '.join(known)}")


def make_iso8583(backend: str, direction: str, **options: Any):
    from protocols.iso8583 import spec as S

    _check(options, _ISO_OPTIONS, "iso8583")
    spec = S.load(options.get("spec", "iso87-binary"))
    framing = _framing(options.get("framing", "len2"), True)
    header = _header(options.get("header", 0))
    strict = _strict(options.get("strict", False))
    if backend == "native":
        from protocols.iso8583.native import NativeIso8583Decoder

        return NativeIso8583Decoder(spec, framing, header, strict)
    from protocols.iso8583.reference import ReferenceIso8583Decoder

    return ReferenceIso8583Decoder(spec, framing, header, strict)


def make_lenframe(backend: str, direction: str, **options: Any):
    _check(options, _LENFRAME_OPTIONS, "lenframe")
    framing = _framing(options.get("framing", "len4"), False)
    header = _header(options.get("header", 0))
    if backend == "native":
        from protocols.iso8583.native import NativeLenframeDecoder

        return NativeLenframeDecoder(framing, header)
    from protocols.iso8583.reference import ReferenceLenframeDecoder

    return ReferenceLenframeDecoder(framing, header)

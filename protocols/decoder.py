"""The one decoder interface every protocol and backend sits behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import msgpack

BACKENDS = ("native", "reference")
BACKEND_ENV = "TILLWIRE_BACKEND"


class DecoderClosed(RuntimeError):
    """Raised when a decoder is used after close() (caller misuse, not bad input)."""


def default_backend() -> str:
    backend = os.environ.get(BACKEND_ENV, "native").strip().lower() or "native"
    if backend not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={backend!r} is not a backend; use one of: {', '.join(BACKENDS)}")
    return backend


def _escpos_factory(backend: str, direction: str, options: dict[str, Any]):
    from protocols import escpos

    return escpos.make_backend(backend, direction, **options)


def _zvt_factory(framing: str):
    def factory(backend: str, direction: str, options: dict[str, Any]):
        from protocols import zvt

        return zvt.make_backend(backend, framing, direction, **options)

    return factory


def _ecr_factory(backend: str, direction: str, options: dict[str, Any]):
    from protocols import ecr

    return ecr.make_backend(backend, direction, **options)


def _iso8583_factory(backend: str, direction: str, options: dict[str, Any]):
    from protocols import iso8583

    return iso8583.make_iso8583(backend, direction, **options)


def _lenframe_factory(backend: str, direction: str, options: dict[str, Any]):
    from protocols import iso8583

    return iso8583.make_lenframe(backend, direction, **options)


def _scanner_factory(hid: bool):
    def factory(backend: str, direction: str, options: dict[str, Any]):
        from protocols import scanner

        return scanner.make_backend(backend, direction, hid=hid, **options)

    return factory


def _msr_factory(backend: str, direction: str, options: dict[str, Any]):
    from protocols import msr

    return msr.make_backend(backend, direction, **options)


def _scale_factory(protocol: str):
    def factory(backend: str, direction: str, options: dict[str, Any]):
        from protocols import scale

        return scale.make_backend(backend, protocol, direction, **options)

    return factory


def _display_factory(dialect: str):
    def factory(backend: str, direction: str, options: dict[str, Any]):
        from protocols import display

        return display.make_backend(backend, direction, dialect, **options)

    return factory


# protocol name -> factory(backend, direction, options) returning an object with
# feed(bytes) -> bytes, close() -> bytes and, optionally, tick(now_ns) -> bytes and note_request(kind, n).
_PROTOCOLS: dict[str, Callable[[str, str, dict[str, Any]], Any]] = {
    "escpos": _escpos_factory,
    "zvt-serial": _zvt_factory("serial"),
    "zvt-tcp": _zvt_factory("tcp"),
    "ecr": _ecr_factory,
    "iso8583": _iso8583_factory,
    "lenframe": _lenframe_factory,
    "scanner": _scanner_factory(False),
    "scanner-hidpos": _scanner_factory(True),
    "msr": _msr_factory,
    "scale-nci": _scale_factory("scale-nci"),
    "scale-toledo": _scale_factory("scale-toledo"),
    "scale-cas": _scale_factory("scale-cas"),
    "magellan": _scale_factory("magellan"),
    "display-cd5220": _display_factory("cd5220"),
    "display-epson": _display_factory("epson"),
}

DIRECTIONS = ("to_device", "from_device")


def available_protocols() -> list[str]:
    return sorted(_PROTOCOLS)


class Decoder:
    """``Decoder(protocol, direction="to_device", backend=None, **options)``.

    One decoder per byte stream and per thread: the C backend releases the GIL while it decodes, so a decoder
    shared between threads needs the caller's lock.

    Errors in the *input* never raise: they become ``protocol.error`` events. Misuse by the caller (an unknown
    protocol or option, feeding after close) raises ``ValueError`` / ``TypeError`` / ``DecoderClosed``.
    """

    __slots__ = ("protocol", "direction", "backend", "_impl", "_closed")

    def __init__(self, protocol: str, direction: str = "to_device", backend: str | None = None, **options: Any):
        factory = _PROTOCOLS.get(protocol)
        if factory is None:
            raise ValueError(f"unknown protocol {protocol!r}; known protocols: {', '.join(available_protocols())}")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        backend = default_backend() if backend is None else backend
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.protocol = protocol
        self.direction = direction
        self.backend = backend
        self._impl = factory(backend, direction, options)
        self._closed = False

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        if self._closed:
            raise DecoderClosed("feed() after close()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"feed() takes bytes, not {type(data).__name__}")
            if isinstance(data, memoryview) and not data.c_contiguous:
                data = data.tobytes()  # a strided view: both backends then see the same bytes
        return self._impl.feed(data)

    def tick(self, now_ns: int) -> bytes:
        if self._closed:
            raise DecoderClosed("tick() after close()")
        tick = getattr(self._impl, "tick", None)
        return tick(int(now_ns)) if tick is not None else b""

    def close(self) -> bytes:
        if self._closed:
            raise DecoderClosed("close() called twice")
        self._closed = True
        return self._impl.close()

    def note_request(self, kind: str, n: int) -> None:
        """Tell a reply decoder (``from_device``) which request the till just sent (see the protocol's docs)."""
        note = getattr(self._impl, "note_request", None)
        if note is None:
            raise TypeError(f"{self.protocol} {self.direction} decoder takes no requests")
        note(kind, int(n))

    def events(self, data: bytes | bytearray | memoryview) -> list[dict]:
        return unpack_events(self.feed(data))

    def close_events(self) -> list[dict]:
        return unpack_events(self.close())


def unpack_events(blob: bytes) -> list[dict]:
    """Unpack concatenated msgpack event maps (bytes stay bytes, strings become str)."""
    if not blob:
        return []
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(blob)
    return list(unpacker)

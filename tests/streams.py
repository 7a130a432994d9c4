"""Feeding a decoder a stream cut into pieces: shared by the golden-vector and differential tests."""

from __future__ import annotations

from protocols import Decoder


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo ``len(data) + 1``, sorted, duplicates dropped); the pieces
    join back to ``data`` and may be empty."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


def feed_all(decoder, chunks) -> bytes:
    """Everything a decoder (``Decoder`` or a backend object) outputs for ``chunks`` and its close()."""
    return b"".join(decoder.feed(c) for c in chunks) + decoder.close()


def decode_split(protocol: str, data: bytes, cuts: list[int], **options) -> bytes:
    """A fresh ``Decoder(protocol, **options)`` fed ``data`` cut at ``cuts``."""
    return feed_all(Decoder(protocol, **options), split(data, cuts))

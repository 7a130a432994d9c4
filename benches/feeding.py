"""What every throughput benchmark times: a fresh decoder fed a corpus whole, or in fixed-size chunks, then closed.
Each returns the closure pytest-benchmark calls."""

from __future__ import annotations

from protocols import Decoder

CHUNK = 4096


def whole(data: bytes, protocol: str, *args, **options):
    def run():
        dec = Decoder(protocol, *args, **options)
        return dec.feed(data) + dec.close()

    return run


def chunked(data: bytes, protocol: str, *args, size: int = CHUNK, **options):
    chunks = [data[i:i + size] for i in range(0, len(data), size)]

    def run():
        dec = Decoder(protocol, *args, **options)
        out = [dec.feed(c) for c in chunks]
        out.append(dec.close())
        return out

    return run

"""ZVT (PA00P015/PA00P016), the DACH ECR ⇄ payment terminal protocol. Today: the link layer — serial DLE/STX
framing with CRC-16/KERMIT and link ACK/NAK, and bare APDUs on TCP — as a C decoder and its pure-Python twin.
Contract: ``docs/protocols/zvt-link.md``."""

from __future__ import annotations

from typing import Any


def make_backend(backend: str, framing: str, direction: str, **extra: Any):
    if extra:
        raise ValueError(f"unknown zvt option(s) {', '.join(sorted(extra))}; the ZVT link layer takes none")
    if backend == "native":
        from protocols.zvt.native import NativeZvtLinkDecoder

        return NativeZvtLinkDecoder(framing)
    from protocols.zvt.link_reference import ReferenceZvtLinkDecoder

    return ReferenceZvtLinkDecoder(framing)

"""ZVT (PA00P015/PA00P016), the DACH ECR ⇄ payment terminal protocol: the link layer (serial DLE/STX framing with
CRC-16/KERMIT and link ACK/NAK, and bare APDUs on TCP) and the APDU layer on top of it (BMPs, TLV, status, print
lines, card data masked, ``payment.*`` events), as a C decoder and its pure-Python twin. Contracts:
``docs/protocols/zvt-link.md`` and ``docs/protocols/zvt.md``. Option: ``strict`` (payment.md section 3)."""

from __future__ import annotations

from typing import Any

from protocols.options import boolean


def make_backend(backend: str, framing: str, direction: str, strict: bool = False, **extra: Any):
    if extra:
        raise ValueError(f"unknown zvt option(s) {', '.join(sorted(extra))}; the ZVT decoders take: strict")
    strict = boolean("zvt", "strict", strict)
    if backend == "native":
        from protocols.zvt.native import NativeZvtLinkDecoder

        return NativeZvtLinkDecoder(framing, strict)
    from protocols.zvt.link_reference import ReferenceZvtLinkDecoder

    return ReferenceZvtLinkDecoder(framing, strict)

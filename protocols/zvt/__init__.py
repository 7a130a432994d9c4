"""ZVT (PA00P015/PA00P016), the DACH ECR ⇄ payment terminal protocol: the link layer (serial DLE/STX framing with
CRC-16/KERMIT and link ACK/NAK, and bare APDUs on TCP) and the APDU layer on top of it (BMPs, TLV, status, print
lines, card data masked, ``payment.*`` events), as a C decoder and its pure-Python twin. Contracts:
``docs/protocols/zvt-link.md`` and ``docs/protocols/zvt.md``. Option: ``strict`` (payment.md section 3)."""

from __future__ import annotations

from typing import Any


def make_backend(backend: str, framing: str, direction: str, strict: bool = False, **extra: Any):
    if extra:
        raise ValueError(f"unknown zvt option(s) {', '.join(sorted(extra))}; the ZVT decoders take: strict")
    if isinstance(strict, str):  # -o strict=true on the command line
        if strict.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"strict must be true or false, not {strict!r}")
        strict = strict.lower() in ("true", "1", "yes")
    elif not isinstance(strict, bool):
        raise ValueError(f"strict must be true or false, not {strict!r}")
    if backend == "native":
        from protocols.zvt.native import NativeZvtLinkDecoder

        return NativeZvtLinkDecoder(framing, strict)
    from protocols.zvt.link_reference import ReferenceZvtLinkDecoder

    return ReferenceZvtLinkDecoder(framing, strict)

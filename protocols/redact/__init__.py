"""Card-data redaction of raw byte streams, per protocol family (``docs/bridge/recording.md`` section 5).

Sans-IO: a ``StreamRedactor`` takes the bytes of one stream (one device, one direction) in any split and returns
them with PANs, track data and other card data masked **in place** — the same number of bytes out as in, so an
offset in a recording is the offset on the wire. ``feed(data)`` returns ``(bytes, notes)``: the bytes that are
ready (it may hold back a bounded tail that could still be the start of card data) and notes (dicts) about
checksums it could not fix; ``flush()`` returns everything held (cutting a frame still arriving: its data masked
whole), ``held`` says how much that is (``bridge.recording.tws`` calls ``flush`` only at a close, at the end, or
past its hold bound). ``counts`` says how many ranges were masked, by
kind (``pan``, ``track``, ``withheld``).

The mask keeps what the decoders show (a PAN's first six and last four digits) and replaces the rest with
characters of the same class (digits with ``0``, BCD nibbles with ``E`` — "masked by the device" — or ``0``), so
decoding a redacted stream gives the same events as decoding the original: the decoders only ever emit masked PANs.
"""

from __future__ import annotations

from typing import Any, Protocol

POLICY = "card-data-v1"


class StreamRedactor(Protocol):
    """What every redactor of one stream offers (``TextRedactor``, ``ZvtSerialRedactor``, ``ZvtTcpRedactor``,
    ``Iso8583Redactor``, ``EcrRedactor``); ``counts`` holds how many ranges of each kind were masked."""

    counts: dict[str, int]

    def feed(self, data: bytes) -> tuple[bytes, list[dict]]: ...

    def flush(self, end: bool = False) -> tuple[bytes, list[dict]]:
        """Everything held; ``end``: the stream ends here (a recording's close), nothing more will follow. Without
        ``end``, a frame still arriving is cut: its data is masked whole (and so is the rest of it)."""
        ...

    @property
    def held(self) -> int:
        """How many bytes fed are held back now (a frame, a track or a PAN still arriving)."""
        ...


# protocol -> family; anything not listed is treated as text (the safe default: tracks and Luhn-valid PANs).
FAMILIES = {
    "zvt-serial": "zvt-serial", "zvt-tcp": "zvt-tcp", "iso8583": "iso8583", "ecr": "ecr",
}


def family_of(protocol: str) -> str:
    return FAMILIES.get(protocol, "text")


def masks_whole(protocol: str, options: dict[str, Any] | None = None) -> bool:
    """Whether a device's bytes are recorded masked whole (zero bytes, lengths kept) because its stream cannot be
    redacted safely field by field: ISO 8583 without length framing (``framing="none"``)."""
    if family_of(protocol) != "iso8583":
        return False
    from protocols.redact.iso8583 import masks_whole as iso_masks_whole
    return iso_masks_whole(dict(options or {}))


GS1_READERS = ("scanner", "scanner-hidpos", "magellan")


def redactor_for(protocol: str, direction: str, options: dict[str, Any] | None = None) -> StreamRedactor:
    """The redactor for one stream of ``protocol``; ``options`` are the decoder options (the ISO 8583 spec and
    framing, the ECR preset). Bad options are a ``ValueError`` (the same the decoder would raise)."""
    options = dict(options or {})
    family = family_of(protocol)
    if family == "zvt-serial":
        from protocols.redact.zvt import ZvtSerialRedactor
        return ZvtSerialRedactor()
    if family == "zvt-tcp":
        from protocols.redact.zvt import ZvtTcpRedactor
        return ZvtTcpRedactor()
    if family == "iso8583":
        from protocols.redact.iso8583 import Iso8583Redactor
        return Iso8583Redactor(options)
    if family == "ecr":
        from protocols.redact.ecr import EcrRedactor
        return EcrRedactor(options)
    from protocols.redact.text import TextRedactor
    lrc = protocol == "msr" and str(options.get("lrc", "off")).strip().lower() in ("on", "true", "1", "yes")
    # Only a scanner's decoder reads GS1 element strings (and keeps their checked keys); on every other text
    # stream a long digit run is never excused as one, so a card number that reads like one is still masked.
    return TextRedactor(fix_lrc=lrc, elements=protocol in GS1_READERS)


__all__ = ["POLICY", "StreamRedactor", "family_of", "masks_whole", "redactor_for"]

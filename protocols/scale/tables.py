"""Scale tables as data (``docs/protocols/scale.md``): the protocols, their command tables, unit spellings,
Magellan label prefixes, status fault names, UnifiedPOS status codes, bounds, options and error reasons.

``native/scale.c`` keeps its own copy of the command table; ``tests/test_scale_properties.py`` compares the two
through ``tw_scale_command_table``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: TW_MAX_SCALE_FRAME (native/tw_bounds.h): bytes of one message between its framing bytes
MAX_FRAME = 256
#: TW_MAX_SCALE_STATUS: NCI status bytes in one reply
MAX_STATUS = 8
#: TW_MAX_SCALE_DIGITS: digits of one weight
MAX_DIGITS = 9

PROTOCOLS = ("scale-nci", "scale-toledo", "scale-cas", "magellan")
#: protocol -> options it takes
OPTIONS = {"scale-nci": (), "scale-toledo": ("unit",), "scale-cas": (), "magellan": ("unit",)}
UNIT_OPTION = ("lb", "kg")

#: (protocol, command as sent without its terminator, name), in the C table's order (section 3, 4, 6)
COMMANDS = [
    ("scale-nci", "W", "weight"),
    ("scale-nci", "S", "status"),
    ("scale-nci", "Z", "zero"),
    ("scale-nci", "H", "high_resolution"),
    ("scale-nci", "U", "units"),
    ("scale-nci", "T", "tare"),
    ("scale-nci", "M", "counts"),
    ("scale-toledo", "W", "weight"),
    ("scale-toledo", "S", "status"),
    ("scale-toledo", "Z", "zero"),
    ("scale-toledo", "T", "tare"),
    ("scale-toledo", "C", "clear_tare"),
    ("magellan", "S11", "weight"),
    ("magellan", "S14", "monitor"),
    ("magellan", "S334", "beep"),
]
#: protocol -> {command bytes: name}
COMMAND_TABLE: dict[str, dict[bytes, str]] = {}
for _p, _c, _n in COMMANDS:
    COMMAND_TABLE.setdefault(_p, {})[_c.encode()] = _n

#: unit spellings (section 1)
UNITS = {b"kg": "kg", b"KG": "kg", b"Kg": "kg", b"g": "g", b"G": "g", b"lb": "lb", b"LB": "lb", b"Lb": "lb",
         b"oz": "oz", b"OZ": "oz", b"Oz": "oz"}

#: Magellan label type prefix -> the AIM identifier the scanner decoder is given (section 6); longest first
LABELS = [(b"S08FF", b"]E4"), (b"S08B1", b"]A0"), (b"S08A", b"]E0"), (b"S08E", b"]E0"), (b"S08F", b"]E0"),
          (b"S08R", b"]e0")]

#: Magellan scale status replies -> the flag they set
MAGELLAN_STATUS = {b"S141": "motion", b"S142": "over", b"S143": "zero", b"S145": "under"}

#: fault names in event order
FAULTS = ("ram", "eeprom", "rom", "calibration", "initial_zero", "zero_range")

#: UnifiedPOS Scale status (ScaleConst)
UPOS_STABLE_WEIGHT, UPOS_UNSTABLE, UPOS_ZERO, UPOS_OVERWEIGHT, UPOS_NOT_READY, UPOS_UNDER_ZERO, UPOS_UNDERWEIGHT = (
    11, 12, 13, 14, 15, 16, 17)

ERRORS = {
    "truncated": "The stream ended inside a command.",
    "unexpected_byte": "A byte outside any frame that is not a link control byte.",
    "scale_frame_too_long": "A scale message longer than the decoder's frame limit; it was dropped.",
    "scale_unknown_command": "A till command that is not in the scale protocol's command table.",
    "scale_bad_reply": "A scale message whose layout the decoder does not know.",
    "scale_bad_weight": "A scale weight that is not a number of at most nine digits and three decimals with a known unit.",
    "scale_bad_status": "Scale status bytes whose fixed bits or continuation bits are wrong.",
    "magellan_unknown_label": "A Magellan label whose type prefix the decoder does not map to a symbology.",
}


@dataclass(frozen=True)
class Config:
    protocol: str
    from_device: bool
    unit: str = "lb"


def resolve(protocol: str, direction: str, options: dict[str, Any]) -> Config:
    """The configuration from ``Decoder(protocol, direction, **options)``; raises ValueError naming the option."""
    allowed = OPTIONS[protocol]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        told = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"unknown {protocol} option(s) {', '.join(unknown)}; the options are: {told}")
    unit = options.get("unit", "lb")
    if not isinstance(unit, str) or unit.strip().lower() not in UNIT_OPTION:
        raise ValueError(f"{protocol} option unit={unit!r} is unknown; use one of: {', '.join(UNIT_OPTION)}")
    return Config(protocol=protocol, from_device=direction == "from_device", unit=unit.strip().lower())

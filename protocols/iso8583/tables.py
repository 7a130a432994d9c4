"""ISO 8583 and length-framing tables as data (``docs/protocols/iso8583.md``): framings, bounds, error reasons,
card rules, semantic tables, the cp500 table and the BIN ranges (``bins.json``)."""

from __future__ import annotations

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# framing name -> (C code, prefix length)  (section 1)
FRAMINGS = {"len2": (0, 2), "len4": (1, 4), "ascii4": (2, 4), "hex4": (3, 4), "bcd2": (4, 2), "vmlh": (5, 4),
            "none": (6, 0)}
MAX_LENFRAME = 1 << 20        # TW_MAX_LENFRAME: bytes after the prefix of a lenframe frame
MAX_ISO_FRAME = 65535         # TW_MAX_ISO_FRAME: bytes after the prefix of an iso8583 frame (or the whole stream)
MAX_HEADER = 32               # TW_MAX_LINK_HEADER: link header bytes (a TPDU is 5)
MAX_TLV_DEPTH = 4             # TW_MAX_ISO_TLV_DEPTH: nesting of constructed TLV tags
MAX_TAG_BYTES = 4             # TW_MAX_ISO_TAG_BYTES
MAX_FIELD_LEN = 9999          # a spec's largest `max`

ERRORS = {
    "bad_length_prefix": "A length prefix that is not a valid length in its framing.",
    "length_too_large": "A length prefix above the decoder's frame limit.",
    "bad_mti": "A message type indicator that is not four decimal digits.",
    "bad_bitmap": "A bitmap that is cut off or not valid in its encoding.",
    "unknown_field": "A bitmap bit set for a field the spec does not define.",
    "bad_field_length": "A field whose length is cut off, malformed, or does not fit its format.",
    "field_truncated": "A field whose data is shorter than its length.",
    "bad_field_data": "A field whose data is not valid in its encoding.",
    "bad_tlv": "A TLV object whose tag or length is malformed or runs past the end of its container.",
    "extra_data": "Bytes left after the last field of a message.",
    "truncated": "The stream ended inside a command.",
}

# card data by field number (section 3.2)
WITHHELD_FIELDS = frozenset({14, 52})
PAN_FIELD = 2
TRACK2_FIELDS = frozenset({35, 36})   # PAN before '=' or 'D'
TRACK1_FIELDS = frozenset({45})       # PAN between 'B' and '^'
# TLV tags (uppercase hex) -> rule
TLV_RULES = {"5A": "pan", "57": "track2", "9F6B": "track2", "9F20": "track2", "56": "track1", "9F1F": "track1",
             "5F20": "withheld", "9F0B": "withheld", "5F24": "withheld"}

# semantic tables (section 3.3)
ENTRY_MODES = {"05": "chip", "07": "contactless", "02": "swipe", "90": "swipe", "01": "manual"}
REQUEST_KINDS = {("1", "00"): "preauth", ("2", "00"): "authorization", ("1", "20"): "refund",
                 ("2", "20"): "refund"}
RESULT_PAN_FIELDS = (2, 35, 45, 36)

# cp500 (EBCDIC) -> Latin-1: cp500 maps the 256 bytes onto the 256 Latin-1 code points
CP500_TO_LATIN1 = bytes(ord(c) for c in bytes(range(256)).decode("cp500"))


def load_bins(path: str | None = None) -> list[tuple[str, int, int, int]]:
    """The BIN ranges as (brand, digits, lo, hi)."""
    with open(path or os.path.join(HERE, "bins.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    out = []
    for r in doc["ranges"]:
        brand, digits, lo, hi = r["brand"], r["digits"], r["lo"], r["hi"]
        if not (isinstance(brand, str) and 0 < len(brand) < 16 and brand.isascii()
                and isinstance(digits, int) and 1 <= digits <= 6 and isinstance(lo, int) and isinstance(hi, int)
                and 0 <= lo <= hi < 10 ** digits):
            raise ValueError(f"bins.json: bad range {r!r}")
        out.append((brand, digits, lo, hi))
    return out


BINS = load_bins()


def card_brand(pan: str) -> str | None:
    """The one brand whose ranges match a masked PAN (13-19 characters, the first six digits), else None."""
    head = pan[:6]
    if not (13 <= len(pan) <= 19 and head.isascii() and head.isdigit()):
        return None
    found = None
    for brand, digits, lo, hi in BINS:
        if lo <= int(pan[:digits]) <= hi:
            if found is not None and found != brand:
                return None
            found = brand
    return found

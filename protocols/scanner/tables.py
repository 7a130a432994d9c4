"""Barcode scanner tables as data (``docs/protocols/scanner.md``): options and their validation, the AIM
symbology identifier table, the GS1 application identifier table, bounds and error reasons.

``native/scanner.c`` keeps its own copy of the AIM and AI tables (it needs them without Python, e.g. in the fuzz
harness); ``tests/test_scanner_tables.py`` compares the copies entry by entry through ``tw_scanner_aim_entry`` and
``tw_scanner_ai_entry``, so they cannot drift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: TW_MAX_SCAN_LABEL (native/tw_bounds.h): bytes of one label, prefix and AIM id included, suffix excluded.
MAX_LABEL = 8192
#: TW_MAX_SCAN_PREFIX: bytes of the configured prefix.
MAX_PREFIX = 8
#: gap_ms range (1 ms .. 60 s)
GAP_MS_MIN, GAP_MS_MAX = 1, 60000
#: bytes quoted by protocol.error: scanner errors carry an empty raw (a label may be card data)
MAX_ERROR_RAW = 32
#: HID-POS: bytes of one input report with its report id, the report id, data bytes per report
HID_REPORT = 64
HID_REPORT_ID = 0x02
HID_DATA_MAX = 56

SUFFIXES = {"cr": 0x0D, "crlf": 0x0A, "lf": 0x0A, "tab": 0x09, "none": -1}
AIM_MODES = ("auto", "on", "off")

ERRORS = {
    "truncated": "The stream ended inside a command.",
    "label_too_long": "A scanner label longer than the decoder's label limit; it was dropped.",
    "missing_prefix": "A scanner label that does not start with the configured prefix.",
    "missing_aim_id": "A scanner label without the AIM symbology identifier the decoder requires.",
    "bad_check_digit": "A product code whose check digit or digits are not valid for its symbology.",
    "gs1_unknown_ai": "A GS1 element string with an application identifier the decoder does not know.",
    "gs1_bad_value": "A GS1 element string value that does not fit its application identifier's format.",
    "gs1_repeated_ai": "A GS1 element string that holds the same application identifier twice.",
    "bad_report": "A HID-POS input report with a report id or length the decoder does not accept.",
}

# ------------------------------------------------------------------------------------------ AIM identifiers
# ISO/IEC 15424 symbology identifiers "]" + code char + modifier. Key: (code, modifier) for an entry that holds
# for that modifier only, (code, "") for every other modifier. Value: (symbology name, UnifiedPOS ScanDataType,
# GS1 element string?). Sources: AIM ISO/IEC 15424 via the NCR 7895 guide, jodal/biip symbology tables, UPOS
# ScannerConst.java (../shared/research/terminal.md A1, A2). "E0" is special-cased (scanner.md section 4).
AIM = {
    ("A", ""): ("Code 39", 108, False),
    ("C", ""): ("Code 128", 110, False),
    ("C", "1"): ("GS1-128", 120, True),
    ("E", "0"): ("EAN-13", 104, False),
    ("E", "1"): ("EAN/UPC add-on 2", 0, False),
    ("E", "2"): ("EAN/UPC add-on 5", 0, False),
    ("E", "3"): ("EAN-13 with add-on", 104, False),
    ("E", "4"): ("EAN-8", 103, False),
    ("E", ""): ("EAN/UPC", 0, False),
    ("F", ""): ("Codabar", 107, False),
    ("G", ""): ("Code 93", 109, False),
    ("H", ""): ("Code 11", 0, False),
    ("I", ""): ("ITF", 106, False),
    ("L", ""): ("PDF417", 201, False),
    ("M", ""): ("MSI", 0, False),
    ("S", ""): ("Code 2 of 5", 0, False),
    ("U", ""): ("MaxiCode", 202, False),
    ("X", ""): ("other", 0, False),
    ("d", ""): ("Data Matrix", 203, False),
    ("d", "2"): ("GS1 DataMatrix", 208, True),
    ("e", ""): ("GS1 DataBar", 131, True),
    ("J", ""): ("DotCode", 0, False),
    ("J", "1"): ("GS1 DotCode", 0, True),
    ("Q", ""): ("QR Code", 204, False),
    ("Q", "3"): ("GS1 QR Code", 209, True),
    ("z", ""): ("Aztec", 0, False),
}
UNKNOWN = ("unknown", 0)
UPCA = ("UPC-A", 101)
UPCE = ("UPC-E", 102)
EAN8 = ("EAN-8", 103)
EAN13 = ("EAN-13", 104)


def aim_list() -> list[tuple[str, str, str, int, bool]]:
    """The AIM table in its C order: sorted by (code, modifier)."""
    return [(c, m, *AIM[(c, m)]) for c, m in sorted(AIM)]


# ------------------------------------------------------------------------------ GS1 application identifiers
# (AI, fixed length or 0 for variable, maximum length, charset, kind). An AI written with a trailing "n" has four
# digits, the last one any digit; a trailing "d", the last one 0..5 (the decimal count of a six-digit measure: the
# GS1 table defines 310n..369n for n <= 5 only). The last digit is the decimal count for kinds "dec" and
# "cur_dec". charset: "N" digits, "X" GS1 AI encodable character set 82. kind: "" plain; "dec" the value is also
# given as an integer with n decimals; "cur_dec" three digits of ISO 4217 currency, then the amount with n decimals.
# Source: GS1 General Specifications, section 3 (application identifier table); lengths checked against
# jodal/biip's table.
#: GS1 keys whose last digit is a mod-10 check digit (GS1 General Specifications 7.9): only a key whose check digit
#: holds keeps its digits unmasked (docs/protocols/scanner.md section 4).
CHECK_DIGIT_AIS = frozenset({"00", "01", "02", "03", "402", "410", "411", "412", "413", "414", "415", "416", "417",
                             "8017", "8018"})

AIS = [
    ("00", 18, 18, "N", ""),
    ("01", 14, 14, "N", ""),
    ("02", 14, 14, "N", ""),
    ("03", 14, 14, "N", ""),
    ("10", 0, 20, "X", ""),
    ("11", 6, 6, "N", ""),
    ("12", 6, 6, "N", ""),
    ("13", 6, 6, "N", ""),
    ("15", 6, 6, "N", ""),
    ("16", 6, 6, "N", ""),
    ("17", 6, 6, "N", ""),
    ("20", 2, 2, "N", ""),
    ("21", 0, 20, "X", ""),
    ("22", 0, 20, "X", ""),
    ("240", 0, 30, "X", ""),
    ("241", 0, 30, "X", ""),
    ("250", 0, 30, "X", ""),
    ("251", 0, 30, "X", ""),
    ("254", 0, 20, "X", ""),
    ("30", 0, 8, "N", ""),
    *[(f"{p}d", 6, 6, "N", "dec") for p in
      ("310", "311", "312", "313", "314", "315", "316", "320", "321", "322", "323", "324", "325", "326", "327",
       "328", "329", "330", "331", "332", "333", "334", "335", "336", "337", "340", "341", "342", "343", "344",
       "345", "346", "347", "348", "349", "350", "351", "352", "353", "354", "355", "356", "357", "360", "361",
       "362", "363", "364", "365", "366", "367", "368", "369")],
    ("37", 0, 8, "N", ""),
    ("390n", 0, 15, "N", "dec"),
    ("391n", 0, 18, "N", "cur_dec"),
    ("392n", 0, 15, "N", "dec"),
    ("393n", 0, 18, "N", "cur_dec"),
    ("400", 0, 30, "X", ""),
    ("401", 0, 30, "X", ""),
    ("402", 17, 17, "N", ""),
    ("403", 0, 30, "X", ""),
    ("410", 13, 13, "N", ""),
    ("411", 13, 13, "N", ""),
    ("412", 13, 13, "N", ""),
    ("413", 13, 13, "N", ""),
    ("414", 13, 13, "N", ""),
    ("415", 13, 13, "N", ""),
    ("416", 13, 13, "N", ""),
    ("420", 0, 20, "X", ""),
    ("422", 3, 3, "N", ""),
    ("8020", 0, 25, "X", ""),
    ("90", 0, 30, "X", ""),
]

#: the GS1 "AI encodable character set 82"
CSET82 = frozenset(b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")


def _expand() -> dict[str, tuple[int, int, str, str]]:
    table: dict[str, tuple[int, int, str, str]] = {}
    for ai, fixed, top, charset, kind in AIS:
        if ai[-1] in "nd":
            for n in range(10 if ai[-1] == "n" else 6):
                table[ai[:-1] + str(n)] = (fixed, top, charset, kind)
        else:
            table[ai] = (fixed, top, charset, kind)
    return table


#: AI (2 to 4 digits) -> (fixed length or 0, max length, charset, kind)
AI_TABLE = _expand()


def ai_list() -> list[tuple[str, int, int, str, str]]:
    """The AI table in its C order (as written above)."""
    return list(AIS)


# ---------------------------------------------------------------------------------------------- options
OPTIONS = ("prefix", "suffix", "gap_ms", "aim")
HID_OPTIONS = ("aim",)


@dataclass(frozen=True)
class Config:
    prefix: bytes = b""
    suffix: str = "cr"
    gap_ms: int = 50
    aim: str = "auto"
    hid: bool = False


def _prefix(value: Any) -> bytes:
    if isinstance(value, str) and value.lower().startswith("hex:"):
        try:
            raw = bytes.fromhex(value[4:])
        except ValueError:
            raise ValueError(f"scanner option prefix={value!r}: hex: must be followed by hex digits") from None
    elif isinstance(value, str):
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"scanner option prefix={value!r}: characters must be Latin-1 bytes") from None
    elif isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif value is None:
        raw = b""
    else:
        raise ValueError(f"scanner option prefix={value!r}: give bytes or a str")
    if len(raw) > MAX_PREFIX:
        raise ValueError(f"scanner option prefix={value!r}: at most {MAX_PREFIX} bytes")
    return raw


def resolve(options: dict[str, Any], hid: bool = False) -> Config:
    """The configuration from ``Decoder("scanner", **options)``; raises ValueError naming the option."""
    allowed = HID_OPTIONS if hid else OPTIONS
    name = "scanner-hidpos" if hid else "scanner"
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {name} option(s) {', '.join(unknown)}; the options are: {', '.join(allowed)}")
    prefix = _prefix(options.get("prefix", b""))
    suffix = options.get("suffix", "cr")
    if not isinstance(suffix, str) or suffix.strip().lower() not in SUFFIXES:
        raise ValueError(f"scanner option suffix={suffix!r} is unknown; use one of: {', '.join(SUFFIXES)}")
    suffix = suffix.strip().lower()
    gap = options.get("gap_ms", 50)
    if isinstance(gap, bool) or not isinstance(gap, (int, str)):
        raise ValueError(f"scanner option gap_ms={gap!r}: give an integer number of milliseconds")
    if isinstance(gap, str):
        try:
            gap = int(gap.strip(), 10)
        except ValueError:
            raise ValueError(f"scanner option gap_ms={gap!r}: give an integer number of milliseconds") from None
    if not GAP_MS_MIN <= gap <= GAP_MS_MAX:
        raise ValueError(f"scanner option gap_ms={gap!r} is out of range {GAP_MS_MIN}..{GAP_MS_MAX}")
    aim = options.get("aim", "auto")
    if isinstance(aim, bool):
        aim = "on" if aim else "off"
    if not isinstance(aim, str):
        raise ValueError(f"scanner option aim={aim!r}: use one of auto, on (true), off (false)")
    aim = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}.get(
        aim.strip().lower(), aim.strip().lower())
    if aim not in AIM_MODES:
        raise ValueError(f"scanner option aim={options.get('aim')!r}: use one of auto, on (true), off (false)")
    return Config(prefix=prefix, suffix=suffix, gap_ms=gap, aim=aim, hid=hid)

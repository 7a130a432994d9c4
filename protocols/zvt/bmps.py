"""ZVT APDU-layer tables as data (``docs/protocols/zvt.md``): the BMP table, how each command's data is laid out,
the TLV tags that carry text or card data, the intermediate-status texts, the card-type names and the
semantic-event kinds. ``native/zvt_apdu.c`` keeps 256-entry copies of these for speed; tests run every entry
through both backends.

Sources: PA00P015 (ZVT commands and BMPs; the summary of utilised BMPs, the intermediate-status texts, the list of
ZVT card-type IDs), cross-checked against Portalum.Zvt (MIT) and wirelane/ecrterm (BMP 60 layout).
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------- BMP table
# length: a fixed byte count, or LL / LLL (2 or 3 length bytes F0-F9, their low nibbles the decimal length),
# or BER (BMP 06, the TLV container: a BER length).
LL, LLL, BER = -2, -3, -1

# kind: how the value is decoded (zvt.md section 3)
INT = "int"            # one binary byte -> int
AMOUNT = "amount"      # BCD digits -> int (minor units)
DIGITS = "digits"      # BCD digits -> str of digits
TEXT = "text"          # CP437 text -> scrubbed str
BYTES = "bytes"        # bytes (scrubbed)
PAN = "pan"            # BCD PAN ('E' = device-masked digit, trailing 'F' padding) -> masked str
TRACK = "track"        # nibble-packed track 2/3 -> {"pan": masked} or {}
TRACK1 = "track1"      # ASCII track 1 ("B" PAN "^" ...) -> {"pan": masked} or {}
WITHHELD = "withheld"  # never emitted; listed under "withheld"
AID = "aid"            # an application identifier: bytes when it looks like one (looks_like_aid), else withheld
TOTALS = "totals"      # BMP 60 individual totals (bytes in the map; payment.eod)
TLV = "tlv"            # BMP 06

BMPS: dict[int, tuple[int, str]] = {
    0x01: (1, INT),        # timeout
    0x02: (1, INT),        # max. status infos
    0x03: (1, INT),        # service byte
    0x04: (6, AMOUNT),     # amount
    0x05: (1, INT),        # pump number
    0x06: (BER, TLV),      # TLV container
    0x0B: (3, DIGITS),     # trace number
    0x0C: (3, DIGITS),     # time HHMMSS
    0x0D: (2, DIGITS),     # date MMDD
    0x0E: (2, WITHHELD),   # expiry date YYMM
    0x17: (2, DIGITS),     # card sequence number
    0x19: (1, INT),        # payment type / status byte / card type
    0x22: (LL, PAN),       # PAN / EF_ID
    0x23: (LL, TRACK),     # track 2
    0x24: (LLL, TRACK),    # track 3
    0x27: (1, INT),        # result code
    0x29: (4, DIGITS),     # terminal id
    0x2A: (15, TEXT),      # VU number
    0x2D: (LL, TRACK1),    # track 1
    0x2E: (LL, BYTES),     # synchronous chip data
    0x37: (3, DIGITS),     # trace number of the original transaction
    0x3A: (2, WITHHELD),   # CVV / CVC
    0x3B: (8, TEXT),       # AID (authorisation code)
    0x3C: (LLL, TEXT),     # additional data / text
    0x3D: (3, BYTES),      # password
    0x49: (2, DIGITS),     # currency code
    0x60: (LLL, TOTALS),   # individual totals
    0x70: (4, BYTES),      # display image: request id
    0x71: (4, BYTES),      # display image: size
    0x72: (1, INT),        # display image: MIME type
    0x73: (1, INT),        # display image: encoding
    0x74: (1, INT),        # display image: chunk count
    0x75: (1, INT),        # display image: chunk index
    0x87: (2, DIGITS),     # receipt number
    0x88: (3, DIGITS),     # turnover record number
    0x8A: (1, INT),        # card type (ZVT card-type id)
    0x8B: (LL, TEXT),      # card name
    0x8C: (1, INT),        # card-type id of the network operator
    0x9A: (LLL, BYTES),    # Geldkarte records
    0xA0: (1, INT),        # result code AS
    0xA7: (LL, WITHHELD),  # chip data, EF_ID: a girocard chip's account data (bank code, account number)
    0xAA: (3, DIGITS),     # date YYMMDD
    0xAF: (LLL, BYTES),    # EF_Info
    0xBA: (5, AID),        # AID parameter
    0xD0: (1, INT),        # algorithm key
    0xD1: (LL, WITHHELD),  # card offset / PIN data
    0xD2: (1, INT),        # card output direction
    0xD3: (1, INT),        # DUKPT key identifier
    0xE0: (1, INT),        # min. input length
    **{t: (LL, TEXT) for t in range(0xE1, 0xE9)},  # text2 lines 1-8
    0xE9: (1, INT),        # max. input length
    0xEA: (1, INT),        # echo input
    0xEB: (8, BYTES),      # MAC over text 1 and 2
    0xF0: (1, INT),        # display duration
    **{t: (LL, TEXT) for t in range(0xF1, 0xF9)},  # text1 lines 1-8
    0xF9: (1, INT),        # beep tones
    0xFA: (1, INT),        # card reader activation
    0xFB: (1, INT),        # confirmation required
    0xFC: (1, INT),        # dialog control
    0xFD: (1, INT),        # display device
}

# ------------------------------------------------------------------------------------ command data layouts
L_BMP = "bmp"                # a BMP stream
L_PASSWORD = "password"      # a 3-byte password, then a BMP stream
L_REGISTRATION = "registration"  # password, config byte, [currency (2 B BCD)], BMP stream
L_STATUS = "status"          # 04 FF: status byte, [timeout byte], BMP stream (06 TLV)
L_PRINT_LINE = "print_line"  # 06 D1: attribute byte, text
L_RESULT = "result"          # 06 1E: result-code byte, BMP stream
L_NACK = "nack"              # 84 xx: the error is the instruction byte; BMP stream

LAYOUTS: dict[tuple[int, int], str] = {
    (0x06, 0x00): L_REGISTRATION,
    (0x06, 0x01): L_BMP, (0x06, 0x22): L_BMP, (0x06, 0x23): L_BMP, (0x06, 0x24): L_BMP,
    (0x06, 0x02): L_BMP, (0x06, 0x0F): L_BMP, (0x06, 0x70): L_BMP, (0x06, 0xB0): L_BMP,
    (0x06, 0x1A): L_BMP, (0x08, 0x10): L_BMP, (0x06, 0xD3): L_BMP, (0x04, 0x0F): L_BMP,
    (0x06, 0xC0): L_BMP, (0x06, 0xE0): L_BMP, (0x80, 0x00): L_BMP,
    (0x06, 0x30): L_PASSWORD, (0x06, 0x31): L_PASSWORD, (0x06, 0x50): L_PASSWORD, (0x06, 0x10): L_PASSWORD,
    (0x06, 0x20): L_PASSWORD, (0x06, 0x93): L_PASSWORD, (0x05, 0x01): L_PASSWORD,
    (0x04, 0xFF): L_STATUS,
    (0x06, 0xD1): L_PRINT_LINE,
    (0x06, 0x1E): L_RESULT,
}


def layout_of(cls: int, instr: int) -> str | None:
    if cls == 0x84:
        return L_NACK
    return LAYOUTS.get((cls, instr))


# ------------------------------------------------------------------------------------ payment.request kinds
REQUEST_KINDS: dict[tuple[int, int], str] = {
    (0x06, 0x00): "registration", (0x06, 0x01): "authorization", (0x06, 0x22): "preauth",
    (0x06, 0x24): "completion", (0x06, 0x23): "partial_reversal", (0x06, 0x30): "reversal",
    (0x06, 0x31): "refund", (0x06, 0x50): "eod", (0x06, 0xB0): "abort", (0x06, 0x70): "diagnosis",
    (0x05, 0x01): "status_enquiry", (0x06, 0x20): "repeat_receipt", (0x06, 0x10): "turnover_totals",
    (0x06, 0x02): "log_off", (0x06, 0x93): "initialisation",
}

# ------------------------------------------------------------------------------------------------- TLV
MAX_TLV_DEPTH = 8     # TW_MAX_ZVT_TLV_DEPTH: nesting levels of constructed TLV objects (ZVT uses 3 at most)
MAX_TLV_TAG = 4       # bytes of one tag (1F xx xx xx); a longer tag is malformed

TLV_TEXT = frozenset({"07"})                       # text line
TLV_PAN = frozenset({"5A"})                        # EMV application PAN (BCD)
TLV_TRACK = frozenset({"57", "9F6B"})              # EMV track 2 equivalent, track 2 data (nibbles) -> {"pan"}
TLV_TRACK1 = frozenset({"56"})                     # EMV track 1 (ASCII) -> {"pan"}
TLV_WITHHELD = frozenset({"5F20", "5F24", "9F0B", "9F1F", "9F20"})  # name, expiry, name ext., discretionary
TLV_DISPLAY = "24"   # display texts (constructed; 07 lines)
TLV_PRINT = "25"     # print texts (constructed; 07 lines)
TLV_LINE = "07"
TLV_CARD_TECH = "1F12"   # card technology: 00 magnetic stripe, 01 chip, 02 contactless (NFC)
TLV_AID = "4F"        # like BMP BA: bytes when it looks like an AID, else withheld


def looks_like_aid(v: bytes) -> bool:
    """An application identifier (payment.md section 2): 5 to 16 bytes whose first nibble is A or D, the registered
    and national RID categories of ISO/IEC 7816-5. Anything else where an AID belongs may be card data."""
    return 5 <= len(v) <= 16 and v[0] >> 4 in (0xA, 0xD)


ENTRY = {0: "swipe", 1: "chip", 2: "contactless"}

# ------------------------------------------------------------------------ BMP 60 individual totals (53 bytes)
# receipt no. from (2 B BCD), to (2 B BCD), then 7 x (count 1 B binary, turnover 6 B BCD)
TOTALS_LEN = 53
TOTALS_CARDS = ("girocard", "JCB", "Eurocard", "American Express", "Visa", "Diners", "other")

# ----------------------------------------------------------------- ZVT card-type ids (BMP 8A), PA00P015 list
CARD_TYPES: dict[int, str] = {
    5: "girocard", 6: "Mastercard", 8: "American Express", 10: "Visa", 11: "VISA electron", 12: "Diners",
    13: "V PAY", 14: "JCB", 46: "Maestro", 87: "Bancontact", 196: "Dankort", 198: "UnionPay",
    232: "Discover",
}

# ------------------------------------------------------------------- intermediate status texts (04 FF)
_REMOVE = "\nPlease remove card!"
STATUS_TEXTS: dict[int, str] = {
    0x00: "PT is waiting for amount-confirmation",
    0x01: "Please watch PIN-Pad",
    0x02: "Please watch PIN-Pad",
    0x03: "Not accepted",
    0x04: "PT is waiting for response from FEP",
    0x05: "PT is sending auto-reversal",
    0x06: "PT is sending post-bookings",
    0x07: "Card not admitted",
    0x08: "Card unknown / undefined",
    0x09: "Expired card",
    0x0A: "Insert card",
    0x0B: "Please remove card!",
    0x0C: "Card not readable",
    0x0D: "Processing error",
    0x0E: "Please wait...",
    0x0F: "PT is commencing an automatic end-of-day batch",
    0x10: "Invalid card",
    0x11: "Balance display",
    0x12: "System malfunction",
    0x13: "Payment not possible",
    0x14: "Credit not sufficient",
    0x15: "Incorrect PIN",
    0x16: "Limit not sufficient",
    0x17: "Please wait...",
    0x18: "PIN try limit exceeded",
    0x19: "Card-data incorrect",
    0x1A: "Service-mode",
    0x1B: "Approved. Please fill-up",
    0x1C: "Approved. Please take goods",
    0x1D: "Declined",
    0x26: "PT is waiting for input of the mobile-number",
    0x27: "PT is waiting for repeat of mobile-number",
    0x28: "Currency selection, please wait...",
    0x29: "Language selection, please wait...",
    0x2A: "For loading please insert card",
    0x2B: "Emergency transaction, please wait",
    0x2C: "Application selection, please wait",
    0x68: "PT has detected customer card insertion",
    0x69: "Please select DCC",
    0xC7: "PT is waiting for input of the mileage",
    0xC8: "PT is waiting for cashier",
    0xC9: "PT is commencing an automatic diagnosis",
    0xCA: "PT is commencing an automatic initialisation",
    0xCB: "Merchant-journal full",
    0xCC: "Debit advice not possible, PIN required",
    0xD2: "Connecting dial-up",
    0xD3: "Dial-up connection made",
    0xE0: "PT is waiting for application-selection",
    0xE1: "PT is waiting for language-selection",
    0xE2: "PT requests to use the cleaning card",
    0xF1: "Offline",
    0xF2: "Online",
    0xF3: "Offline transaction",
}
# 41..67: the text of (code - 40) followed by "Please remove card!"; 4B is that line alone; the spec gives 4A
# no text
for _code in range(0x41, 0x68):
    _base = STATUS_TEXTS.get(_code - 0x40)
    if _code == 0x4B:
        STATUS_TEXTS[_code] = "Please remove card!"
    elif _base is not None and _code != 0x4A:
        STATUS_TEXTS[_code] = _base + _REMOVE

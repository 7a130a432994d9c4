"""ZVT tables as data (``docs/protocols/zvt-link.md``): command names, link bytes, bounds, error reasons. The APDU
layer's tables (BMPs, layouts, texts) are in ``protocols/zvt/bmps.py``."""

from __future__ import annotations

from protocols.checksums import crc16_kermit  # noqa: F401 - the link's CRC, used by the reference

DLE, STX, ETX, ACK, NAK = 0x10, 0x02, 0x03, 0x06, 0x15
MAX_APDU = 5 + 65535        # TW_MAX_ZVT_APDU: a 5-byte header (FF + 2-byte length) and the largest data

COMMANDS = {
    (0x06, 0x00): "registration", (0x06, 0x01): "authorisation", (0x06, 0x02): "log_off",
    (0x06, 0x0F): "completion", (0x06, 0x1E): "abort", (0x06, 0xB0): "abort",
    (0x06, 0x10): "send_turnover_totals", (0x06, 0x20): "repeat_receipt", (0x06, 0x22): "preauthorisation",
    (0x06, 0x23): "partial_reversal", (0x06, 0x24): "book_total", (0x06, 0x30): "reversal",
    (0x06, 0x31): "refund", (0x06, 0x50): "end_of_day", (0x06, 0x70): "diagnosis",
    (0x06, 0x93): "initialisation", (0x05, 0x01): "status_enquiry", (0x06, 0x1A): "print_configuration",
    (0x08, 0x10): "software_update", (0x06, 0xD1): "print_line", (0x06, 0xD3): "print_text_block",
    (0x04, 0x0F): "status_information", (0x04, 0xFF): "intermediate_status", (0x06, 0xC0): "read_card",
    (0x06, 0xE0): "show_text", (0x80, 0x00): "ack",
}


def command_name(cls: int, instr: int) -> str:
    if cls == 0x84:
        return "nack"
    return COMMANDS.get((cls, instr), "unknown")


ERRORS = {
    "unexpected_byte": "A byte outside any frame that is not a link control byte.",
    "bad_escape": "A DLE inside a frame followed by a byte that is not DLE, ETX or STX.",
    "frame_restarted": "A new frame started before the previous one ended.",
    "frame_too_long": "A frame longer than the largest APDU.",
    "short_apdu": "An APDU too short to hold its header.",
    "apdu_length_mismatch": "An APDU whose length field disagrees with its data.",
    "truncated": "The stream ended inside a command.",
    # APDU layer (docs/protocols/zvt.md section 7)
    "unknown_bmp": "A BMP tag the BMP table does not define; the rest of the BMP stream was not decoded.",
    "bmp_overrun": "A BMP whose length runs past the end of its APDU.",
    "bad_llvar": "A BMP length byte that is not F0 to F9.",
    "bad_bcd": "A BCD field holding a nibble that is not a decimal digit.",
    "bad_field_length": "A field whose length is cut off, malformed, or does not fit its format.",
    "bad_tlv": "A TLV object whose tag or length is malformed or runs past the end of its container.",
    "tlv_too_deep": "TLV objects nested deeper than the decoder's limit.",
    "missing_field": "An APDU without a field its command requires.",
}


"""The bytes one till's devices put on their wires, per device, built from the protocols' specs and not from the
decoders (so a wrong rule in a decoder shows up as a failing session test, not as a matching pair of mistakes).

- scanner: a serial scanner sending AIM identifiers and CR LF (`docs/protocols/scanner.md`);
- scale: NCI general protocol, the till polls ``W`` (`docs/protocols/scale.md` section 3);
- display: an Epson DM-D customer display, 20 x 2 (`docs/protocols/display.md`);
- terminal: ZVT over TCP, bare APDUs (PA00P015; the APDU helpers of ``simulator.zvt_dialogues``);
- printer: ESC/POS written by python-escpos (a dev extra, imported lazily) and the printer's status replies.

No full card number is ever built: the terminal sends the PAN as ZVT allows a device to, with the middle digits
already masked (``E`` nibbles), so recordings of these sessions hold no card data at all.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from simulator.displays import epson_update
from simulator.gs1 import with_check_digit
from simulator.zvt_dialogues import ACK_APDU, amount, apdu, bcd, currency, llvar

CRLF = b"\r\n"

# --- scanner ---------------------------------------------------------------------------------------------------


def ean13_label(body: str) -> tuple[str, bytes]:
    """An EAN-13 read (AIM ``]E0``): the 13 digits (check digit added to the 12-digit ``body``) and the wire bytes."""
    if len(body) != 12 or not body.isdigit():
        raise ValueError(f"an EAN-13 body is 12 digits, not {body!r}")
    gtin = with_check_digit(body)
    return gtin, b"]E0" + gtin.encode() + CRLF


def gs1_databar_label(gtin13_body: str, net_grams: int, price_minor: int) -> tuple[str, bytes]:
    """A variable-measure GS1 DataBar Expanded read (AIM ``]e0``): (01) a GTIN-14 with indicator 9, (3103) the net
    weight in kg with 3 decimals, (3922) the price with 2 decimals (last, so no FNC1 separator is needed)."""
    gtin14 = with_check_digit("9" + gtin13_body)
    text = f"01{gtin14}3103{net_grams:06d}3922{price_minor:04d}"
    return text, b"]e0" + text.encode() + CRLF


# --- scale (NCI) -----------------------------------------------------------------------------------------------

NCI_WEIGHT_POLL = b"W\r"
_NCI_MOTION, _NCI_AT_ZERO = 0x01, 0x02


def nci_weight_reply(grams: int, *, motion: bool) -> bytes:
    """``LF weight CR LF status CR ETX``; the weight in kg with 3 decimals; status byte 1 carries motion and
    at-zero (bits 4 and 5 always set), byte 2 nothing to report."""
    flags = 0x30 | (_NCI_MOTION if motion else 0) | (_NCI_AT_ZERO if grams == 0 else 0)
    weight = f"{grams // 1000:03d}.{grams % 1000:03d}KG".encode()
    return b"\n" + weight + b"\r\n" + bytes([flags, 0x30]) + b"\r\x03"


# --- customer display (Epson DM-D, 20 x 2) -----------------------------------------------------------------------

DISPLAY_COLUMNS = 20


def display_row(left: str, right: str = "") -> str:
    room = DISPLAY_COLUMNS - len(right) - (1 if right else 0)
    return (left[:room].ljust(DISPLAY_COLUMNS - len(right)) + right)[:DISPLAY_COLUMNS]


def display_reset(upper: str, lower: str) -> bytes:
    """ESC @ (initialise), US X 4 (full brightness), then the first screen."""
    return b"\x1b\x40\x1f\x58\x04" + display_screen(upper, lower)


def display_screen(upper: str, lower: str) -> bytes:
    return epson_update(display_row(upper), display_row(lower))


# --- payment terminal (ZVT over TCP) -----------------------------------------------------------------------------

ZVT_ACK = ACK_APDU
ZVT_PASSWORD = "000000"
#: the groups of BMP 60 (the end-of-day totals record), in the order of its layout (PA00P015 BMP 60)
TOTALS_GROUPS = ("girocard", "jcb", "eurocard", "amex", "visa", "diners", "other")


def zvt_registration(config: int, cur: str) -> bytes:
    """06 00: password, config byte (ECR prints payment and administration receipts, wants intermediate status),
    currency."""
    return apdu(0x06, 0x00, bcd(ZVT_PASSWORD) + bytes([config]) + bcd(f"{int(cur):04d}"))


def zvt_authorisation(amount_minor: int, cur: str) -> bytes:
    return apdu(0x06, 0x01, amount(amount_minor) + currency(cur))


def zvt_end_of_day() -> bytes:
    return apdu(0x06, 0x50, bcd(ZVT_PASSWORD))


def zvt_intermediate_status(code: int) -> bytes:
    """04 FF with the status byte and no timeout (PA00P015 intermediate status: 0A insert card, 0E please wait,
    17 please wait (end-of-day running), 1B present card)."""
    return apdu(0x04, 0xFF, bytes([code]))


def zvt_completion(terminal_id: str) -> bytes:
    """06 0F with the terminal ID (29)."""
    return apdu(0x06, 0x0F, b"\x29" + bcd(terminal_id))


def zvt_abort(result: int) -> bytes:
    return apdu(0x06, 0x1E, bytes([result]))


def zvt_print_line(text: str) -> bytes:
    """06 D1, attribute 00, the text in CP437."""
    return apdu(0x06, 0xD1, b"\x00" + text.encode("cp437"))


@dataclass(frozen=True)
class CardResult:
    """What a terminal reports about one authorisation (04 0F). ``masked_pan`` has ``*`` for the digits the
    terminal itself masked; they travel as ``E`` nibbles."""

    result: int
    amount_minor: int
    currency: str
    trace: str
    receipt_no: str
    time_hhmmss: str
    date_mmdd: str
    terminal_id: str
    masked_pan: str
    card_name: str
    auth_code: str
    aid: str
    technology: int  # TLV 1F12: 00 swipe, 01 chip, 02 contactless


def zvt_status_information(r: CardResult) -> bytes:
    pan_nibbles = r.masked_pan.replace("*", "E")
    if len(pan_nibbles) % 2:
        pan_nibbles += "F"
    data = (b"\x27" + bytes([r.result]) + amount(r.amount_minor) + b"\x0b" + bcd(r.trace)
            + b"\x0c" + bcd(r.time_hhmmss) + b"\x0d" + bcd(r.date_mmdd) + b"\x29" + bcd(r.terminal_id)
            + currency(r.currency) + b"\x87" + bcd(r.receipt_no)
            + b"\x22" + llvar(bytes.fromhex(pan_nibbles)) + b"\x8b" + llvar(r.card_name.encode("cp437")))
    if r.result == 0:
        data += b"\x3b" + r.auth_code.encode("ascii").ljust(8)[:8] + b"\xba" + bytes.fromhex(r.aid)
    tlv = b"\x1f\x12\x01" + bytes([r.technology])
    data += b"\x06" + bytes([len(tlv)]) + tlv
    return apdu(0x04, 0x0F, data)


def zvt_totals(receipt_from: str, receipt_to: str, groups: dict[str, tuple[int, int]]) -> bytes:
    """BMP 60 (LLL): receipt numbers from/to, then count (binary) and turnover (6 B BCD) for every group."""
    unknown = set(groups) - set(TOTALS_GROUPS)
    if unknown:
        raise ValueError(f"unknown totals group(s) {sorted(unknown)}; groups: {', '.join(TOTALS_GROUPS)}")
    body = bcd(receipt_from) + bcd(receipt_to)
    for name in TOTALS_GROUPS:
        count, turnover = groups.get(name, (0, 0))
        body += bytes([count]) + bcd(f"{turnover:012d}")
    return b"\x60" + llvar(body, digits=3)


def zvt_eod_status_information(total_minor: int, trace: str, time_hhmmss: str, date_mmdd: str, terminal_id: str,
                               totals: bytes) -> bytes:
    data = (b"\x27\x00" + amount(total_minor) + b"\x0b" + bcd(trace) + b"\x0c" + bcd(time_hhmmss)
            + b"\x0d" + bcd(date_mmdd) + b"\x29" + bcd(terminal_id) + totals)
    return apdu(0x04, 0x0F, data)


# --- receipt printer (ESC/POS) -----------------------------------------------------------------------------------

#: python-escpos profile whose code pages our ``generic`` profile numbers the same way (see simulator.receipts)
PRINTER_PROFILE = "TM-T88IV"
#: characters per line, font A, 80 mm paper
PRINTER_COLUMNS = 42
#: DLE EOT 1 (printer status) and the printer's replies: bit 2 = drawer kick connector pin 3 high (drawer open)
DLE_EOT_PRINTER_STATUS = b"\x10\x04\x01"
STATUS_DRAWER_CLOSED = b"\x12"
STATUS_DRAWER_OPEN = b"\x16"


def money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def columns(left: str, right: str, width: int = PRINTER_COLUMNS) -> str:
    """``left`` and ``right`` on one line, the right part flush with the right margin."""
    left = left[:width - len(right) - 1]
    return left + " " * (width - len(left) - len(right)) + right


class ReceiptWriter:
    """ESC/POS built with python-escpos, one ``write()`` at a time: a till sends a receipt in a few writes, and
    each write becomes a chunk."""

    def __init__(self) -> None:
        try:
            from escpos.printer import Dummy
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("simulator.till_wire needs python-escpos (the dev extra): "
                               "pip install -e '.[dev]'") from exc
        self.p = Dummy(profile=PRINTER_PROFILE)

    def take(self) -> bytes:
        """The bytes built since the last ``take``: one write to the printer."""
        data = self.p.output
        self.p.clear()
        return data

    def init(self) -> None:
        self.p.hw("INIT")

    def heading(self, text: str) -> None:
        self.p.set(align="center", bold=True, double_width=True, double_height=True)
        self.p.text(text + "\n")
        self.p.set(align="center", bold=False, normal_textsize=True)

    def centred(self, *lines: str) -> None:
        self.p.set(align="center", bold=False, normal_textsize=True)
        for line in lines:
            self.p.text(line + "\n")

    def lines(self, *lines: str) -> None:
        self.p.set(align="left", bold=False, normal_textsize=True)
        for line in lines:
            self.p.text(line + "\n")

    def rule(self) -> None:
        self.lines("-" * PRINTER_COLUMNS)

    def total(self, text: str) -> None:
        self.p.set(align="right", bold=True, double_height=True)
        self.p.text(text + "\n")
        self.p.set(align="left", bold=False, normal_textsize=True)

    def barcode(self, data: str) -> None:
        self.p.set(align="center")
        with contextlib.redirect_stdout(io.StringIO()):  # python-escpos prints notices for some barcodes
            self.p.barcode("{B" + data, "CODE128", function_type="B")
        self.p.set(align="left")

    def cut(self) -> None:
        self.p.cut()

    def kick_drawer(self) -> None:
        self.p.cashdraw(2)

"""The bundled till sessions that ``make run`` replays: one day of one till at the demo store, as the wires
between the till and its devices carried it, both directions, with the timing a shop floor gives them.

1. ``grocery-sale``: the till registers at the terminal; the cashier scans five articles (one twice, one a
   variable-measure GS1 DataBar label), weighs bananas on the scale, the display follows each item and shows the
   total, the customer pays by card (ZVT, approved) and the printer prints the receipt with the card slip.
2. ``declined-card-cash``: three articles, the card is declined, the customer pays cash; the receipt shows the
   cash tendered and the change, the printer kicks the drawer open and the till polls the drawer until it is
   closed again.
3. ``end-of-day``: the terminal's end-of-day (ZVT 06 50) with its totals, and the till's Z report.

The amounts agree across devices (items and weights = display total = payment amount = receipt total; the
end-of-day totals = the day's approved card payment), because each figure is computed once, here, and every
device's bytes are built from it. Deterministic: no random, no clock; ``build_sessions()`` gives the same bytes
on every run.

    python -m simulator.till_sessions --out sessions/till

writes ``<name>.tws`` per session (``write_tws``; needs ``bridge.recording``) and, so the content is reviewable
without it, ``<name>/<device>.<direction>.bin`` for every device and direction that carried bytes
(``--bin-only`` writes just those). Devices, protocols and options: ``docs/sessions.md``.
"""

from __future__ import annotations

import argparse
import calendar
import datetime
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from simulator.captures import write_captures
from simulator.gs1 import with_check_digit
from simulator.till_timeline import FROM_DEVICE, SECOND, TO_DEVICE, Chunk, Timeline, split_at
from simulator.till_wire import (
    DLE_EOT_PRINTER_STATUS, NCI_WEIGHT_POLL, STATUS_DRAWER_CLOSED, STATUS_DRAWER_OPEN, ZVT_ACK, CardResult,
    ReceiptWriter, columns, display_reset, display_row, display_screen, ean13_label, gs1_databar_label, money,
    nci_weight_reply, zvt_abort, zvt_authorisation, zvt_completion, zvt_end_of_day, zvt_eod_status_information,
    zvt_intermediate_status, zvt_print_line, zvt_registration, zvt_status_information, zvt_totals,
)


@dataclass
class Device:
    name: str
    protocol: str
    options: dict
    transport: str


@dataclass
class Session:
    name: str
    site: str
    till: str
    devices: list[Device]
    #: (t_ns offset from the session start, device name, "to_device" | "from_device", bytes), sorted by time
    chunks: list[Chunk]
    #: when the session starts, ns since the Unix epoch (UTC)
    start_ns: int = 0


SITE = "demo-store"
TILL = "till-1"
#: the default day: Monday 2026-11-23, the first session at 08:00 UTC (09:00 in the store)
DEFAULT_START_NS = calendar.timegm((2026, 11, 23, 8, 0, 0)) * SECOND
#: the store's clock (printed on receipts, sent by the terminal): CET, UTC+1 in November
STORE_UTC_OFFSET_NS = 3600 * SECOND
#: each session's start after the day's first (the day's trading between them is not part of the demo)
SESSION_STARTS_NS = {"grocery-sale": 0, "declined-card-cash": (2 * 3600 + 15 * 60) * SECOND,
                     "end-of-day": (11 * 3600 + 30 * 60) * SECOND}

#: what the bridge needs to tap and decode each device (protocol options are ``protocols.Decoder`` options)
DEVICES = (
    Device("scanner", "scanner", {"suffix": "crlf", "aim": "on"}, "serial:///dev/ttyUSB0?baudrate=9600"),
    Device("scale", "scale-nci", {},
           "tap+serial:///dev/ttyS0?device=/dev/ttyUSB1&baudrate=9600&bytesize=7&parity=E&stopbits=1"),
    Device("display", "display-epson", {"columns": 20, "rows": 2},
           "tap+serial:///dev/ttyS1?device=/dev/ttyUSB2&baudrate=9600"),
    Device("terminal", "zvt-tcp", {}, "tap+tcp://0.0.0.0:20007?upstream=192.168.1.60:20007"),
    Device("printer", "escpos", {"profile": "generic"}, "tap+tcp://0.0.0.0:9100?upstream=192.168.1.50:9100"),
)

# --- the store's data ------------------------------------------------------------------------------------------

CURRENCY = "978"  # EUR
TERMINAL_ID = "52500038"
ZVT_CONFIG = 0x8E  # ECR prints payment and administration receipts, wants intermediate status, controls admin
CASHIER = "Anna"
HEADER = ("1 Market Square", "10115 Berlin", "VAT ID DE 123 456 789")
VAT_RATES = {"A": 7, "B": 19}


@dataclass(frozen=True)
class Article:
    name: str
    ean_body: str   # the first 12 digits of the EAN-13 (the check digit is computed)
    price_minor: int
    vat: str = "A"
    short: str = ""  # the name on the 20-column display, when the full one does not fit beside a price

    @property
    def display_name(self) -> str:
        return self.short or self.name


# the store's articles; prices in minor units (per kg for weighed ones)
WHOLE_MILK = Article("Whole milk 1L", "400123400011", 119)
SOURDOUGH = Article("Sourdough bread", "400123400028", 349)
COFFEE = Article("Coffee beans 500g", "400123400035", 899, short="Coffee 500g")
WATER = Article("Sparkling water 6x1.5L", "400123400042", 399, "B", short="Water 6x1.5L")
OLIVE_OIL = Article("Olive oil 0.5L", "400123400059", 699)
CHOCOLATE = Article("Dark chocolate 100g", "400123400066", 129, short="Chocolate")
#: a variable-measure article: the scale in the deli printed its weight and price on a GS1 DataBar label
GOUDA = Article("Gouda young", "400123400073", 1530, short="Gouda")  # per kg; the label carries the price
#: loose produce, weighed at the till: price per kg
BANANAS = Article("Bananas", "", 199)
#: the till's article file: EAN-13 → article (GOUDA's GTIN-14 on its label is "9" + its EAN-13)
CATALOGUE = {with_check_digit(a.ean_body): a
             for a in (WHOLE_MILK, SOURDOUGH, COFFEE, WATER, OLIVE_OIL, CHOCOLATE, GOUDA)}


@dataclass
class Line:
    """One receipt line: what was sold, for how much, and how (for the detail line above it)."""

    article: Article
    qty: int = 1
    grams: int = 0          # weighed or labelled weight
    amount_minor: int = 0

    @property
    def detail(self) -> str | None:
        if self.qty > 1:
            return f"  {self.qty} x {money(self.article.price_minor)}"
        if self.grams and self.article.ean_body:  # weighed elsewhere: the label gave weight and price
            return f"  {_kg(self.grams)} kg"
        if self.grams:
            return f"  {_kg(self.grams)} kg x {money(self.article.price_minor)} EUR/kg"
        return None


def _kg(grams: int) -> str:
    return f"{grams // 1000}.{grams % 1000:03d}"


def weighed_amount(grams: int, price_per_kg_minor: int) -> int:
    """Weight × price per kg in minor units, rounded half up (integer arithmetic, no float)."""
    return (grams * price_per_kg_minor + 500) // 1000


def vat_included(gross_minor: int, rate: int) -> int:
    """The VAT inside a gross amount, rounded half up."""
    return (2 * gross_minor * rate + 100 + rate) // (2 * (100 + rate))


@dataclass
class Day:
    """What one till's day carries from one session to the next: counters and the tallies of the Z report."""

    receipt_no: int = 231          # the till's receipt counter
    zvt_trace: int = 124           # the terminal's trace number
    zvt_receipt: int = 43          # the terminal's receipt number
    first_receipt: str = ""
    card_approved: list[int] = field(default_factory=list)
    cash_sales: list[int] = field(default_factory=list)
    card_declined: int = 0
    zvt_receipts: list[str] = field(default_factory=list)

    def next_receipt(self) -> str:
        number = f"1-{self.receipt_no:06d}"
        self.receipt_no += 1
        self.first_receipt = self.first_receipt or number
        return number

    def next_trace(self) -> str:
        trace = f"{self.zvt_trace:06d}"
        self.zvt_trace += 1
        return trace

    def next_zvt_receipt(self) -> str:
        """Every authorisation, approved or declined, gets a terminal receipt number (the end-of-day does not)."""
        receipt = f"{self.zvt_receipt:04d}"
        self.zvt_receipt += 1
        self.zvt_receipts.append(receipt)
        return receipt


class Till:
    """The till's side of a session: it moves the timeline and drives each device's wire."""

    def __init__(self, start_ns: int, day: Day):
        self.tl = Timeline()
        self.start_ns = start_ns
        self.day = day
        self.lines: list[Line] = []

    # the store's clock at the current point of the timeline
    def _local(self) -> datetime.datetime:
        seconds = (self.start_ns + STORE_UTC_OFFSET_NS + self.tl.now) // SECOND
        return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)

    def stamp(self) -> str:
        return self._local().strftime("%Y-%m-%d %H:%M")

    def zvt_clock(self) -> tuple[str, str]:
        """The terminal's time (BMP 0C, HHMMSS) and date (BMP 0D, MMDD)."""
        now = self._local()
        return now.strftime("%H%M%S"), now.strftime("%m%d")

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    # --- display ---------------------------------------------------------------------------------------------

    def show(self, upper: str, lower: str, *, reset: bool = False) -> None:
        self.tl.send("display", TO_DEVICE, display_reset(upper, lower) if reset else display_screen(upper, lower))

    def show_item(self, line: Line) -> None:
        self.tl.wait(ms=70)  # the till looks the article up, then updates the display
        name = line.article.display_name
        if line.grams:
            name += f" {_kg(line.grams)}kg"
        self.show_two(name, money(line.amount_minor), "Subtotal", money(self.total_minor))

    def show_two(self, upper: str, upper_right: str, lower: str, lower_right: str) -> None:
        self.show(display_row(upper, upper_right), display_row(lower, lower_right))

    # --- scanner and scale ------------------------------------------------------------------------------------

    def scan(self, article: Article, pause_s: float) -> None:
        self.tl.wait(s=pause_s)
        _, wire = ean13_label(article.ean_body)
        self.tl.send("scanner", FROM_DEVICE, wire)
        for line in self.lines:  # the same article again: one more on its line
            if line.article is article and not line.grams:
                line.qty += 1
                line.amount_minor = line.qty * article.price_minor
                self.show_item(Line(article, 1, 0, article.price_minor))
                return
        line = Line(article, 1, 0, article.price_minor)
        self.lines.append(line)
        self.show_item(line)

    def scan_weighed_label(self, article: Article, grams: int, pause_s: float) -> None:
        self.tl.wait(s=pause_s)
        price = weighed_amount(grams, article.price_minor)
        _, wire = gs1_databar_label(article.ean_body, grams, price)
        self.tl.send("scanner", FROM_DEVICE, wire)
        line = Line(article, 1, grams, price)
        self.lines.append(line)
        self.show_item(line)

    def weigh(self, article: Article, settling_grams: Iterable[int], grams: int, pause_s: float) -> None:
        """The cashier keys the PLU; the till polls ``W`` every 250 ms and the scale answers within ~40 ms, in
        motion while the produce settles, then stable: the till takes the first stable weight."""
        self.tl.wait(s=pause_s)
        for reading in [*settling_grams, grams]:
            self.tl.send("scale", TO_DEVICE, NCI_WEIGHT_POLL)
            self.tl.wait(ms=38)
            self.tl.send("scale", FROM_DEVICE, nci_weight_reply(reading, motion=reading != grams))
            if reading != grams:
                self.tl.wait(ms=212)
        line = Line(article, 1, grams, weighed_amount(grams, article.price_minor))
        self.lines.append(line)
        self.show_item(line)

    # --- payment terminal (ZVT over TCP) ---------------------------------------------------------------------

    def _ecr(self, apdu_bytes: bytes, after_ms: float) -> None:
        self.tl.wait(ms=after_ms)
        self.tl.send("terminal", TO_DEVICE, apdu_bytes)

    def _pt(self, apdu_bytes: bytes, after_ms: float, *, pieces: tuple[int, ...] = (), acked: bool = True) -> None:
        """The terminal sends (in TCP segments cut at ``pieces``); the till acknowledges with 80 00 00."""
        self.tl.wait(ms=after_ms)
        self.tl.send_pieces("terminal", FROM_DEVICE, split_at(apdu_bytes, *pieces) if pieces else [apdu_bytes],
                            gap_ms=2)
        if acked:
            self._ecr(ZVT_ACK, 12)

    def register_terminal(self) -> None:
        self._ecr(zvt_registration(ZVT_CONFIG, CURRENCY), 0)
        self._pt(ZVT_ACK, 45, acked=False)
        self._pt(zvt_completion(TERMINAL_ID), 130, acked=False)
        self._ecr(ZVT_ACK, 10)

    def card_payment(self, approved: bool) -> tuple[CardResult, list[str]]:
        """Authorisation of the basket's total: present card, please wait, the host's answer (04 0F), the slip
        lines for the till to print, then completion (06 0F) or, declined, abort (06 1E) with the result code."""
        amount_minor = self.total_minor
        self._ecr(zvt_authorisation(amount_minor, CURRENCY), 0)
        self._pt(ZVT_ACK, 40, acked=False)
        self._pt(zvt_intermediate_status(0x0A), 260)   # insert / present card
        self._pt(zvt_intermediate_status(0x0E), 3400)  # please wait (online to the host)
        self.tl.wait(ms=1900)
        trace, receipt = self.day.next_trace(), self.day.next_zvt_receipt()
        hhmmss, mmdd = self.zvt_clock()
        result = CardResult(result=0x00 if approved else 0x05, amount_minor=amount_minor, currency=CURRENCY,
                            trace=trace, receipt_no=receipt, time_hhmmss=hhmmss, date_mmdd=mmdd,
                            terminal_id=TERMINAL_ID, masked_pan="476173******0010", card_name="VISA",
                            auth_code="A1B2C3" if approved else "", aid="A000000003", technology=0x02)
        info = zvt_status_information(result)
        self._pt(info, 0, pieces=(3, len(info) // 2))  # header, then the data in two segments
        euros = money(amount_minor).replace(".", ",")
        slip = ["KARTENZAHLUNG", "VISA kontaktlos", "Karte ############0010", f"Terminal-ID {TERMINAL_ID}",
                f"Trace {trace}  Beleg {receipt}", f"Betrag EUR {euros}",
                f"Autorisierung {result.auth_code}" if approved else "Abgelehnt (05)",
                "Zahlung erfolgt" if approved else "Bitte andere Zahlungsart"]
        for text in slip:
            self._pt(zvt_print_line(text), 35)
        if approved:
            self._pt(zvt_completion(TERMINAL_ID), 40, acked=False)
            self.day.card_approved.append(amount_minor)
        else:
            self._pt(zvt_abort(result.result), 40, acked=False)
            self.day.card_declined += 1
        self._ecr(ZVT_ACK, 10)
        return result, slip

    def end_of_day(self) -> list[str]:
        self._ecr(zvt_end_of_day(), 0)
        self._pt(ZVT_ACK, 45, acked=False)
        self._pt(zvt_intermediate_status(0x17), 300)   # please wait (end-of-day with the host)
        self.tl.wait(ms=8200)
        trace = self.day.next_trace()
        hhmmss, mmdd = self.zvt_clock()
        card_total = sum(self.day.card_approved)
        receipts = self.day.zvt_receipts
        totals = zvt_totals(receipts[0], receipts[-1], {"visa": (len(self.day.card_approved), card_total)})
        eod = zvt_eod_status_information(card_total, trace, hhmmss, mmdd, TERMINAL_ID, totals)
        self._pt(eod, 0, pieces=(3, 20, 45))
        euros = money(card_total).replace(".", ",")
        count = len(self.day.card_approved)
        report = ["KASSENSCHNITT", f"Terminal-ID {TERMINAL_ID}", f"Trace {trace}",
                  f"Belege {receipts[0]} - {receipts[-1]}", f"VISA        {count:3d}  EUR {euros:>9}",
                  f"GESAMT      {count:3d}  EUR {euros:>9}", "Kassenschnitt erfolgreich"]
        for text in report:
            self._pt(zvt_print_line(text), 35)
        self._pt(zvt_completion(TERMINAL_ID), 40, acked=False)
        self._ecr(ZVT_ACK, 10)
        return report

    # --- printer --------------------------------------------------------------------------------------------

    def _print(self, writes: list[bytes], first_after_ms: float) -> None:
        """The till's writes to the printer, 25 ms apart (each one a chunk on the tap)."""
        self.tl.wait(ms=first_after_ms)
        for k, data in enumerate(writes):
            if k:
                self.tl.wait(ms=25)
            self.tl.send("printer", TO_DEVICE, data)

    def print_receipt(self, tender: list[str], slip: list[str], kick_drawer: bool) -> str:
        number = self.day.next_receipt()
        w = ReceiptWriter()
        writes = []
        w.init()
        w.heading("DEMO STORE")
        w.centred(*HEADER, "")
        w.lines(columns(self.stamp(), "Till 1"), f"Cashier: {CASHIER}")
        w.rule()
        writes.append(w.take())
        for line in self.lines:
            if line.detail:
                w.lines(line.detail)
            w.lines(columns(line.article.name, f"{money(line.amount_minor)} {line.article.vat}"))
        w.rule()
        writes.append(w.take())
        total = self.total_minor
        w.total(f"TOTAL EUR {money(total)}")
        for code, rate in VAT_RATES.items():
            gross = sum(line.amount_minor for line in self.lines if line.article.vat == code)
            if gross:
                w.lines(f"{code} VAT {rate}% of {money(gross)}: {money(vat_included(gross, rate))}")
        w.lines(*tender)
        writes.append(w.take())
        if slip:
            w.lines("", *slip, "")
        w.lines(f"Receipt No. {number}")
        w.barcode(number)
        w.centred("Thank you for shopping with us!")
        w.cut()
        writes.append(w.take())
        self._print(writes, 300)
        if kick_drawer:
            w.kick_drawer()
            self._print([w.take()], 20)
        return number

    def watch_drawer(self, polls_open: int) -> None:
        """The till polls DLE EOT 1 every 500 ms until the drawer is closed; the printer answers within 20 ms."""
        for k in range(polls_open + 1):
            self._print([DLE_EOT_PRINTER_STATUS], 500 if k else 60)
            self.tl.wait(ms=18)
            self.tl.send("printer", FROM_DEVICE, STATUS_DRAWER_OPEN if k < polls_open else STATUS_DRAWER_CLOSED)

    def print_z_report(self, terminal_report: list[str]) -> None:
        day = self.day
        card, cash = sum(day.card_approved), sum(day.cash_sales)
        w = ReceiptWriter()
        w.init()
        w.heading("Z REPORT")
        w.centred("DEMO STORE", "Till 1", "")
        w.lines(columns(self.stamp(), f"Z No. {1:04d}"), f"Cashier: {CASHIER}")
        w.rule()
        last = f"1-{day.receipt_no - 1:06d}"
        w.lines(columns("Receipts", f"{day.first_receipt} to {last}"),
                columns("Sales", str(len(day.card_approved) + len(day.cash_sales))))
        w.rule()
        writes = [w.take()]
        w.lines(columns(f"Card payments {len(day.card_approved):3d}", money(card)),
                columns(f"Cash payments {len(day.cash_sales):3d}", money(cash)),
                f"Card declined {day.card_declined:3d}")
        w.rule()
        w.total(f"TOTAL EUR {money(card + cash)}")
        writes.append(w.take())
        w.lines("", "Payment terminal:", *terminal_report, "")
        w.centred("End of day")
        w.cut()
        writes.append(w.take())
        self._print(writes, 400)


# --- the three sessions -----------------------------------------------------------------------------------------


def grocery_sale(start_ns: int, day: Day) -> list[Chunk]:
    till = Till(start_ns, day)
    till.register_terminal()
    till.tl.wait(ms=500)
    till.show("   WELCOME TO", "   DEMO STORE", reset=True)
    till.scan(WHOLE_MILK, 4.0)
    till.scan(WHOLE_MILK, 1.6)
    till.scan(SOURDOUGH, 3.1)
    till.scan(COFFEE, 2.2)
    till.scan_weighed_label(GOUDA, 254, 3.4)
    till.weigh(BANANAS, (512, 801, 729), 734, 4.1)
    till.tl.wait(s=3.0)
    till.show_two("TOTAL", "", "EUR", money(till.total_minor))
    till.tl.wait(s=1.5)
    result, slip = till.card_payment(approved=True)
    tender = [columns("VISA contactless", f"EUR {money(result.amount_minor)}"),
              columns("Card ************0010", f"Auth {result.auth_code}")]
    till.print_receipt(tender, slip, kick_drawer=False)
    till.tl.wait(s=1.2)
    till.show("     THANK YOU", "   SEE YOU SOON")
    return till.tl.chunks


def declined_card_cash(start_ns: int, day: Day) -> list[Chunk]:
    till = Till(start_ns, day)
    till.show("   WELCOME TO", "   DEMO STORE", reset=True)
    till.scan(WATER, 3.5)
    till.scan(OLIVE_OIL, 2.4)
    till.scan(CHOCOLATE, 1.9)
    till.tl.wait(s=2.5)
    total = till.total_minor
    till.show_two("TOTAL", "", "EUR", money(total))
    till.tl.wait(s=1.5)
    till.card_payment(approved=False)
    till.tl.wait(ms=300)
    till.show_two("Card declined", "", "EUR", money(total))
    given = (total // 1000 + 1) * 1000  # the customer hands over a 20 euro note
    till.tl.wait(s=9.0)
    till.show_two("Cash", money(given), "Change", money(given - total))
    day.cash_sales.append(total)
    tender = [columns("Cash", f"EUR {money(given)}"), columns("Change", f"EUR {money(given - total)}")]
    till.print_receipt(tender, [], kick_drawer=True)
    till.watch_drawer(polls_open=9)
    till.tl.wait(s=0.8)
    till.show("     THANK YOU", "   SEE YOU SOON")
    return till.tl.chunks


def end_of_day(start_ns: int, day: Day) -> list[Chunk]:
    till = Till(start_ns, day)
    till.show("    TILL CLOSED", "", reset=True)
    till.tl.wait(s=2.0)
    report = till.end_of_day()
    till.print_z_report(report)
    return till.tl.chunks


STORIES = (("grocery-sale", grocery_sale), ("declined-card-cash", declined_card_cash), ("end-of-day", end_of_day))


def build_sessions(start_ns: int = DEFAULT_START_NS) -> list[Session]:
    """The day's three sessions, the first starting at ``start_ns`` (ns since the epoch, UTC)."""
    day = Day()
    sessions = []
    for name, story in STORIES:
        session_start = start_ns + SESSION_STARTS_NS[name]
        chunks = story(session_start, day)
        sessions.append(Session(name=name, site=SITE, till=TILL,
                                devices=[Device(d.name, d.protocol, dict(d.options), d.transport) for d in DEVICES],
                                chunks=chunks, start_ns=session_start))
    return sessions


# --- output ---------------------------------------------------------------------------------------------------


def whole_day(sessions: list[Session], name: str = "demo-day") -> Session:
    """The day's sessions as one recording (what ``examples/demo.toml`` replays): every chunk at its offset from
    the first session's start, sessions one after the other (they do not overlap)."""
    first = sessions[0].start_ns
    chunks = [(s.start_ns - first + t, dev, direction, data)
              for s in sessions for t, dev, direction, data in s.chunks]
    if any(a[0] > b[0] for a, b in zip(chunks, chunks[1:])):
        raise ValueError("the sessions overlap; a whole day needs them one after the other")
    return Session(name, sessions[0].site, sessions[0].till, list(sessions[0].devices), chunks, start_ns=first)


def write_tws(session: Session, path) -> None:
    """One session as a ``.tws`` recording (``bridge.recording.tws``), chunk times absolute (start + offset)."""
    from bridge.recording import tws

    start = session.start_ns
    with tws.Writer.create(path, devices=[tws.DeviceInfo(d.name, d.protocol, d.transport, d.options)
                                          for d in session.devices],
                           site=session.site, till=session.till, created_ns=start) as w:
        for t, dev, direction, data in session.chunks:
            w.chunk(start + t, dev, direction, data)


def stream_files(session: Session) -> dict[str, bytes]:
    """``<device>.<direction>.bin`` → every byte that device's wire carried that way, for the directions that
    carried any (in device-table order, to_device first)."""
    streams: dict[tuple[str, str], bytearray] = {}
    for _, dev, direction, data in session.chunks:
        streams.setdefault((dev, direction), bytearray()).extend(data)
    return {f"{d.name}.{direction}.bin": bytes(streams[(d.name, direction)])
            for d in session.devices for direction in (TO_DEVICE, FROM_DEVICE) if (d.name, direction) in streams}


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.till_sessions",
                                     description="Write the bundled till sessions (a .tws recording and the raw "
                                                 "streams per device and direction).",
                                     epilog="example: python -m simulator.till_sessions --out sessions/till")
    parser.add_argument("--out", default=os.path.join("sessions", "till"), help="directory (default sessions/till)")
    parser.add_argument("--bin-only", action="store_true",
                        help="write only <name>/<device>.<direction>.bin, no .tws recordings")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        sessions = build_sessions()
    except RuntimeError as exc:  # python-escpos missing
        print(exc, file=sys.stderr)
        return 2
    for session in sessions:
        for path in write_captures(os.path.join(args.out, session.name), stream_files(session)):
            print(f"wrote {path}")
    if args.bin_only:
        return 0
    try:
        import bridge.recording.tws  # noqa: F401
    except ImportError:
        print("the .tws recordings need bridge.recording.tws, which this tree lacks; the .bin streams were written "
              "(use --bin-only to write only those)", file=sys.stderr)
        return 2
    for session in [*sessions, whole_day(sessions)]:
        path = os.path.join(args.out, f"{session.name}.tws")
        write_tws(session, path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The bundled till sessions (``simulator/till_sessions.py``), decoded the way the bridge decodes them: one
``protocols.Decoder`` per device and direction, built from the session's device table, fed chunk by chunk in
timeline order, the printer's status requests handed to its reply decoder. Each test reads one part of the
story off the events, and the figures that must agree across devices are taken from the events themselves."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass

import pytest

from protocols.decoder import Decoder
from simulator import till_sessions
from simulator.till_sessions import CATALOGUE, build_sessions, stream_files, write_tws

SESSION_NAMES = ("grocery-sale", "declined-card-cash", "end-of-day")
DEVICE_NAMES = ("scanner", "scale", "display", "terminal", "printer")
COMMITTED = os.path.join(os.path.dirname(__file__), os.pardir, "sessions", "till")

ITEM_LINE = re.compile(r"^(?P<name>\S.*?) +(?P<amount>\d+\.\d\d) (?P<vat>[AB])$")
WEIGHED_LINE = re.compile(r"^ +(?P<kg>\d+\.\d{3}) kg x (?P<price>\d+\.\d\d) EUR/kg$")
LABELLED_WEIGHT_LINE = re.compile(r"^ +(?P<kg>\d+\.\d{3}) kg$")
QTY_LINE = re.compile(r"^ +(?P<qty>\d+) x (?P<price>\d+\.\d\d)$")
TOTAL_LINE = re.compile(r"^TOTAL EUR (?P<amount>\d+\.\d\d)$")


def minor(text: str) -> int:
    whole, cents = text.split(".")
    return int(whole) * 100 + int(cents)


def kg_to_grams(text: str) -> int:
    whole, grams = text.split(".")
    return int(whole) * 1000 + int(grams)


@dataclass
class Decoded:
    events: list[tuple[int, str, str, dict]]  # (t_ns offset, device, direction, event)

    def of(self, device: str, etype: str) -> list[dict]:
        return [e["data"] for _, dev, _, e in self.events if dev == device and e["type"] == etype]

    def printed(self) -> list[str]:
        return [data["text"] for data in self.of("printer", "printer.line")]

    def last_screen(self) -> list[str]:
        return self.of("display", "display.text")[-1]["lines"]

    def screens(self) -> list[list[str]]:
        return [data["lines"] for data in self.of("display", "display.text")]


def decode(session) -> Decoded:
    decoders = {(d.name, direction): Decoder(d.protocol, direction, **d.options)
                for d in session.devices for direction in ("to_device", "from_device")}
    events = []
    for t, device, direction, data in session.chunks:
        for event in decoders[(device, direction)].events(data):
            events.append((t, device, direction, event))
            if event["type"] == "printer.status_request":  # what the tap does for the reply decoder
                decoders[(device, "from_device")].note_request(event["data"]["kind"], event["data"]["n"])
    end = session.chunks[-1][0]
    for (device, direction), decoder in decoders.items():
        events.extend((end, device, direction, event) for event in decoder.close_events())
    return Decoded(events)


@pytest.fixture(scope="module")
def sessions():
    return {s.name: s for s in build_sessions()}


@pytest.fixture(scope="module")
def decoded(sessions):
    return {name: decode(s) for name, s in sessions.items()}


def receipt_total(lines: list[str]) -> int:
    totals = [minor(m["amount"]) for m in map(TOTAL_LINE.match, lines) if m]
    assert len(totals) == 1, lines
    return totals[0]


def screen_amount(screen: list[str], label: str) -> int:
    for row in screen:
        if row.startswith(label):
            return minor(row[len(label):].split()[-1])
    raise AssertionError(f"{label!r} not on the display {screen}")


def receipt_amount(lines: list[str], label: str) -> int:
    found = [minor(line.split()[-1]) for line in lines if line.split()[:1] == [label]]
    assert len(found) == 1, (label, lines)
    return found[0]


# --- the timelines ----------------------------------------------------------------------------------------------


def test_the_day_has_three_sessions_of_one_till_with_the_same_five_devices(sessions):
    assert tuple(sessions) == SESSION_NAMES
    for s in sessions.values():
        assert (s.site, s.till) == ("demo-store", "till-1")
        assert tuple(d.name for d in s.devices) == DEVICE_NAMES
    starts = [s.start_ns for s in sessions.values()]
    assert starts == sorted(starts) and starts[0] == till_sessions.DEFAULT_START_NS


@pytest.mark.parametrize("name", SESSION_NAMES)
def test_a_timeline_is_sorted_its_chunks_are_not_empty_and_its_devices_are_declared(sessions, name):
    session = sessions[name]
    declared = {d.name for d in session.devices}
    times = [t for t, _, _, _ in session.chunks]
    assert times == sorted(times) and times[0] >= 0
    for _, device, direction, data in session.chunks:
        assert device in declared
        assert direction in ("to_device", "from_device")
        assert isinstance(data, bytes) and data


@pytest.mark.parametrize("name", SESSION_NAMES)
def test_no_stream_of_any_session_gives_a_protocol_error(decoded, name):
    errors = [(device, direction, e["data"]) for _, device, direction, e in decoded[name].events
              if e["type"] == "protocol.error"]
    assert errors == []


def test_chunks_come_as_the_wires_deliver_them(sessions):
    grocery = sessions["grocery-sale"]
    scans = [(t, data) for t, dev, _, data in grocery.chunks if dev == "scanner"]
    assert all(data.startswith(b"]") and data.endswith(b"\r\n") and data.count(b"\r\n") == 1 for _, data in scans)
    assert all(b - a >= 1_000_000_000 for (a, _), (b, _) in zip(scans, scans[1:])), "a human scans, seconds apart"
    printer_writes = [data for _, dev, _, data in grocery.chunks if dev == "printer"]
    assert len(printer_writes) > 2, "a receipt goes out in a few writes"
    # TCP may cut an APDU: some chunk from the terminal is not a whole APDU (its length byte says more follows)
    terminal = [data for _, dev, direction, data in grocery.chunks if dev == "terminal" and direction == "from_device"]
    assert any(len(data) < 3 or data[2] + 3 != len(data) for data in terminal)
    # a scale answers its poll tens of milliseconds later
    scale = [(t, direction) for t, dev, direction, _ in grocery.chunks if dev == "scale"]
    for (t_poll, d_poll), (t_reply, d_reply) in zip(scale[::2], scale[1::2]):
        assert (d_poll, d_reply) == ("to_device", "from_device")
        assert 10_000_000 <= t_reply - t_poll <= 200_000_000


def test_no_stream_holds_a_card_number(sessions):
    """The terminal sends the PAN already masked (BMP 22 with E nibbles for the middle digits); no ASCII stream
    but the scanner's product codes carries a run of 13 or more digits."""
    pans = 0
    for s in sessions.values():
        for name, data in stream_files(s).items():
            if not name.startswith("scanner."):
                assert re.search(rb"\d{13,}", data) is None, (s.name, name)
            if name == "terminal.from_device.bin":
                for m in re.finditer(rb"\x22\xf0\xf8(.{8})", data, re.DOTALL):  # BMP 22, LLVAR 08: 16 nibbles
                    assert m[1].hex()[6:12] == "eeeeee", m[1].hex()
                    pans += 1
    assert pans == 2  # the approved and the declined authorisation


# --- session 1: grocery sale, card approved -----------------------------------------------------------------------


def test_grocery_sale_scans_five_articles_one_twice_and_a_weighed_gs1_label(decoded):
    scans = decoded["grocery-sale"].of("scanner", "scanner.data")
    assert [s["label"] for s in scans] == ["4001234000114", "4001234000114", "4001234000282", "4001234000350",
                                           "0194001234000735310300025439220389"]
    assert [(s["symbology"], s["aim"]) for s in scans] == [("EAN-13", "]E0")] * 4 + [("GS1 DataBar", "]e0")]
    assert scans[-1]["gs1"] == {"01": "94001234000735", "3103": "000254", "3922": "0389"}


def test_grocery_sale_receipt_lists_each_scanned_article_with_its_quantity(decoded):
    d = decoded["grocery-sale"]
    lines = d.printed()
    counts = Counter(s["label"] for s in d.of("scanner", "scanner.data") if s["symbology"] == "EAN-13")
    items = {m["name"]: minor(m["amount"]) for m in map(ITEM_LINE.match, lines) if m}
    for label, qty in counts.items():
        article = CATALOGUE[label]
        assert items[article.name] == qty * article.price_minor
        if qty > 1:
            assert f"  {qty} x {article.price_minor // 100}.{article.price_minor % 100:02d}" in lines


def test_grocery_sale_weighs_produce_and_prices_weights_from_the_devices(decoded):
    d = decoded["grocery-sale"]
    lines = d.printed()
    weights = d.of("scale", "scale.weight")
    assert [w["stable"] for w in weights] == [False, False, False, True]
    stable = weights[-1]
    assert (stable["value_milli"], stable["unit"]) == (734, "kg")
    assert d.of("scale", "scale.request") == [{"command": "W", "name": "weight"}] * len(weights)
    # loose produce: the stable weight on the receipt, weight x price per kg on the next line
    k = next(i for i, line in enumerate(lines) if WEIGHED_LINE.match(line))
    m = WEIGHED_LINE.match(lines[k])
    assert kg_to_grams(m["kg"]) == stable["value_milli"]
    assert minor(ITEM_LINE.match(lines[k + 1])["amount"]) == (stable["value_milli"] * minor(m["price"]) + 500) // 1000
    # the variable-measure label: its weight (3103) and price (3922) on the receipt
    numbers = d.of("scanner", "scanner.data")[-1]["gs1_numbers"]
    k = next(i for i, line in enumerate(lines) if LABELLED_WEIGHT_LINE.match(line))
    assert kg_to_grams(LABELLED_WEIGHT_LINE.match(lines[k])["kg"]) == numbers["3103"]["value"]
    assert numbers["3103"]["decimals"] == 3 and numbers["3922"]["decimals"] == 2
    assert minor(ITEM_LINE.match(lines[k + 1])["amount"]) == numbers["3922"]["value"]


def test_grocery_sale_amounts_agree_across_display_terminal_and_printer(decoded):
    d = decoded["grocery-sale"]
    lines = d.printed()
    items = [minor(m["amount"]) for m in map(ITEM_LINE.match, lines) if m]
    assert len(items) == 5
    total = receipt_total(lines)
    assert sum(items) == total
    # the display followed every item (its running subtotal) and showed the total
    subtotals = [screen_amount(s, "Subtotal") for s in d.screens() if s[1].startswith("Subtotal")]
    assert subtotals[-1] == total and subtotals == sorted(subtotals) and len(subtotals) == 6
    total_screen = next(s for s in d.screens() if s[0].startswith("TOTAL"))
    assert screen_amount(total_screen, "EUR") == total
    # the terminal was asked for that amount and approved it
    requests = d.of("terminal", "payment.request")
    assert [r["kind"] for r in requests] == ["registration", "authorization"]
    assert (requests[1]["amount_minor"], requests[1]["currency"]) == (total, "978")
    statuses = d.of("terminal", "payment.status")
    assert [s["code"] for s in statuses] == [0x0A, 0x0E]
    [result] = d.of("terminal", "payment.result")
    assert result["approved"] is True and result["result_code"] == "00"
    assert (result["amount_minor"], result["currency"]) == (total, "978")
    assert result["pan"] == "476173******0010" and result["entry"] == "contactless"
    # the till printed the terminal's slip lines on the receipt, after the total
    slip = [r["text"] for r in d.of("terminal", "payment.receipt_line")]
    assert slip and lines[lines.index(slip[0]):lines.index(slip[0]) + len(slip)] == slip
    assert f"Betrag EUR {total // 100},{total % 100:02d}" in slip


def test_grocery_sale_receipt_has_a_barcode_of_its_number_and_is_cut(decoded):
    d = decoded["grocery-sale"]
    [number] = [line.removeprefix("Receipt No. ") for line in d.printed() if line.startswith("Receipt No. ")]
    assert d.of("printer", "printer.barcode") == [{"symbology": "CODE128", "data": number}]
    assert len(d.of("printer", "printer.cut")) == 1
    assert d.of("printer", "drawer.kick") == []


# --- session 2: card declined, then cash ---------------------------------------------------------------------------


def test_declined_card_is_reported_by_the_terminal_and_nothing_is_approved(decoded):
    d = decoded["declined-card-cash"]
    lines = d.printed()
    total = receipt_total(lines)
    [request] = d.of("terminal", "payment.request")
    assert (request["kind"], request["amount_minor"]) == ("authorization", total)
    results = d.of("terminal", "payment.result")
    assert [(r["approved"], r["result_code"]) for r in results] == [(False, "05"), (False, "05")]  # 04 0F, 06 1E
    assert results[0]["amount_minor"] == total
    assert "Abgelehnt (05)" in [r["text"] for r in d.of("terminal", "payment.receipt_line")]


def test_cash_tender_and_change_agree_on_receipt_and_display(decoded):
    d = decoded["declined-card-cash"]
    lines = d.printed()
    total = receipt_total(lines)
    assert sum(minor(m["amount"]) for m in map(ITEM_LINE.match, lines) if m) == total
    given, change = receipt_amount(lines, "Cash"), receipt_amount(lines, "Change")
    assert given - change == total and change > 0
    cash_screen = next(s for s in d.screens() if s[0].startswith("Cash"))
    assert (screen_amount(cash_screen, "Cash"), screen_amount(cash_screen, "Change")) == (given, change)
    declined_screen = next(s for s in d.screens() if s[0].startswith("Card declined"))
    assert screen_amount(declined_screen, "EUR") == total
    assert len(d.of("printer", "printer.cut")) == 1


def test_the_printer_kicks_the_drawer_and_reports_it_open_then_closed(decoded):
    d = decoded["declined-card-cash"]
    printer = [(t, e["type"], e["data"]) for t, dev, _, e in d.events if dev == "printer"]
    kicks = [(t, data) for t, etype, data in printer if etype == "drawer.kick"]
    assert [data for _, data in kicks] == [{"pin": 2, "on_ms": 100, "off_ms": 100}]
    states = [(t, data["open"]) for t, etype, data in printer if etype == "drawer.status"]
    assert all(t > kicks[0][0] for t, _ in states)
    opened = [o for _, o in states]
    assert opened[0] is True and opened[-1] is False
    assert opened == sorted(opened, reverse=True), "open, open, …, then closed"
    requests = d.of("printer", "printer.status_request")
    assert requests == [{"kind": "printer", "n": 1}] * len(states)


# --- session 3: end of day ---------------------------------------------------------------------------------------


def test_end_of_day_totals_equal_the_days_approved_card_payment(decoded):
    approved = [r for r in decoded["grocery-sale"].of("terminal", "payment.result") if r["approved"]]
    approved += [r for r in decoded["declined-card-cash"].of("terminal", "payment.result") if r["approved"]]
    d = decoded["end-of-day"]
    assert [r["kind"] for r in d.of("terminal", "payment.request")] == ["eod"]
    [eod] = d.of("terminal", "payment.eod")
    assert eod["count"] == len(approved) == 1
    assert eod["amount_minor"] == sum(r["amount_minor"] for r in approved)
    assert eod["totals"] == [{"card": "Visa", "count": 1, "amount_minor": approved[0]["amount_minor"]}]
    assert d.of("terminal", "payment.result") == []


def test_z_report_figures_match_the_terminal_and_the_days_receipts(decoded):
    d = decoded["end-of-day"]
    [eod] = d.of("terminal", "payment.eod")
    lines = d.printed()
    assert lines[0] == "Z REPORT"
    card = re.match(r"^Card payments +(\d+) +(\d+\.\d\d)$", next(x for x in lines if x.startswith("Card payments")))
    assert (int(card[1]), minor(card[2])) == (eod["count"], eod["amount_minor"])
    cash_sale = receipt_total(decoded["declined-card-cash"].printed())
    cash = re.match(r"^Cash payments +(\d+) +(\d+\.\d\d)$", next(x for x in lines if x.startswith("Cash payments")))
    assert (int(cash[1]), minor(cash[2])) == (1, cash_sale)
    assert receipt_total(lines) == eod["amount_minor"] + cash_sale
    # the terminal's own end-of-day lines, printed on the Z report
    terminal_lines = [r["text"] for r in d.of("terminal", "payment.receipt_line")]
    assert terminal_lines[0] == "KASSENSCHNITT" and set(terminal_lines) <= set(lines)
    euros = f"{eod['amount_minor'] // 100},{eod['amount_minor'] % 100:02d}"
    assert any(x.startswith("GESAMT") and x.endswith(euros) for x in terminal_lines)
    assert len(d.of("printer", "printer.cut")) == 1


# --- regeneration and output --------------------------------------------------------------------------------------


def test_building_twice_gives_the_same_bytes(sessions):
    again = build_sessions()
    before = [(s.name, s.start_ns, s.devices, s.chunks) for s in sessions.values()]
    assert [(s.name, s.start_ns, s.devices, s.chunks) for s in again] == before


def test_another_start_moves_the_sessions_not_their_timelines(sessions):
    later = build_sessions(till_sessions.DEFAULT_START_NS + 86_400 * 10**9)
    for a, b in zip(sessions.values(), later):
        assert b.start_ns - a.start_ns == 86_400 * 10**9
        assert [c[:3] for c in a.chunks] == [c[:3] for c in b.chunks]


def test_the_committed_streams_are_what_the_generator_writes(sessions, tmp_path):
    assert till_sessions.main(["--out", str(tmp_path), "--bin-only"]) == 0
    for s in sessions.values():
        files = stream_files(s)
        assert sorted(os.listdir(tmp_path / s.name)) == sorted(files)
        for name, data in files.items():
            assert (tmp_path / s.name / name).read_bytes() == data
            with open(os.path.join(COMMITTED, s.name, name), "rb") as fh:
                assert fh.read() == data, f"sessions/till/{s.name}/{name} is stale: make samples"


def test_the_committed_recordings_are_what_the_generator_writes(tmp_path, capsys):
    """sessions/till/*.tws (what `make run` replays, demo-day.tws the whole day) regenerate byte for byte."""
    assert till_sessions.main(["--out", str(tmp_path)]) == 0
    names = sorted(f for f in os.listdir(tmp_path) if f.endswith(".tws"))
    assert names == ["declined-card-cash.tws", "demo-day.tws", "end-of-day.tws", "grocery-sale.tws"]
    for name in names:
        with open(os.path.join(COMMITTED, name), "rb") as fh:
            assert fh.read() == (tmp_path / name).read_bytes(), f"sessions/till/{name} is stale: make samples"


def test_the_whole_day_is_the_sessions_one_after_the_other(sessions):
    day = till_sessions.whole_day(list(sessions.values()))
    first = min(s.start_ns for s in sessions.values())
    assert day.start_ns == first
    assert len(day.chunks) == sum(len(s.chunks) for s in sessions.values())
    assert [c[0] for c in day.chunks] == sorted(c[0] for c in day.chunks)
    assert {(first + t, d, r, b) for t, d, r, b in day.chunks} == {
        (s.start_ns + t, d, r, b) for s in sessions.values() for t, d, r, b in s.chunks}


def test_write_tws_records_every_byte_with_its_time_and_the_device_table(sessions, tmp_path):
    """Needs ``bridge.recording`` (the recording module); not guarded on purpose."""
    from bridge.recording import tws

    for s in sessions.values():
        path = tmp_path / f"{s.name}.tws"
        write_tws(s, path)
        r = tws.Reader(path)
        assert not r.truncated
        assert [(d.name, d.protocol, d.transport, d.options) for d in r.devices] == \
            [(d.name, d.protocol, d.transport, d.options) for d in s.devices]
        assert (r.header.get("site"), r.header.get("till")) == (s.site, s.till)
        recorded: dict[tuple[str, str], bytearray] = {}
        first_t = {}
        for rec in r.records():
            if isinstance(rec, tws.ChunkRecord):
                recorded.setdefault((rec.device, rec.direction), bytearray()).extend(rec.data)
                first_t.setdefault((rec.device, rec.direction), rec.t_ns)
        wired: dict[tuple[str, str], bytearray] = {}
        first_wired = {}
        for t, dev, direction, data in s.chunks:
            wired.setdefault((dev, direction), bytearray()).extend(data)
            first_wired.setdefault((dev, direction), s.start_ns + t)
        assert recorded == wired
        # a recorder may hold bytes back (redaction), never record them before they were on the wire
        assert all(first_t[key] >= first_wired[key] for key in first_t)


def test_the_device_table_in_the_docs_is_the_generators():
    """docs/sessions.md shows the devices as a configuration's [[devices]]; it must not drift from DEVICES."""
    import tomllib

    with open(os.path.join(os.path.dirname(__file__), os.pardir, "docs", "sessions.md"), encoding="utf-8") as fh:
        block = re.search(r"```toml\n(.*?)```", fh.read(), re.DOTALL)[1]
    devices = tomllib.loads(block)["devices"]
    documented = [(d["name"], d["protocol"], d.get("options", {}), d["transport"]) for d in devices]
    assert documented == [(d.name, d.protocol, d.options, d.transport) for d in till_sessions.DEVICES]

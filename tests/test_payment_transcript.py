"""`tillwire decode --format text` for payment links: semantic events as the main lines of a transcript,
protocol detail as '·' lines, amounts in the currency's units."""

from __future__ import annotations

import pytest

from bridge.currencies import format_amount
from bridge.receipt_text import render_event


@pytest.mark.parametrize(("minor", "currency", "shown"), [
    (1250, "978", "12.50 EUR"),
    (5, "840", "0.05 USD"),
    (-1999, "826", "-19.99 GBP"),
    (15000, "152", "15000 CLP"),        # Chilean peso: no minor unit
    (1250, "999", "1250 minor units (currency 999)"),
    (1250, None, "1250 minor units"),
])
def test_amounts_use_the_currency_exponent(minor, currency, shown):
    assert format_amount(minor, currency) == shown


def ev(event_type, **data):
    return {"type": event_type, "data": data}


def test_a_card_sale_reads_as_a_transcript():
    bodies = [
        ev("zvt.apdu", **{"class": 6, "instr": 1, "name": "authorisation", "length": 10}),
        ev("payment.request", protocol="zvt", kind="authorization", amount_minor=1250, currency="978"),
        ev("link.ack"),
        ev("payment.status", code=0x0A, text="Insert card"),
        ev("payment.result", approved=True, result_code="00", amount_minor=1250, currency="978",
           pan="476173******0010", card="VISA", terminal_id="52500038", trace="000123", receipt_no="0042"),
        ev("payment.receipt_line", text="KARTENZAHLUNG"),
        ev("payment.result", approved=False, result_code="05"),
    ]
    lines = [line for body in bodies for line in render_event(body, 42)]
    assert lines == [
        "  · zvt authorisation (06 01, 10 bytes)",
        "REQUEST  authorization 12.50 EUR",
        "  · [ACK]",
        "STATUS   0A Insert card",
        "RESULT   APPROVED 12.50 EUR (result 00)",
        "         card 476173******0010, VISA, TID 52500038, trace 000123, receipt 0042",
        "  | KARTENZAHLUNG",
        "RESULT   DECLINED (result 05)",
    ]


def test_end_of_day_lists_the_totals_per_card():
    body = ev("payment.eod", count=3, amount_minor=4500, currency="978",
              totals=[{"card": "girocard", "count": 2, "amount_minor": 3000, "currency": "978"},
                      {"card": "VISA", "count": 1, "amount_minor": 1500}])
    assert render_event(body, 42) == [
        "END OF DAY  3 transactions 45.00 EUR",
        "         girocard: 2 30.00 EUR",
        "         VISA: 1 1500 minor units",
    ]


def test_iso8583_and_ecr_frames_show_their_shape():
    assert render_event(ev("iso8583.message", mti="0200", fields={"11": "000001", "2": "x", "4": "1"}), 42) == [
        "  · iso8583 0200 fields 2,4,11"]
    assert render_event(ev("ecr.frame", dialect="transbank", payload=b"0200|123|", fields=["0200", "123", ""]),
                        42) == ["  · ecr transbank: 0200|123|"]
    assert render_event(ev("ecr.frame", dialect="concert", payload=b"01000012501"), 42) == [
        "  · ecr concert: 01000012501"]

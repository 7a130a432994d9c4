"""`tillwire decode --format text` for customer displays: the display's rows as a person sees them (between bars,
blanks kept), settings as bracketed lines; the sample captures in sessions/display/ read through the CLI, and a
display behind an ESC/POS printer shows among the receipt lines. Decoded through the backend TILLWIRE_BACKEND
selects."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.receipt_text import render_event
from protocols import Decoder
from protocols.decoder import unpack_events
from test_cli import run_cli

SAMPLES = Path(__file__).resolve().parent.parent / "sessions" / "display"


def transcript(data: bytes, protocol: str = "display-epson", **options) -> list[str]:
    d = Decoder(protocol, **options)
    bodies = unpack_events(d.feed(data) + d.close())
    return [line for body in bodies for line in render_event(body, 42)]


def test_an_update_reads_as_the_two_rows():
    stream = (b"\x1f\x58\x04\x1f\x43\x00"
              b"\x0cMilk 1L         1.29\x1f\x24\x01\x02Subtotal        1.29"
              b"\x0cTOTAL\x1f\x24\x01\x02EUR 4111111111111111")
    assert transcript(stream) == [
        "[display brightness 4]",
        "[display cursor off]",
        "DISPLAY |Milk 1L         1.29|",
        "        |Subtotal        1.29|",
        "DISPLAY |TOTAL               |",
        "        |EUR ****************|",  # a number on a display shows no digit (display.md)
    ]


def test_cd5220_string_mode_and_modes():
    assert transcript(b"\x1b\x12\x1bQAHello\r\x1bQB\x07\r", "display-cd5220") == [
        "[display mode: vertical scroll]",
        "[protocol.error display_string_interrupted at byte 11]",
        "[protocol.error unknown_display_command at byte 14]",  # the BEL itself, decoded afresh
        "DISPLAY |Hello               |",
        "        |                    |",
    ]



@pytest.mark.parametrize("dialect", ["epson", "cd5220"])
def test_the_sample_baskets_through_the_cli(dialect):
    res = run_cli("decode", "--format", "text", "-p", f"display-{dialect}", str(SAMPLES / f"basket.{dialect}.bin"))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert "DISPLAY |TOTAL               |" in lines
    assert "        |Subtotal       32.14|" in lines
    assert "DISPLAY |Cash          100.00|" in lines and "        |Change          0.31|" in lines
    assert lines[-1].endswith("0 protocol.error")


def test_a_display_behind_the_printer_shows_in_the_receipt():
    stream = b"Receipt\n\x1b=\x02\x1b@TOTAL 12.34\x1b=\x01Thank you\n"
    d = Decoder("escpos")
    lines = [line for body in unpack_events(d.feed(stream) + d.close()) for line in render_event(body, 42)]
    assert lines == ["Receipt", "DISPLAY |TOTAL 12.34         |", "        |                    |", "Thank you"]

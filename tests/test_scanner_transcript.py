"""`tillwire decode --format text` for barcode scanners: one SCAN line per label (symbology, label; UPC-E with its
UPC-A), GS1 application identifiers on the next line, MSR swipes with the masked PAN only; decoded through the
backend TILLWIRE_BACKEND selects."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.receipt_text import render_event
from protocols import Decoder
from protocols.decoder import unpack_events
from test_cli import run_cli


def transcript(data: bytes, protocol: str = "scanner", **options) -> list[str]:
    d = Decoder(protocol, **options)
    bodies = unpack_events(d.feed(data) + d.close())
    return [line for body in bodies for line in render_event(body, 42)]


def test_a_basket_reads_as_a_transcript():
    stream = (b"]E04006381333931\r"                                   # EAN-13
              b"]E001234565\r"                                        # UPC-E
              b"]C10109506000134352172512311" b"0ABC123\x1d3103001234\r"  # GS1-128
              b"]Q1https://example.com/p/42\r"                        # QR URL
              b"%B4111111111111111^DOE/JOHN^2512101000?\r"            # a card swiped through the scanner
              b"]E04006381333932\r")                                  # a bad check digit
    assert transcript(stream) == [
        "SCAN  EAN-13 4006381333931",
        "SCAN  UPC-E 01234565 (UPC-A 012345000065)",
        "SCAN  GS1-128 010950600013435217251231" "10ABC123<GS>3103001234",
        "      (01)09506000134352 (17)251231 (10)ABC123 (3103)001234",
        "SCAN  QR Code https://example.com/p/42",
        "SWIPE card 411111******1111 (track 1)",
        "[protocol.error bad_check_digit at byte 144]",
        "SCAN  EAN-13 400638***3932",
    ]


def test_hid_pos_reports_give_the_same_lines():
    report = bytearray(64)
    report[0], report[1] = 0x02, 13
    report[2:5] = b"]E0"
    report[5:18] = b"4006381333931"
    assert transcript(bytes(report), "scanner-hidpos") == ["SCAN  EAN-13 4006381333931"]


def test_unknown_symbology_and_control_characters():
    assert transcript(b"AB\x01C\r") == ["SCAN  unknown AB\\x01C"]


SAMPLES = Path(__file__).resolve().parent.parent / "sessions" / "scanner"
BASKET = ["SCAN  EAN-13 4006381333931", "SCAN  UPC-A 0036000291452", "SCAN  UPC-E 01234565 (UPC-A 012345000065)",
          "      (01)09506000134352 (17)251231 (10)ABC123 (3103)001234",
          "SCAN  QR Code https://example.com/p/42?ref=pos", "SCAN  Code 128 GIFT 6280 00** **** ***0 123",
          "SCAN  EAN-8 96385074"]


@pytest.mark.parametrize("args", [("-p", "scanner", "-o", "suffix=crlf", "basket.crlf.bin"),
                                  ("-p", "scanner-hidpos", "basket.hidpos.bin")])
def test_the_basket_samples_read_alike_over_serial_and_hid_pos(args):
    *opts, name = args
    res = run_cli("decode", "--format", "text", *opts, str(SAMPLES / name))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    for line in BASKET:
        assert line in lines
    assert lines[-1].endswith("7 scanner.data, 0 protocol.error")
    assert "6280001234567890123" not in res.stdout.decode().replace(" ", "")

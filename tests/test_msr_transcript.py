"""`tillwire decode --format text` for magnetic stripe readers and the cash drawer status: one SWIPE line per
swipe with the masked PAN and the tracks read, errors as their own lines, nothing else of the card; drawer.status
as "[drawer open]"; decoded through the backend TILLWIRE_BACKEND selects."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.receipt_text import render_event
from protocols import Decoder
from protocols.decoder import unpack_events
from test_cli import run_cli

SAMPLES = Path(__file__).resolve().parent.parent / "sessions" / "msr"


def transcript(data: bytes, protocol: str = "msr", direction: str = "to_device", requests=(), **options):
    d = Decoder(protocol, direction=direction, **options)
    for kind, n in requests:
        d.note_request(kind, n)
    bodies = unpack_events(d.feed(data) + d.close())
    return [line for body in bodies for line in render_event(body, 42)]


def test_swipes_read_as_a_transcript():
    stream = (b"%B4111111111111111^DOE/JOHN^2512101123456789?\r;4111111111111111=25121011234567890?\r"
              b"%E?\r;E?\r")
    assert transcript(stream, tracks="12") == [
        "SWIPE card 411111******1111 (tracks 1, 2)",
        "[protocol.error msr_bad_track at byte 83]",
        "[protocol.error msr_bad_track at byte 87]",
        "SWIPE card (no PAN) (no track read)",
    ]


def test_drawer_status_lines():
    lines = transcript(b"\x16\x00", "escpos", "from_device", [("printer", 1), ("drawer", 2)],
                       drawer_open_level="low")
    assert "[drawer closed]" in lines and "[drawer open]" in lines


def test_the_wedge_sample_through_the_cli():
    res = run_cli("decode", "--format", "text", "-p", "msr", "-o", "tracks=12", str(SAMPLES / "wedge-swipes.bin"))
    assert res.returncode == 0, res.stderr
    text = res.stdout.decode()
    assert text.splitlines() == [
        "SWIPE card 476173******0010 (tracks 1, 2)",
        "[protocol.error msr_bad_track at byte 93]",
        "SWIPE card 550000******5559 (track 2)",
        "[protocol.error msr_no_end_sentinel at byte 178]",
        "SWIPE card 550000******5559 (track 1)",
        "wedge-swipes.bin: 5 events — 3 msr.swipe, 2 protocol.error",
    ]
    assert not re.search(r"\d{7}", text) and "DOE" not in text and "PUBLIC" not in text

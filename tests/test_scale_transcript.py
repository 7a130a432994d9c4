"""`tillwire decode --format text` for scales: a weight with its unit (exact, from the integer), unstable and net
marks, the UnifiedPOS status in words, the till's polls as detail lines, Magellan labels as SCAN lines; the sample
captures in sessions/scale (written by ``python -m simulator.scale_sessions``) read through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.receipt_text import format_weight, render_event
from protocols import Decoder
from protocols.decoder import unpack_events
from simulator import scale_sessions
from test_cli import run_cli

SAMPLES = Path(__file__).resolve().parent.parent / "sessions" / "scale"


def transcript(data: bytes, protocol: str, direction: str = "from_device", **options) -> list[str]:
    d = Decoder(protocol, direction, **options)
    return [line for body in unpack_events(d.feed(data) + d.close()) for line in render_event(body, 42)]


@pytest.mark.parametrize("milli, unit, text", [
    (1250, "kg", "1.250 kg"), (1250, "lb", "1.25 lb"), (1255, "lb", "1.255 lb"), (1250000, "g", "1250 g"),
    (-20, "kg", "-0.020 kg"), (0, "lb", "0.00 lb"), (999_999_999, "kg", "999999.999 kg"), (2500, "oz", "2.5 oz"),
])
def test_weights_are_shown_exactly(milli, unit, text):
    assert format_weight(milli, unit) == text


def test_a_polled_nci_scale_reads_as_a_transcript():
    assert transcript(b"\n0001.31LB\r\n10\r\x03\n0001.25LB\r\n0p4\r\x03\n44\r\x03\n?\r\x03", "scale-nci") == [
        "WEIGHT  1.31 lb (unstable)", "SCALE   in motion",
        "WEIGHT  1.25 lb (net)", "SCALE   stable (net)",
        "SCALE   not ready (ram, rom)",
        "  · [NAK]",
    ]
    assert transcript(b"W\rZ\r", "scale-nci", "to_device") == ["  · till asks: weight (W)", "  · till asks: zero (Z)"]


def test_the_samples_are_what_the_generator_writes(tmp_path):
    for path in scale_sessions.write_samples(str(tmp_path)):
        name = Path(path).name
        assert (SAMPLES / name).read_bytes() == Path(path).read_bytes(), name


@pytest.mark.parametrize("args, lines, summary", [
    (("-p", "scale-nci", "--direction", "from_device", "nci-produce.from_device.bin"),
     ["WEIGHT  0.87 lb (unstable)", "WEIGHT  1.25 lb", "SCALE   stable", "  · [NAK]", "SCALE   at zero"],
     "11 events — 1 link.nak, 6 scale.status, 4 scale.weight, 0 protocol.error"),
    (("-p", "scale-nci", "nci-produce.bin"), ["  · till asks: weight (W)", "  · till asks: status (S)"],
     "6 scale.request, 1 protocol.error"),
    (("-p", "scale-toledo", "-o", "unit=kg", "--direction", "from_device", "toledo-produce.from_device.bin"),
     ["SCALE   in motion", "WEIGHT  0.735 kg", "WEIGHT  0.512 kg (net)", "SCALE   at zero"],
     "3 scale.status, 2 scale.weight, 0 protocol.error"),
    (("-p", "scale-cas", "--direction", "from_device", "cas-stream.from_device.bin"),
     ["WEIGHT  1.377 kg (unstable)", "WEIGHT  1.500 kg", "WEIGHT  1.250 kg (net)", "SCALE   over capacity"],
     "1 scale.status, 6 scale.weight, 0 protocol.error"),
    (("-p", "magellan", "--direction", "from_device", "magellan-basket.from_device.bin"),
     ["SCAN  UPC-A 036000291452", "SCALE   in motion", "WEIGHT  2.34 lb",
      "SCAN  UPC-E 04252614 (UPC-A 042100005264)", "      (01)00614141999996"],
     "2 scale.status, 1 scale.weight, 4 scanner.data, 0 protocol.error"),
    (("-p", "magellan", "magellan-basket.bin"), ["  · till asks: beep (S334)"], "5 scale.request, 0 protocol.error"),
])
def test_the_samples_read_through_the_cli(args, lines, summary):
    *opts, name = args
    res = run_cli("decode", "--format", "text", *opts, str(SAMPLES / name))
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode().splitlines()
    for line in lines:
        assert line in out
    assert out[-1].endswith(summary)


def test_a_bad_option_is_a_clean_cli_error():
    res = run_cli("decode", "-p", "magellan", "-o", "unit=stone", "--format", "text", str(SAMPLES / "magellan-basket.bin"))
    assert res.returncode != 0 and b"unit" in res.stderr

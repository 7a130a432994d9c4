"""``tillwire replay FILE.tws``: a recording decoded to events like ``tillwire decode`` does a capture — one
decoder per device and direction from the device table, ``src`` = prefix + device, ``ts`` = the recorded time of
the chunk that completed each event."""

from __future__ import annotations

import json
import os

import msgpack

from bridge.cli import main
from bridge.recording import tws
from protocols import Decoder
from protocols.events import iter_bodies

SESSIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sessions")
T0 = 1_700_000_000_000_000_000


def recording(tmp_path):
    """A printer and a ZVT terminal; the terminal's bytes carry a PAN."""
    path = tmp_path / "till.tws"
    receipt = open(os.path.join(SESSIONS, "escpos", "grocery-card.bin"), "rb").read()
    zvt = open(os.path.join(SESSIONS, "payment", "zvt-card-sale.tcp.from_device.bin"), "rb").read()
    with tws.Writer.create(path, devices=[tws.DeviceInfo("printer", "escpos"), tws.DeviceInfo("pt", "zvt-tcp")]) as w:
        for i in range(0, len(receipt), 100):
            w.chunk(T0 + i, "printer", "to_device", receipt[i:i + 100])
        w.flush()
        w.chunk(T0 + 10**9, "pt", "from_device", zvt)
    return path, receipt, zvt


def bodies(protocol, direction, data):
    dec = Decoder(protocol, direction=direction)
    return list(iter_bodies(dec.feed(data) + dec.close()))


def test_jsonl_events_carry_the_device_source_and_recorded_time(tmp_path, capsysbinary):
    path, receipt, zvt = recording(tmp_path)
    assert main(["replay", str(path)]) == 0
    events = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    printer = [e for e in events if e["src"] == "file://till.tws/printer"]
    pt = [e for e in events if e["src"] == "file://till.tws/pt"]
    assert len(printer) + len(pt) == len(events)
    assert [(e["type"]) for e in printer] == [b["type"] for b in bodies("escpos", "to_device", receipt)]
    assert [e["seq"] for e in printer] == list(range(1, len(printer) + 1))
    assert all(T0 <= e["ts"] < T0 + len(receipt) for e in printer)
    assert {e["ts"] for e in pt} == {T0 + 10**9}
    results = [e for e in pt if e["type"] == "payment.result"]
    expected = [b for b in bodies("zvt-tcp", "from_device", zvt) if b["type"] == "payment.result"]
    assert [r["data"]["pan"] for r in results] == [b["data"]["pan"] for b in expected] and results


def test_msgpack_and_src_prefix(tmp_path, capsysbinary):
    path, _, _ = recording(tmp_path)
    assert main(["replay", "--format", "msgpack", "--src-prefix", "pos://store-1/till-3/", str(path)]) == 0
    events = list(msgpack.Unpacker(__import__("io").BytesIO(capsysbinary.readouterr().out), raw=False))
    assert {e["src"] for e in events} == {"pos://store-1/till-3/printer", "pos://store-1/till-3/pt"}


def test_text_format_renders_the_events(tmp_path, capsysbinary):
    path, _, _ = recording(tmp_path)
    assert main(["replay", "--format", "text", str(path)]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert "file://till.tws/printer" in out and len(out.splitlines()) > 10


def test_a_truncated_recording_replays_what_it_holds_and_warns(tmp_path, capsysbinary):
    path, _, _ = recording(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 200])  # into the terminal's block: the printer's block survives
    assert main(["replay", str(path)]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out and b"cut short" in captured.err


def test_mistakes_are_one_line_and_exit_status_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.tws")]) == 2
    err = capsys.readouterr().err
    assert err == f"tillwire: error: cannot read {tmp_path / 'missing.tws'}: no such file\n"
    other = tmp_path / "capture.bin"
    other.write_bytes(b"\x1b@hello\n")
    assert main(["replay", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a .tws recording" in err
    assert main(["replay", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1

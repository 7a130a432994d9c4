"""Redaction, case by case (docs/bridge/recording.md section 5): checksums fixed or reported, DLE stuffing kept,
what is not card data left alone and not held back, holds bounded, recorded times never earlier than arrival."""

from __future__ import annotations

from bridge.recording import tws
from protocols import Decoder
from protocols.checksums import crc16_kermit
from protocols.events import iter_bodies
from protocols.redact import redactor_for
from protocols.redact.text import TEXT_HOLD
from simulator.zvt_dialogues import apdu, llvar, serial_frame


def events(protocol, data, **options):
    dec = Decoder(protocol, **options)
    return list(iter_bodies(dec.feed(data) + dec.close()))


def redact(protocol, data, **options):
    r = redactor_for(protocol, "to_device", options)
    out, notes = r.feed(data)
    tail, more = r.flush(end=True)
    return out + tail, notes + more, r.counts


def status_with_pan(pan_bcd: bytes) -> bytes:
    return apdu(0x04, 0x0F, b"\x27\x00\x22" + llvar(pan_bcd))


def check_serial(frame: bytes):
    out, notes, counts = redact("zvt-serial", frame)
    got = events("zvt-serial", out)
    assert got == events("zvt-serial", frame) and counts == {"pan": 1}
    assert not [e for e in got if e["type"] == "link.checksum_error"]
    unstuffed = out[2:-4].replace(b"\x10\x10", b"\x10")
    assert out[-2] | out[-1] << 8 == crc16_kermit(unstuffed + b"\x03")
    return out, notes


def test_zvt_serial_masks_the_pan_and_recomputes_the_crc():
    frame = serial_frame(status_with_pan(bytes.fromhex("4111111111111111")))
    out, notes = check_serial(frame)
    assert len(out) == len(frame) and not notes
    assert bytes.fromhex("411111EEEEEE1111") in out  # E: "masked by the device"


def test_zvt_serial_keeps_the_stuffed_length_without_keeping_which_bytes_were_dle():
    pan = bytes.fromhex("4111111023451111")  # one masked byte is DLE: stuffed on the wire as 10 10
    frame = serial_frame(status_with_pan(pan))
    out, notes = check_serial(frame)
    assert len(out) == len(frame) and not notes  # same length: every later offset is as on the wire
    assert bytes.fromhex("411111EE10EE1111") in out.replace(b"\x10\x10", b"\x10")  # the DLE moved


def test_a_pan_whose_masked_bytes_were_all_dle_is_masked_and_the_frame_gets_shorter():
    pan = bytes.fromhex("4110101010101111")
    frame = serial_frame(status_with_pan(pan))
    out, notes = check_serial(frame)
    assert pan not in out.replace(b"\x10\x10", b"\x10")
    assert len(out) == len(frame) - 3 and notes[0]["shift"] == -3 and notes[0]["offset"] == 0


def test_a_zvt_frame_whose_crc_was_wrong_on_the_wire_stays_wrong_and_is_noted(tmp_path):
    frame = bytearray(serial_frame(status_with_pan(bytes.fromhex("4111111111111111"))))
    frame[-1] ^= 0xFF
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("pt", "zvt-serial")]) as w:
        w.chunk(5, "pt", "from_device", bytes(frame))
    records = list(tws.Reader(path).records())
    notes = [r for r in records if type(r) is tws.ControlRecord and r.kind == "redaction"]
    assert notes and notes[0].fields["offset"] == 0 and notes[0].fields["checksum"] == "not fixed"
    data = b"".join(r.data for r in records if type(r) is tws.ChunkRecord)
    assert bytes.fromhex("4111111111111111") not in data
    assert [e["type"] for e in events("zvt-serial", data, direction="from_device")] == ["link.checksum_error"]


def test_a_flush_inside_a_frame_does_not_cut_it(tmp_path):
    # the bridge flushes every second: a frame still arriving stays held and is masked field by field when it ends
    frame = serial_frame(status_with_pan(bytes.fromhex("4111111111111111")))
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("pt", "zvt-serial")]) as w:
        w.chunk(1, "pt", "from_device", frame[:9])
        w.flush()
        assert w.held == 9
        w.chunk(2, "pt", "from_device", frame[9:])
        assert w.held == 0
    records = list(tws.Reader(path).records())
    data = b"".join(r.data for r in records if type(r) is tws.ChunkRecord)
    assert data == redact("zvt-serial", frame)[0]
    assert not [r for r in records if type(r) is tws.ControlRecord and r.kind == "redaction"]


def test_a_frame_held_longer_than_the_bound_is_masked_whole_and_says_so(tmp_path):
    frame = serial_frame(status_with_pan(bytes.fromhex("4111111111111111")))
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("pt", "zvt-serial"),
                                          tws.DeviceInfo("printer", "escpos")]) as w:
        w.chunk(1, "pt", "from_device", frame[:9])
        w.chunk(1 + tws.HOLD_BOUND_NS, "printer", "to_device", b"x")  # not yet over the bound
        assert w.held == 9
        w.chunk(2 + tws.HOLD_BOUND_NS, "printer", "to_device", b"y")  # later bytes of any device tell the time
        assert w.held == 0
        w.chunk(3 + tws.HOLD_BOUND_NS, "pt", "from_device", frame[9:])
    records = list(tws.Reader(path).records())
    data = b"".join(r.data for r in records if type(r) is tws.ChunkRecord and r.device == "pt")
    assert len(data) == len(frame) and b"\x41\x11\x11" not in data[9:] and b"\x11\x11\x11" not in data
    notes = [r for r in records if type(r) is tws.ControlRecord and r.kind == "redaction"]
    assert notes and notes[0].fields["offset"] == 0 and "held over 5 s" in notes[0].fields["reason"]
    assert [r.t_ns for r in records if type(r) is tws.ChunkRecord and r.device == "pt"][0] == 2 + tws.HOLD_BOUND_NS


def test_text_that_is_not_card_data_passes_at_once_and_unchanged():
    r = redactor_for("escpos", "to_device", {})
    for text in (b"10% off today\n", b"Qty; 3 x Milk\n", b"EAN 4006381333931\n", b"Ref 4111111111111113\n"):
        out, _ = r.feed(text)
        # not held: nothing in it can still become a PAN or a track (the Ref number has no 13–19-digit run that
        # passes the Luhn check)
        assert out == text
    assert r.counts == {}


def test_a_luhn_valid_card_number_in_printer_text_is_masked_to_first_six_and_last_four():
    out, _, counts = redact("escpos", b"CARD 4111 1111 1111 1111 APPROVED\n")
    assert out == b"CARD 4111 1100 0000 1111 APPROVED\n" and counts == {"pan": 1}


def test_a_text_stream_holds_back_at_most_its_bound():
    r = redactor_for("msr", "to_device", {})
    stream = (b"%B4111111111111111^DOE/JANE^2812101000000000?;4111111111111111=2812101000000000?\r" * 20
              + b"0123456789" * 30)
    fed = out = 0
    for i in range(len(stream)):
        out += len(r.feed(stream[i:i + 1])[0])
        fed += 1
        assert fed - out <= TEXT_HOLD
    assert out + len(r.flush(end=True)[0]) == len(stream)


def test_held_bytes_are_recorded_with_the_time_of_the_chunk_that_released_them(tmp_path):
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("scanner", "scanner")]) as w:
        w.chunk(100, "scanner", "to_device", b"CARD 411111")
        w.chunk(200, "scanner", "to_device", b"1111111111 OK\r")
    chunks = [r for r in tws.Reader(path).records() if type(r) is tws.ChunkRecord]
    assert [(c.t_ns, c.data) for c in chunks] == [(100, b"CARD "), (200, b"4111110000001111 OK\r")]


def test_without_redaction_the_bytes_are_recorded_as_they_came(tmp_path):
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("scanner", "scanner")], redact=False) as w:
        w.chunk(1, "scanner", "to_device", b"4111111111111111\r")
    r = tws.Reader(path)
    assert r.header["redaction"]["policy"] == "none"
    assert [c.data for c in r.records() if type(c) is tws.ChunkRecord] == [b"4111111111111111\r"]

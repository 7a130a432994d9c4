"""Regressions from the recording review (docs/bridge/recording.md section 5): each case is a stream that once
left card data in a recording, or a recording that once replayed differently from the live run. The rule they
hold: no full PAN, track data, PIN block or CVV reaches a .tws file, whatever the input, its chunking and the
flush timing; where a parser stops, the rest of that message is masked whole."""

from __future__ import annotations

import pytest

from bridge.recording import tws
from protocols import Decoder
from protocols.events import iter_bodies
from protocols.redact import redactor_for
from simulator.zvt_dialogues import apdu, llvar, serial_frame
from test_iso8583_card_data import bcd, iso_body, tlv, var

PAN = "4111111111111111"
PAN_BCD = bytes.fromhex(PAN)


def events(protocol, data, **options):
    dec = Decoder(protocol, **options)
    return list(iter_bodies(dec.feed(data) + dec.close()))


def status_information(pan_bcd: bytes = PAN_BCD) -> bytes:
    return apdu(0x04, 0x0F, b"\x27\x00\x22" + llvar(pan_bcd))


def feed_with_flushes(protocol, pieces, options=None, direction="from_device"):
    """Feed ``pieces`` to a redactor with a (cutting) redactor flush after each but the last; end the stream."""
    r = redactor_for(protocol, direction, options or {})
    out = bytearray()
    for i, piece in enumerate(pieces):
        out += r.feed(piece)[0]
        if i < len(pieces) - 1:
            out += r.flush()[0]
    return bytes(out + r.flush(end=True)[0])


def recorded(path, device=None) -> bytes:
    r = tws.Reader(path)
    data = b"".join(rec.data for rec in r.records()
                    if type(rec) is tws.ChunkRecord and (device is None or rec.device == device))
    r.close()
    return data


# ------------------------------------------------------------------------------ 1: ZVT serial restart after a cut

PARTIAL = b"\x10\x02\x04\x0f\x20\x27\x00"  # a frame cut off on the line: no 10 03, the terminal starts again
FRAME = serial_frame(status_information())


@pytest.mark.parametrize("pieces", [
    [PARTIAL + FRAME[:1], FRAME[1:]],          # the cut between the restart's 10 and 02
    [PARTIAL, FRAME],                          # a cut anywhere in the unterminated frame, then the resend
    [PARTIAL[:3], PARTIAL[3:] + FRAME],
    [FRAME[:6], FRAME[6:] + FRAME],            # a cut frame, then the next one
    [FRAME[:1], FRAME[1:]],                    # the cut right after a frame's 10
], ids=["restart-dle", "resend", "early-cut", "mid-frame", "after-dle"])
def test_a_zvt_serial_frame_after_a_cut_is_still_masked(pieces):
    stream = b"".join(pieces)
    out = feed_with_flushes("zvt-serial", pieces)
    assert PAN_BCD not in out.replace(b"\x10\x10", b"\x10")
    assert len(out) == len(stream)


def test_a_resent_frame_after_an_unterminated_one_replays_as_live(tmp_path):
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("pt", "zvt-serial")]) as w:
        w.chunk(1, "pt", "from_device", PARTIAL)
        w.flush()  # the bridge's 1-second flush
        w.chunk(2, "pt", "from_device", FRAME)
    data = recorded(path)
    assert PAN_BCD not in data
    assert events("zvt-serial", data, direction="from_device") == events("zvt-serial", PARTIAL + FRAME,
                                                                          direction="from_device")


# ------------------------------------------------------------------------------ 2: where parsing stops

@pytest.mark.parametrize("message", [
    apdu(0x04, 0x0F, b"\x27\x00\x92\x01\x22\xf0\xf8" + PAN_BCD),     # an unknown BMP (92) before BMP 22
    apdu(0x06, 0x21, b"\x22\xf0\xf8" + PAN_BCD),                     # a command the redactor cannot walk
    apdu(0x04, 0x0F, b"\x3c\x12\x34\x22\xf0\xf8" + PAN_BCD),         # a malformed LL prefix (BMP 3C)
    apdu(0x04, 0x0F, b"\x27\x00\x22\xf0\xf9" + PAN_BCD),             # an LL longer than the message
], ids=["unknown-bmp", "unknown-command", "bad-ll", "long-ll"])
@pytest.mark.parametrize("framing", ["tcp", "serial"])
def test_zvt_data_after_the_point_where_parsing_stops_is_masked_whole(message, framing):
    stream = message if framing == "tcp" else serial_frame(message)
    r = redactor_for(f"zvt-{framing}", "from_device", {})
    out = r.feed(stream)[0] + r.flush(end=True)[0]
    assert len(out) == len(stream)
    body = out if framing == "tcp" else out[2:-4].replace(b"\x10\x10", b"\x10")
    assert PAN_BCD[1:] not in body and PAN_BCD[:-1] not in body
    assert r.counts.get("withheld")


def test_iso8583_fields_after_one_the_spec_cannot_walk_are_masked_whole():
    pin = bytes.fromhex("0123456789ABCDEF")
    icc = tlv("5A", bcd(PAN)) + tlv("57", bytes.fromhex(PAN + "D2812201"))
    fields = {3: b"000000", 4: b"000000001250", 11: b"000001", 32: b"9X1234",  # field 32: a bad LL prefix
              35: var(2, PAN.encode() + b"=2812201"), 52: pin, 55: var(3, icc)}
    bitmap = bytearray(8)
    for n in fields:
        bitmap[(n - 1) // 8] |= 0x80 >> ((n - 1) % 8)
    msg = b"0200" + bytes(bitmap) + b"".join(fields[n] for n in sorted(fields))
    frame = len(msg).to_bytes(2, "big") + msg
    r = redactor_for("iso8583", "to_device", {"spec": "iso87-binary"})
    out = r.feed(frame)[0] + r.flush(end=True)[0]
    assert len(out) == len(frame)
    assert pin not in out and bcd(PAN) not in out and PAN.encode() not in out
    assert out[:frame.index(b"9X1234")] == frame[:frame.index(b"9X1234")]  # what was walked is as on the wire


# ------------------------------------------------------------------------------ 3: ISO 8583 without framing

@pytest.mark.parametrize("cut", [0, 4, 12, 16, 40])
def test_iso8583_without_framing_is_recorded_masked_whole_and_the_header_says_so(tmp_path, cut):
    msg = iso_body(PAN, "iso87-binary", 1)
    path = tmp_path / "s.tws"
    options = {"spec": "iso87-binary", "framing": "none"}
    with tws.Writer.create(path, devices=[tws.DeviceInfo("host", "iso8583", options=options),
                                          tws.DeviceInfo("printer", "escpos")]) as w:
        w.chunk(1, "host", "to_device", msg[:cut])
        w.flush()
        w.chunk(2, "host", "to_device", msg[cut:])
    r = tws.Reader(path)
    assert r.header["redaction"]["masked_whole"] == ["host"]
    assert r.redactions == {"host": {"withheld": 1}}
    assert recorded(path) == bytes(len(msg))


def test_a_framed_iso8583_device_is_not_listed_as_masked_whole(tmp_path):
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("host", "iso8583", options={"framing": "len2"})]):
        pass
    assert "masked_whole" not in tws.Reader(path).header["redaction"]


# ------------------------------------------------------------------------------ 4: MSR track 3

TRACK3 = b";014111111111111111=7247241000000000000303000000000404000000000100000000000000000000?"


@pytest.mark.parametrize("swipe", [TRACK3 + b"\r", b";4111111111111111=25121010000012300000?\r" + TRACK3 + b"\r"],
                         ids=["track3", "tracks23"])
def test_an_msr_track_3_is_masked_whole_and_the_swipe_decodes_the_same(swipe):
    for cut in range(0, len(swipe), 7):
        out = feed_with_flushes("msr", [swipe[:cut], swipe[cut:]])
        assert PAN.encode() not in out and b"72472410" not in out
        assert len(out) == len(swipe)
    r = redactor_for("msr", "from_device", {})
    out = r.feed(swipe)[0] + r.flush(end=True)[0]
    assert out.endswith(b";" + b"0" * (len(TRACK3) - 2) + b"?\r")
    assert events("msr", out, tracks="123") == events("msr", swipe, tracks="123")


# ------------------------------------------------------------------------------ 10: the bridge's flush

def test_flushes_at_every_point_of_a_zvt_serial_stream_do_not_change_its_replay(tmp_path):
    stream = FRAME + b"\x06" + serial_frame(apdu(0x06, 0x0F, b"\x27\x00"))
    live = events("zvt-serial", stream, direction="from_device")
    assert {"type": "payment.result", "data": {"approved": True, "result_code": "00", "pan": "411111******1111"}} \
        in live
    for cut in range(1, len(stream)):
        path = tmp_path / f"s{cut}.tws"
        with tws.Writer.create(path, devices=[tws.DeviceInfo("pt", "zvt-serial")]) as w:
            w.chunk(1, "pt", "from_device", stream[:cut])
            w.flush()
            w.chunk(2, "pt", "from_device", stream[cut:])
        data = recorded(path)
        assert PAN_BCD not in data
        assert events("zvt-serial", data, direction="from_device") == live


def test_a_flush_fsyncs_what_was_released_and_keeps_the_frame_in_progress(tmp_path):
    path = tmp_path / "s.tws"
    w = tws.Writer.create(path, devices=[tws.DeviceInfo("pt", "zvt-tcp")])
    msg = status_information()
    w.chunk(1, "pt", "from_device", b"\x80\x00\x00" + msg[:5])
    w.flush()
    assert recorded(path) == b"\x80\x00\x00"  # durable: readable without close
    assert w.held == 5
    w.chunk(2, "pt", "from_device", msg[5:])
    w.flush()
    assert recorded(path)[3:] == redactor_for("zvt-tcp", "from_device").feed(msg)[0]
    w.close()


def test_flush_with_the_bridge_clock_cuts_a_frame_held_over_the_bound(tmp_path):
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("pt", "zvt-tcp")]) as w:
        w.chunk(1_000, "pt", "from_device", status_information()[:9])
        w.flush(now_ns=1_000 + tws.HOLD_BOUND_NS)
        assert w.held == 9
        w.flush(now_ns=1_001 + tws.HOLD_BOUND_NS)
        assert w.held == 0
    data = recorded(path)
    assert data == status_information()[:3] + bytes(6)


def test_a_text_stream_holds_a_pan_still_arriving_across_flushes(tmp_path):
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("printer", "escpos")]) as w:
        w.chunk(1, "printer", "to_device", b"CARD 4111 11")
        w.flush()
        w.chunk(2, "printer", "to_device", b"11 1111 1111 OK\n")
    assert recorded(path) == b"CARD 4111 1100 0000 1111 OK\n"


# ------------------------------------------------------------------------------ 11: PANs inside longer digit runs

@pytest.mark.parametrize("line", [b"CARD 4111 1111 1111 1111 EXP 12-25\n", b"CARD 4111 1111 1111 1111 12-25\n",
                                  b"2 4111111111111111\n", b"1 4111111111111111\n",
                                  b"ACCT 4111-1111-1111-1111-001\n", b"REF 99994111111111111111\n"])
def test_a_pan_inside_a_longer_digit_run_or_grouped_is_masked(line):
    for cut in range(len(line)):
        out = feed_with_flushes("escpos", [line[:cut], line[cut:]], direction="to_device")
        digits = bytes(c for c in out if 0x30 <= c <= 0x39)
        assert PAN.encode() not in digits and len(out) == len(line)


def test_a_gs1_element_string_keeps_its_checked_keys():
    label = b"]C10109506000134352" + b"21" + b"4111111111111111" + b"\r\n"  # GTIN, then a serial number
    r = redactor_for("scanner", "from_device", {})
    out = r.feed(label)[0] + r.flush(end=True)[0]
    assert out == b"]C10109506000134352" + b"21" + b"4111110000001111" + b"\r\n"
    assert events("scanner", out) == events("scanner", label)


# ------------------------------------------------------------------------------ 13: the bridge's "closed" state

@pytest.mark.parametrize("kind", ["closed", "close"])
def test_a_closed_device_releases_its_held_frame_first_and_starts_fresh(tmp_path, kind):
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("pt", "zvt-serial")]) as w:
        w.chunk(1, "pt", "from_device", FRAME[:9])
        w.control(2, "pt", "open")  # other kinds leave the frame held
        assert w.held == 9
        w.control(3, "pt", kind, reason="connection reset")
        assert w.held == 0
        w.control(4, "pt", "open")
        w.chunk(5, "pt", "from_device", FRAME)
    records = [rec for rec in tws.Reader(path).records() if not (type(rec) is tws.ControlRecord
                                                                   and rec.kind == "redactions")]
    kinds = [rec.kind if type(rec) is tws.ControlRecord else "chunk" for rec in records]
    assert kinds == ["open", "chunk", "redaction", kind, "open", "chunk"]
    cut, whole = records[1].data, records[5].data
    assert cut[:5] == FRAME[:5] and cut[5:] == bytes(4)  # the cut frame's data masked whole
    assert records[2].fields["offset"] == 0
    assert whole == redactor_for("zvt-serial", "from_device").feed(FRAME)[0]  # the next frame as usual
    assert events("zvt-serial", whole, direction="from_device") == events("zvt-serial", FRAME,
                                                                           direction="from_device")


def test_a_visa_number_that_reads_as_a_gs1_string_is_masked_on_a_printer_stream():
    """Review 2, N1: 4143873806956041 reads as GS1 AI 414 + a GLN with a valid check digit; only a scanner's
    decoder reads GS1 element strings, so on a printer or display stream it is a card number like any other."""
    from protocols.redact import redactor_for

    for protocol in ("escpos", "display-epson"):
        r = redactor_for(protocol, "to_device")
        out = r.feed(b"VISA 4143873806956041\n")[0] + r.flush(end=True)[0]
        assert b"4143873806956041" not in out and b"414387" in out and b"6041" in out


def test_zvt_serial_never_writes_back_a_masked_byte_that_was_dle():
    """Review 2, N4: 7407851081729 holds the byte 10 (DLE) in its masked middle; keeping the frame's length must
    not write that DLE back where it was (it would show two masked digits, and Luhn gives the third)."""
    from protocols.redact import redactor_for
    from simulator.zvt_dialogues import apdu, llvar, serial_frame
    from test_payment_card_data import nibbles

    pan = "7407851081729"
    frame = serial_frame(apdu(0x04, 0x0F, b"\x27\x00\x22" + llvar(nibbles(pan))))
    r = redactor_for("zvt-serial", "from_device")
    out = r.feed(frame)[0] + r.flush(end=True)[0]
    field = out[out.index(b"\x22\xf0") + 3:].replace(b"\x10\x10", b"\x10")[:len(nibbles(pan))].hex()
    assert field[:6] == pan[:6] and field[9:13] == pan[-4:]
    assert field[6:8] != "10"  # the byte that was DLE (digits 1, 0) is not written back at its place
    assert pan.encode() not in out and bytes.fromhex(nibbles(pan).hex()[:12]) not in out

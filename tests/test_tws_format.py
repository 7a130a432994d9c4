"""The .tws recording format (docs/bridge/recording.md): what is written reads back the same; a file cut short or
damaged reads up to its last whole block and says so; blocks are bounded; other versions and other files are
refused with one clear line."""

from __future__ import annotations

import struct

import pytest

from bridge.recording import tws

DEVICES = [tws.DeviceInfo("printer", "escpos", "serial:///dev/ttyS0", {}, {"baudrate": 19200}),
           tws.DeviceInfo("terminal", "zvt-tcp", "tap+tcp://10.0.0.5:20007")]


def write_small(path, redact=False, flushes=True) -> list:
    """A small recording with chunks and control records in several blocks; returns the records written."""
    expected = []
    with tws.Writer.create(path, devices=DEVICES, site="store-1", till="till-3", redact=redact,
                           created_ns=1_700_000_000_000_000_000) as w:
        t = 1_700_000_000_000_000_000
        w.control(t, "printer", "open", transport="serial:///dev/ttyS0")
        expected.append(tws.ControlRecord(t, "printer", "open", {"transport": "serial:///dev/ttyS0"}))
        for i in range(12):
            t += 1_000_000
            data = b"\x1b@line %d\n" % i
            w.chunk(t, "printer", "to_device", data)
            expected.append(tws.ChunkRecord(t, "printer", "to_device", data))
            w.chunk(t + 5, "terminal", "from_device", b"\x80\x00\x00")
            expected.append(tws.ChunkRecord(t + 5, "terminal", "from_device", b"\x80\x00\x00"))
            if flushes and i % 3 == 2:
                w.flush()
        w.control(t + 10, "printer", "settings", baudrate=9600)
        expected.append(tws.ControlRecord(t + 10, "printer", "settings", {"baudrate": 9600}))
        w.control(t + 20, "terminal", "error", reason="connection reset")
        expected.append(tws.ControlRecord(t + 20, "terminal", "error", {"reason": "connection reset"}))
        w.control(t + 30, "printer", "close", reason="stopped")
        expected.append(tws.ControlRecord(t + 30, "printer", "close", {"reason": "stopped"}))
    return expected


def records(reader) -> list:
    return [r for r in reader.records() if not (type(r) is tws.ControlRecord and r.kind == "redactions")]


def test_round_trip_gives_the_same_header_devices_and_records(tmp_path):
    path = tmp_path / "s.tws"
    expected = write_small(path)
    r = tws.Reader(path)
    assert r.header["version"] == tws.VERSION and r.header["format"] == "tws"
    assert r.header["site"] == "store-1" and r.header["till"] == "till-3"
    assert r.header["created_ns"] == 1_700_000_000_000_000_000
    assert {"wall_ns", "monotonic_ns"} <= set(r.header["clock"])
    assert r.header["redaction"] == {"policy": "none", "protocols": []}
    assert r.devices == DEVICES
    assert records(r) == expected
    assert r.truncated is False
    assert tws.read(path).devices == DEVICES


def test_header_names_the_redaction_policy_and_the_trailer_counts_masked_ranges(tmp_path):
    path = tmp_path / "s.tws"
    pan = b"4111111111111111"
    with tws.Writer.create(path, devices=[tws.DeviceInfo("msr", "msr")]) as w:
        w.chunk(1, "msr", "to_device", b";" + pan + b"=25121010000000000?\r")
        w.chunk(2, "msr", "to_device", b"card " + pan + b"\r")
    r = tws.Reader(path)
    assert r.header["redaction"] == {"policy": "card-data-v1", "protocols": ["msr"]}
    assert r.redactions == {"msr": {"track": 1, "pan": 1}}
    assert pan not in path.read_bytes()


def test_records_from_a_time_use_the_index(tmp_path):
    path = tmp_path / "s.tws"
    expected = write_small(path)
    r = tws.Reader(path)
    assert len(r.index) >= 4  # one block per flush
    start = expected[15].t_ns
    assert list(r.records(start_ns=start)) == [rec for rec in r.records() if rec.t_ns >= start]


def test_a_chunk_or_control_record_for_an_unknown_device_is_a_value_error(tmp_path):
    with tws.Writer.create(tmp_path / "s.tws", devices=DEVICES) as w:
        with pytest.raises(ValueError, match="unknown device 'scale'"):
            w.chunk(1, "scale", "from_device", b"x")
        with pytest.raises(ValueError, match="unknown device"):
            w.control(1, "scale", "open")
        with pytest.raises(ValueError, match="direction"):
            w.chunk(1, "printer", "sideways", b"x")


def test_device_options_the_redactor_cannot_use_fail_at_create(tmp_path):
    with pytest.raises(ValueError, match="device 'pt': .*preset"):
        tws.Writer.create(tmp_path / "s.tws", devices=[tws.DeviceInfo("pt", "ecr", options={"preset": "nope"})])


def test_close_is_idempotent_and_a_closed_writer_refuses_records(tmp_path):
    w = tws.Writer.create(tmp_path / "s.tws", devices=DEVICES)
    w.close()
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.chunk(1, "printer", "to_device", b"x")


def test_a_file_cut_at_any_byte_reads_a_prefix_of_the_records_and_says_it_was_cut(tmp_path):
    path = tmp_path / "s.tws"
    expected = write_small(path)
    data = path.read_bytes()
    cut_path = tmp_path / "cut.tws"
    seen_lengths = set()
    for n in range(len(data)):
        cut_path.write_bytes(data[:n])
        r = tws.Reader(cut_path)  # never raises
        got = records(r)
        assert got == expected[:len(got)], n
        assert r.truncated, n
        seen_lengths.add(len(got))
        r.close()
    # cuts inside the footer or trailer still read everything; cuts earlier read whole blocks only
    assert len(expected) in seen_lengths and 0 in seen_lengths and len(seen_lengths) > 4


def test_a_flipped_byte_in_a_block_stops_the_reading_there(tmp_path):
    path = tmp_path / "s.tws"
    expected = write_small(path)
    r = tws.Reader(path)
    second = r.index[1][0]
    r.close()
    data = bytearray(path.read_bytes())
    data[second + tws.BLOCK_HEADER.size + 3] ^= 0x40  # inside the second record block's payload
    path.write_bytes(bytes(data))
    r = tws.Reader(path)
    got = records(r)
    first_block_records = [rec for rec in got]
    assert got == expected[:len(got)] and 0 < len(got) < len(expected)
    assert r.truncated
    assert first_block_records  # the block before the damage is still read


def test_a_block_longer_than_the_bound_is_rejected_without_reading_it(tmp_path):
    path = tmp_path / "s.tws"
    expected = write_small(path)
    r = tws.Reader(path)
    second = r.index[1][0]
    r.close()
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, second + 8, tws.MAX_BLOCK_PAYLOAD + 1)  # the length field
    path.write_bytes(bytes(data))
    r = tws.Reader(path)
    got = records(r)
    assert got == expected[:len(got)] and len(got) < len(expected) and r.truncated


def test_the_writer_keeps_every_block_under_the_bound_even_for_a_huge_chunk(tmp_path):
    path = tmp_path / "s.tws"
    big = bytes(range(256)) * (3 * 1024 * 1024 // 256 + 7)
    with tws.Writer.create(path, devices=DEVICES, redact=False) as w:
        w.chunk(5, "terminal", "to_device", big)
    data = path.read_bytes()
    pos = tws.PREAMBLE.size
    sizes = []
    while data[pos:pos + 4] == tws.BLOCK_SYNC:
        length = struct.unpack_from("<I", data, pos + 8)[0]
        sizes.append(length)
        pos += tws.BLOCK_HEADER.size + length
    assert max(sizes) <= tws.MAX_BLOCK_PAYLOAD and len(sizes) >= 4
    got = [rec for rec in tws.Reader(path).records() if type(rec) is tws.ChunkRecord]
    assert b"".join(rec.data for rec in got) == big and {rec.t_ns for rec in got} == {5}


def test_an_unknown_version_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "s.tws"
    write_small(path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, 8, 2)
    path.write_bytes(bytes(data))
    with pytest.raises(tws.TwsError, match="format version 2; this tillwire reads version 1"):
        tws.Reader(path)


def test_a_file_that_is_not_a_recording_is_refused(tmp_path):
    path = tmp_path / "notes.tws"
    path.write_bytes(b"hello, this is text\n")
    with pytest.raises(tws.TwsError, match="not a .tws recording"):
        tws.Reader(path)


def test_a_file_without_its_trailer_still_knows_the_redaction_counts_of_its_last_flush(tmp_path):
    path = tmp_path / "s.tws"
    w = tws.Writer.create(path, devices=[tws.DeviceInfo("scanner", "scanner")])
    w.chunk(1, "scanner", "to_device", b"4111111111111111\r")
    w.flush()  # the crash comes before close(): no trailer
    r = tws.Reader(path)
    assert r.truncated and r.redactions == {"scanner": {"pan": 1}}
    assert [rec.data for rec in r.records() if type(rec) is tws.ChunkRecord] == [b"4111110000001111\r"]

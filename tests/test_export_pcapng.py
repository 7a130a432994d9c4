"""``tillwire export pcapng FILE.tws``: one interface per device (LINKTYPE_USER0, nanosecond timestamps), one
enhanced packet per chunk with the recorded time and the direction in epb_flags. Checked with the module's own
block reader and, independently, with python-pcapng (PyPI ``python-pcapng``, a dev dependency)."""

from __future__ import annotations

import struct

import pcapng as pypcapng
import pytest

from bridge.cli import main
from bridge.recording import pcapng, tws

T0 = 1_700_000_000_123_456_789
DEVICES = [tws.DeviceInfo("printer", "escpos", "serial:///dev/ttyS0"), tws.DeviceInfo("terminal", "zvt-tcp")]
CHUNKS = [(T0, "printer", "to_device", b"\x1b@Hello\n"), (T0 + 1_500, "terminal", "to_device", b"\x06\x01\x00"),
          (T0 + 2_000_000_007, "terminal", "from_device", b"\x80\x00\x00"),
          (T0 + 3_000_000_000, "printer", "from_device", b"\x12")]


def recording(tmp_path):
    path = tmp_path / "s.tws"
    with tws.Writer.create(path, devices=DEVICES, redact=False) as w:
        w.control(T0 - 1, "printer", "open")
        for c in CHUNKS:
            w.chunk(*c)
    return path


def test_export_writes_one_interface_per_device_and_one_packet_per_chunk(tmp_path, capsys):
    path = recording(tmp_path)
    out = tmp_path / "s.pcapng"
    assert main(["export", "pcapng", str(path), "-o", str(out)]) == 0
    assert "wrote 4 packets from 2 devices" in capsys.readouterr().err
    blocks = list(pcapng.read_blocks(out.read_bytes()))
    types = [t for t, _ in blocks]
    assert types == [pcapng.SHB, pcapng.IDB, pcapng.IDB] + [pcapng.EPB] * 4
    magic, major, minor, _ = struct.unpack_from("<IHHq", blocks[0][1])
    assert (magic, major, minor) == (pcapng.BYTE_ORDER_MAGIC, 1, 0)
    for (_, body), dev in zip(blocks[1:3], DEVICES):
        linktype, _, _ = struct.unpack_from("<HHI", body)
        opts = pcapng.parse_options(body[8:])
        assert linktype == pcapng.LINKTYPE_USER0
        assert opts[pcapng.IF_NAME] == [dev.name.encode()] and opts[pcapng.IF_TSRESOL] == [b"\x09"]
        assert dev.protocol.encode() in opts[pcapng.IF_DESCRIPTION][0]
    for (_, body), (t, dev, direction, data) in zip(blocks[3:], CHUNKS):
        iface, hi, lo, cap, orig = struct.unpack_from("<IIIII", body)
        assert iface == [d.name for d in DEVICES].index(dev)
        assert (hi << 32 | lo) == t and cap == orig == len(data)
        assert body[20:20 + cap] == data
        opts = pcapng.parse_options(body[20 + cap + (-cap) % 4:])
        flags = struct.unpack("<I", opts[pcapng.EPB_FLAGS][0])[0]
        assert flags & 3 == (pcapng.OUTBOUND if direction == "to_device" else pcapng.INBOUND)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # python-pcapng's own field definitions
def test_python_pcapng_reads_the_export(tmp_path):
    path = recording(tmp_path)
    out = tmp_path / "s.pcapng"
    assert main(["export", "pcapng", str(path), "-o", str(out)]) == 0
    with open(out, "rb") as fh:
        blocks = list(pypcapng.FileScanner(fh))
    idbs = [b for b in blocks if isinstance(b, pypcapng.blocks.InterfaceDescription)]
    epbs = [b for b in blocks if isinstance(b, pypcapng.blocks.EnhancedPacket)]
    assert [b.link_type for b in idbs] == [147, 147]
    assert [b.options["if_name"] for b in idbs] == ["printer", "terminal"]
    assert [b.packet_data for b in epbs] == [c[3] for c in CHUNKS]
    assert [b.interface_id for b in epbs] == [0, 1, 1, 0]
    assert [b.timestamp_resolution for b in epbs] == [1e-9] * 4
    assert [b.timestamp_high << 32 | b.timestamp_low for b in epbs] == [c[0] for c in CHUNKS]


def test_export_defaults_to_the_recording_name_with_pcapng(tmp_path):
    path = recording(tmp_path)
    assert main(["export", "pcapng", str(path)]) == 0
    assert (tmp_path / "s.pcapng").read_bytes()[:4] == struct.pack("<I", pcapng.SHB)


def test_export_mistakes_are_one_line(tmp_path, capsys):
    assert main(["export", "pcapng", str(tmp_path / "missing.tws")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert main(["export", "pcapng", str(notes)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a .tws recording" in err

"""Export a ``.tws`` recording as pcapng (the IETF draft "PCAP Next Generation Dump File Format") that Wireshark
opens: one Interface Description Block per device, link type ``LINKTYPE_USER0`` (147: "reserved for private use",
Wireshark shows the bytes and lets a user attach a dissector through its DLT_USER table), ``if_name`` the device,
``if_description`` its protocol and transport, ``if_tsresol`` 9 (nanoseconds); one Enhanced Packet Block per
chunk with its recorded t_ns and ``epb_flags`` direction: ``to_device`` (till → device) outbound, ``from_device``
inbound. Control records (open, close, settings, errors) are not exported: a packet block holds bytes.

``read_blocks`` is a small reader of what ``write`` produces, used by the tests to check the block structure.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

from bridge.recording import tws

LINKTYPE_USER0 = 147
SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT = 0, 1
SHB_USERAPPL = 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9
EPB_FLAGS = 2
INBOUND, OUTBOUND = 1, 2
DIRECTION_FLAGS = {"from_device": INBOUND, "to_device": OUTBOUND}
SNAPLEN = 0  # no limit


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * _pad(len(value))


def _options(items: list[tuple[int, bytes]]) -> bytes:
    if not items:
        return b""
    return b"".join(_option(c, v) for c, v in items) + struct.pack("<HH", OPT_END, 0)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def write(reader: tws.Reader, out: BinaryIO) -> int:
    """Write the recording as pcapng to ``out``; returns the number of packets."""
    shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options([(SHB_USERAPPL, b"tillwire")])
    out.write(_block(SHB, shb))
    index = {}
    for i, dev in enumerate(reader.devices):
        index[dev.name] = i
        desc = f"{dev.protocol} {dev.transport}".strip().encode()
        opts = [(IF_NAME, dev.name.encode()), (IF_DESCRIPTION, desc), (IF_TSRESOL, b"\x09"),
                (OPT_COMMENT, f"tillwire device {dev.name}, protocol {dev.protocol}".encode())]
        out.write(_block(IDB, struct.pack("<HHI", LINKTYPE_USER0, 0, SNAPLEN) + _options(opts)))
    packets = 0
    for rec in reader.records():
        if type(rec) is not tws.ChunkRecord or rec.device not in index:
            continue
        data = rec.data
        body = struct.pack("<IIIII", index[rec.device], (rec.t_ns >> 32) & 0xFFFFFFFF, rec.t_ns & 0xFFFFFFFF,
                           len(data), len(data)) + data + b"\0" * _pad(len(data))
        body += _options([(EPB_FLAGS, struct.pack("<I", DIRECTION_FLAGS[rec.direction]))])
        out.write(_block(EPB, body))
        packets += 1
    return packets


def read_blocks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(block type, body) of each block of a little-endian pcapng; ValueError on a malformed block."""
    pos = 0
    while pos < len(data):
        if len(data) - pos < 12:
            raise ValueError(f"block at {pos} is cut short")
        btype, total = struct.unpack_from("<II", data, pos)
        if total < 12 or total % 4 or pos + total > len(data):
            raise ValueError(f"block at {pos} has a bad length {total}")
        if struct.unpack_from("<I", data, pos + total - 4)[0] != total:
            raise ValueError(f"block at {pos}: trailing length differs")
        yield btype, data[pos + 8:pos + total - 4]
        pos += total


def parse_options(raw: bytes) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    pos = 0
    while pos + 4 <= len(raw):
        code, ln = struct.unpack_from("<HH", raw, pos)
        if code == OPT_END:
            break
        out.setdefault(code, []).append(raw[pos + 4:pos + 4 + ln])
        pos += 4 + ln + _pad(ln)
    return out

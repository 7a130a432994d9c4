"""ZVT link layer properties: bounded frames, and no APDU data byte ever reaches the output (a ZVT APDU may carry
a PAN or track data; the link layer passes on only headers)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from protocols.zvt.tables import crc16_kermit


def serial_frame(apdu: bytes) -> bytes:
    crc = crc16_kermit(apdu + b"\x03")
    return b"\x10\x02" + apdu.replace(b"\x10", b"\x10\x10") + b"\x10\x03" + bytes([crc & 0xFF, crc >> 8])


def apdu(cls: int, instr: int, data: bytes) -> bytes:
    n = len(data)
    length = bytes([n]) if n < 0xFF else b"\xff" + bytes([n & 0xFF, n >> 8])
    return bytes([cls, instr]) + length + data


def decode(protocol: str, data: bytes) -> list[dict]:
    dec = Decoder(protocol)
    return dec.events(data) + dec.close_events()


def test_a_frame_longer_than_the_largest_apdu_is_dropped_and_the_next_frame_decodes():
    oversized = b"\x10\x02" + b"\x06\x01\xff\xff\xff" + b"\x01" * 65536 + b"\x10\x03\x00\x00"
    events = decode("zvt-serial", oversized + serial_frame(apdu(0x80, 0x00, b"")))
    assert [e["type"] for e in events] == ["protocol.error", "zvt.apdu"]
    assert events[0]["data"]["code"] == "frame_too_long" and events[0]["data"]["offset"] == 0
    assert events[1]["data"]["name"] == "ack"


def test_the_largest_apdu_fits():
    events = decode("zvt-serial", serial_frame(apdu(0x04, 0x0F, bytes(range(256)) * 255 + bytes(255))))
    assert events == [{"type": "zvt.apdu",
                       "data": {"class": 4, "instr": 15, "name": "status_information", "length": 65535}}]


card_like = st.binary(min_size=8, max_size=300).filter(lambda b: len(set(b)) >= 6)


@given(data=card_like, cls=st.sampled_from([0x06, 0x04, 0x84]), instr=st.integers(0, 255),
       cut=st.integers(0, 400), framing=st.sampled_from(["zvt-serial", "zvt-tcp"]))
def test_no_apdu_data_reaches_the_output(data, cls, instr, cut, framing):
    wire = apdu(cls, instr, data)
    if framing == "zvt-serial":
        wire = serial_frame(wire)
    wire = wire[: len(wire) - cut % 4]           # sometimes truncated: errors must not leak either
    dec = Decoder(framing)
    out = dec.feed(wire[:cut]) + dec.feed(wire[cut:]) + dec.close()
    for k in range(len(data) - 5):
        window = data[k:k + 6]
        if len(set(window)) >= 4:
            assert window not in out, f"data bytes {window.hex()} leaked into the output"

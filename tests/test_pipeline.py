"""The pipeline (bridge/pipeline.py): chunks in, outbox bodies out — one decoder per device and direction."""

from __future__ import annotations

from pathlib import Path

from bridge.capture import Chunk, Status
from bridge.config import DeviceConfig
from bridge.pipeline import Pipeline
from protocols import Decoder
from protocols.events import iter_bodies

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "pos://store-1/till-3/"
PRINTER = DeviceConfig("printer", "escpos", "tcp-listen://127.0.0.1:0")
SCALE = DeviceConfig("scale", "scale-nci", "serial:///dev/null")


def make(*devices):
    return Pipeline(devices or (PRINTER,), lambda name: PREFIX + name)


def test_events_get_src_of_the_device_and_ts_of_the_completing_chunk():
    p = make(PRINTER)
    out = p.process([Chunk(100, "printer", "to_device", b"\x1b@Hel"), Chunk(200, "printer", "to_device", b"lo\n")])
    assert out == [
        (PREFIX + "printer", "printer.init", {}, 100),
        (PREFIX + "printer", "printer.line", {"text": "Hello", "align": "left", "spans": []}, 200),
    ]


def test_each_direction_has_its_own_decoder():
    # An NCI scale: the till polls "W\r", the scale answers; a reply must not be parsed as a poll.
    p = make(SCALE)
    poll = b"W\r"
    reply = (ROOT / "sessions/scale/nci-produce.from_device.bin").read_bytes()
    out = p.process([Chunk(1, "scale", "to_device", poll), Chunk(2, "scale", "from_device", reply)])
    want_req = list(iter_bodies(Decoder("scale-nci", direction="to_device").feed(poll)))
    dec = Decoder("scale-nci", direction="from_device")
    want_rep = list(iter_bodies(dec.feed(reply)))
    assert [(k, d) for _, k, d, _ in out] == [(b["type"], b["data"]) for b in want_req + want_rep]
    assert all(src == PREFIX + "scale" for src, *_ in out)


def test_status_requests_are_passed_to_the_reply_decoder():
    # The till asks DLE EOT 1 (printer status) then DLE EOT 4 (paper); the replies are read against them.
    p = make(PRINTER)
    out = p.process([
        Chunk(1, "printer", "to_device", b"\x10\x04\x01"),
        Chunk(2, "printer", "from_device", b"\x16"),
        Chunk(3, "printer", "to_device", b"\x10\x04\x04"),
        Chunk(4, "printer", "from_device", b"\x12"),
    ])
    statuses = [d for _, kind, d, _ in out if kind == "printer.status"]
    assert [s["kind"] for s in statuses] == ["printer", "paper"]


def test_device_status_becomes_an_event_of_the_device():
    p = make(PRINTER)
    out = p.process([Status(5, "printer", "closed", {"transport": "tcp-listen://127.0.0.1:9100",
                                                      "reason": "Connection refused", "retry_s": 0.4})])
    assert out == [(PREFIX + "printer", "device.status",
                    {"state": "closed", "transport": "tcp-listen://127.0.0.1:9100", "reason": "Connection refused",
                     "retry_s": 0.4}, 5)]


def test_a_closed_connection_ends_the_stream():
    # A till drops its connection in the middle of a QR code command; the next connection prints a clean line.
    p = make(PRINTER)
    out = p.process([
        Chunk(1, "printer", "to_device", b"\x1b@first\n\x1d\x28\x6b\x40"),
        Status(2, "printer", "closed", {"transport": "tcp-listen://127.0.0.1:9100", "peer": "127.0.0.1:5000",
                                        "reason": "the till closed the connection"}),
        Chunk(3, "printer", "to_device", b"second\n"),
    ])
    kinds = [(k, d.get("code") or d.get("text") or d.get("state"), ts) for _, k, d, ts in out]
    assert kinds == [("printer.init", None, 1), ("printer.line", "first", 1), ("protocol.error", "truncated", 2),
                     ("device.status", "closed", 2), ("printer.line", "second", 3)]


def test_close_flushes_a_truncated_frame_as_protocol_error():
    p = make(PRINTER)
    assert p.process([Chunk(1, "printer", "to_device", b"\x1d\x28\x6b\x40")]) == []
    out = p.close(99)
    assert [(k, d["code"]) for _, k, d, _ in out] == [("protocol.error", "truncated")]
    assert out[0][3] == 99


def test_a_failing_decoder_is_replaced_and_the_loss_is_an_error_event(monkeypatch):
    p = make(PRINTER)
    dec = p._decoders[("printer", "to_device")]

    class Boom:
        def feed(self, data):
            raise RuntimeError("bug")

    p._decoders[("printer", "to_device")] = Boom()
    out = p.process([Chunk(1, "printer", "to_device", b"lost\n"), Chunk(2, "printer", "to_device", b"ok\n")])
    assert out[0][1] == "protocol.error" and out[0][2]["code"] == "decoder_failed"
    assert "RuntimeError" in out[0][2]["reason"]
    assert out[1][1:3] == ("printer.line", {"text": "ok", "align": "left", "spans": []})
    assert p.counters["printer"].errors == 1
    del dec


def test_counters_per_device():
    p = make(PRINTER)
    p.process([Chunk(1, "printer", "to_device", b"a\nb\n\x1b\x99")])
    c = p.counters["printer"]
    assert (c.chunks, c.bytes) == (1, 6)
    assert c.by_type["printer.line"] == 2

"""`make run`'s job: examples/demo.toml replays the bundled till day through the whole bridge. Every device's
events in the outbox are the events of decoding that device's recorded streams, and the feed serves them."""

from __future__ import annotations

import dataclasses

from bridge.config import load
from bridge.recording import tws
from bridge.service import Bridge
from bridge_helpers import ROOT, free_port, rows
from protocols import Decoder
from protocols.events import iter_bodies


def decoded_from_recording(path, devices) -> dict[str, list[tuple[str, dict]]]:
    """Each device's events from decoding its recorded chunks in file order, status requests paired with replies."""
    decoders = {(d.name, dr): Decoder(d.protocol, direction=dr, **d.options)
                for d in devices for dr in ("to_device", "from_device")}
    out: dict[str, list] = {d.name: [] for d in devices}
    for rec in tws.Reader(path).records():
        if not isinstance(rec, tws.ChunkRecord):
            continue
        for body in iter_bodies(decoders[(rec.device, rec.direction)].feed(rec.data)):
            out[rec.device].append((body["type"], body["data"]))
            if rec.direction == "to_device" and body["type"] == "printer.status_request":
                decoders[(rec.device, "from_device")].note_request(body["data"]["kind"], body["data"]["n"])
    for (name, _), dec in decoders.items():
        out[name].extend((b["type"], b["data"]) for b in iter_bodies(dec.close()))
    return out


def test_the_demo_day_through_the_bridge(tmp_path):
    cfg = load(ROOT / "examples" / "demo.toml")
    assert cfg.stop_after_replay
    # The demo's own config, with the outbox in tmp, a free feed port, and every device as fast as possible.
    devices = tuple(dataclasses.replace(d, transport=d.transport.replace("speed=4", "speed=max"))
                    for d in cfg.devices)
    cfg = dataclasses.replace(cfg, outbox=tmp_path / "outbox.sqlite", devices=devices,
                              feed=dataclasses.replace(cfg.feed, port=free_port()))
    bridge = Bridge(cfg, log=lambda m: None)
    bridge.start()
    try:
        bridge.wait()  # stop_after_replay: returns once every device's recording has ended
    finally:
        bridge.close()
    stored: dict[str, list] = {d.name: [] for d in cfg.devices}
    for _, src, _, env in rows(tmp_path / "outbox.sqlite"):
        if env["type"] != "device.status":
            stored[src.rsplit("/", 1)[1]].append((env["type"], env["data"]))
    recording = devices[0].transport.split("://", 1)[1].split("?", 1)[0]
    assert stored == decoded_from_recording(recording, cfg.devices)
    types = {t for events in stored.values() for t, _ in events}
    assert {"scanner.data", "scale.weight", "display.text", "payment.result", "payment.eod", "printer.line",
            "drawer.kick", "drawer.status"} <= types
    assert "protocol.error" not in types

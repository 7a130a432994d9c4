"""The key property of redaction (docs/bridge/recording.md section 5): for every bundled sample session
(``sessions/**/*.bin``), replaying a redacted recording gives the same events as decoding the original bytes
live — on whichever backend this run exercises. The decoders only ever emit masked card data, and the masks keep
exactly what they show."""

from __future__ import annotations

import os
import random

import pytest

from bridge.recording import tws
from bridge.recording.samples import bundled_sessions
from bridge.replay_cmd import replay_events
from protocols import Decoder
from protocols.events import iter_bodies

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sessions")
SESSIONS = bundled_sessions(ROOT)


def test_every_bundled_capture_is_covered():
    # sessions/till holds multi-device sessions, recorded as .tws by their generator: tests/test_till_sessions.py
    # checks that the recording keeps every byte (their terminal already masks the PAN), and
    # tests/test_demo_run.py that replaying them through the bridge gives the events of decoding them.
    files = {os.path.join(dp, f) for dp, _, fs in os.walk(ROOT) for f in fs
             if f.endswith(".bin") and os.path.relpath(dp, ROOT).split(os.sep)[0] != "till"}
    covered = {p for s in SESSIONS for p in (s.to_device, s.from_device) if p}
    assert covered == files


def live_events(session) -> list[tuple[str, dict]]:
    """The original captures decoded as the live bridge would: the till's side first feeds the status requests a
    reply decoder needs (escpos)."""
    out = []
    reply = None
    if session.from_device:
        reply = Decoder(session.protocol, direction="from_device", **session.options)
    if session.to_device:
        dec = Decoder(session.protocol, direction="to_device", **session.options)
        data = open(session.to_device, "rb").read()
        for body in iter_bodies(dec.feed(data) + dec.close()):
            if body["type"].endswith(".status_request") and reply is not None:
                reply.note_request(body["data"]["kind"], body["data"]["n"])
            out.append(("to_device", body))
    if reply is not None:
        data = open(session.from_device, "rb").read()
        out += [("from_device", b) for b in iter_bodies(reply.feed(data) + reply.close())]
    return out


@pytest.mark.parametrize("session", SESSIONS, ids=[s.name for s in SESSIONS])
def test_replaying_a_redacted_recording_gives_the_events_of_the_original(tmp_path, session):
    rng = random.Random(session.name)
    path = tmp_path / "session.tws"
    device = session.protocol.split("-")[0]
    with tws.Writer.create(path, devices=[tws.DeviceInfo(device, session.protocol, options=session.options)],
                           site="test", created_ns=1) as w:
        t = 1_000_000
        # the till's side first, then the device's (the order the live decoders saw them), in random chunks
        for direction, p in (("to_device", session.to_device), ("from_device", session.from_device)):
            if not p:
                continue
            data = open(p, "rb").read()
            i = 0
            while i < len(data):
                k = rng.choice([1, 2, 3, 7, 16, 64, 512, 4096])
                w.chunk(t, device, direction, data[i:i + k])
                i += k
                t += 1000
    r = tws.Reader(path)
    recorded = {d: b"".join(rec.data for rec in r.records() if type(rec) is tws.ChunkRecord and rec.direction == d)
                for d in ("to_device", "from_device")}
    for direction, p in (("to_device", session.to_device), ("from_device", session.from_device)):
        original = open(p, "rb").read() if p else b""
        assert len(recorded[direction]) == len(original)  # in place: offsets as on the wire
    if session.protocol in ("msr", "iso8583") or (session.protocol.startswith("zvt") and session.from_device):
        assert r.redactions, "this capture carries card data: the recording says what it masked"
    events = replay_events(r, "file://session.tws/")
    expected = [body for _, body in live_events(session)]
    got = [{"type": e["type"], "data": e["data"]} for e in events]
    assert got == expected
    assert all(e["src"] == f"file://session.tws/{device}" for e in events)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert expected, "the session decodes to something"

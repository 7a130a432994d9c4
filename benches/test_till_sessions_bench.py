"""The bundled till day (simulator/till_sessions.py) decoded as the bridge decodes a replay: fresh decoders for
every device and direction of each session, fed the recorded chunks one by one in timeline order (small chunks:
a scanner label, a ZVT APDU, a receipt write), the printer's status requests handed to its reply decoder. This
is the per-chunk cost of a real till, not bulk throughput; and the generator's own cost (building the day)."""

from __future__ import annotations

import pytest

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.events import iter_bodies
from simulator.till_sessions import build_sessions

#: the day is small (about 5 kB); one timed round decodes it this many times
DAYS_PER_ROUND = 20


@pytest.fixture(scope="module")
def day():
    return build_sessions()


def replay_day(sessions, backend: str):
    def run():
        out = []
        for _ in range(DAYS_PER_ROUND):
            for session in sessions:
                decoders = {(d.name, direction): Decoder(d.protocol, direction, backend=backend, **d.options)
                            for d in session.devices for direction in ("to_device", "from_device")}
                for _, device, direction, data in session.chunks:
                    blob = decoders[(device, direction)].feed(data)
                    out.append(blob)
                    if b"printer.status_request" in blob:  # rare: unpack only then
                        for event in unpack_events(blob):
                            if event["type"] == "printer.status_request":
                                decoders[(device, "from_device")].note_request(event["data"]["kind"],
                                                                               event["data"]["n"])
                out.extend(dec.close() for dec in decoders.values())
        return out

    return run


def _size(sessions) -> tuple[int, int]:
    nbytes = DAYS_PER_ROUND * sum(len(c[3]) for s in sessions for c in s.chunks)
    nevents = sum(1 for blob in replay_day(sessions, "reference")() for _ in iter_bodies(blob))
    return nbytes, nevents


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_till_day_replayed_chunk_by_chunk(measure, results, day, backend):
    nbytes, nevents = _size(day)
    measure(f"till day x{DAYS_PER_ROUND}, chunk by chunk, {backend}", replay_day(day, backend), nbytes, nevents)
    if backend == "native":
        results.ratios.append(("till day native / reference", f"till day x{DAYS_PER_ROUND}, chunk by chunk, native",
                               f"till day x{DAYS_PER_ROUND}, chunk by chunk, reference", "> 1 (small chunks)"))


def test_building_the_till_day(measure, day):
    nbytes = sum(len(c[3]) for s in day for c in s.chunks)
    measure("till day, generator (build_sessions)", build_sessions, nbytes, 0, rounds=5)


def test_backends_agree_on_the_till_day(day):
    assert replay_day(day, "native")() == replay_day(day, "reference")()

"""Session recording throughput (docs/bridge/recording.md): the bundled sample captures, in 256-byte chunks as a
serial or TCP read returns them, written through ``tws.Writer`` with redaction (the recorder's whole path: masking,
msgpack records, CRC-checked blocks, a flush every 64 chunks), and read back. A till's devices produce KB/s; the
figures say how much headroom the recorder has. Bytes are the capture bytes."""

from __future__ import annotations

import os

import pytest

from bridge.recording import tws
from bridge.recording.samples import bundled_sessions

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sessions")
CHUNK = 256
REPEAT = 20  # the samples are small: each is recorded this many times per round


def streams() -> list[tuple[tws.DeviceInfo, str, bytes]]:
    out = []
    for s in bundled_sessions(ROOT):
        info = tws.DeviceInfo(s.name, s.protocol, options=s.options)
        for direction, path in (("to_device", s.to_device), ("from_device", s.from_device)):
            if path:
                out.append((info, direction, open(path, "rb").read() * REPEAT))
    return out


@pytest.fixture(scope="module")
def corpus():
    return streams()


@pytest.mark.parametrize("redact", [True, False], ids=["redacted", "plain"])
def test_record(measure, corpus, tmp_path, redact):
    devices = list({info.name: info for info, _, _ in corpus}.values())
    nbytes = sum(len(data) for _, _, data in corpus)
    path = tmp_path / "bench.tws"

    def run():
        with tws.Writer.create(path, devices=devices, redact=redact) as w:
            t, n = 0, 0
            for info, direction, data in corpus:
                for i in range(0, len(data), CHUNK):
                    w.chunk(t, info.name, direction, data[i:i + CHUNK])
                    t += 1000
                    n += 1
                    if n % 64 == 0:
                        w.flush()

    measure(f"tws write {'redacted' if redact else 'plain'}", run, nbytes, 0, rounds=5)


def test_read(measure, corpus, tmp_path):
    devices = list({info.name: info for info, _, _ in corpus}.values())
    nbytes = sum(len(data) for _, _, data in corpus)
    path = tmp_path / "bench.tws"
    with tws.Writer.create(path, devices=devices, redact=False) as w:
        for info, direction, data in corpus:
            for i in range(0, len(data), CHUNK):
                w.chunk(i, info.name, direction, data[i:i + CHUNK])

    def run():
        n = 0
        for rec in tws.Reader(path).records():
            n += 1
        assert n

    measure("tws read", run, nbytes, 0)

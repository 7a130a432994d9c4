"""ISO 8583 throughput: realistic 0200 requests and 0210 responses (like the research notes' sample, with EMV
field 55), framed with len2, about 1 MiB per feed, `iso87-binary`. Native and reference messages/s and MB/s, and
pyiso8583 4.x `decode` (the oracle, pure Python) on the very same messages in the same run. Targets (task):
native >= 1,000,000 messages/s and >= 20x pyiso8583. The "events/s" column counts messages here."""

from __future__ import annotations

import random

import iso8583
import pytest
from iso8583 import specs as pyspecs

from protocols.events import iter_bodies
from feeding import whole

MiB = 1 << 20


def tlv(tag: str, value: bytes) -> bytes:
    return bytes.fromhex(tag) + bytes([len(value)]) + value


def icc(rng: random.Random, amount: int) -> bytes:
    return b"".join([
        tlv("9F02", bytes.fromhex(f"{amount:012d}")), tlv("9F03", bytes(6)), tlv("9F26", rng.randbytes(8)),
        tlv("82", b"\x3c\x00"), tlv("9F36", rng.randbytes(2)), tlv("9F27", b"\x80"),
        tlv("9F10", bytes.fromhex("0110A00003220000000000000000000000FF")), tlv("9F37", rng.randbytes(4)),
        tlv("95", bytes(5)), tlv("9A", bytes.fromhex("260630")), tlv("9C", b"\x00"), tlv("5F2A", b"\x09\x78"),
        tlv("9F1A", b"\x02\x76"), tlv("84", bytes.fromhex("A0000000031010")), tlv("9F33", b"\xe0\xf8\xc8"),
    ])


def messages(rng: random.Random) -> list[bytes]:
    pan = "4" + "".join(rng.choice("0123456789") for _ in range(15))
    amount = rng.randrange(1, 100000)
    stan = f"{rng.randrange(1000000):06d}"
    common = {"2": pan, "3": "000000", "4": f"{amount:012d}", "7": "0630123045", "11": stan, "12": "123045",
              "13": "0630", "22": "051", "25": "00", "41": "TERM0001", "42": "MERCHANT0000001", "49": "978"}
    req = dict(common, t="0200", **{"14": "2812", "35": f"{pan}=28122011143878089",
                                    "55": icc(rng, amount).hex().upper()})
    resp = dict(common, t="0210", **{"37": f"{rng.randrange(10**12):012d}", "38": "A1B2C3",
                                     "39": rng.choice(["00", "00", "00", "05"]), "55": icc(rng, amount).hex().upper()})
    return [bytes(iso8583.encode(req, pyspecs.default)[0]), bytes(iso8583.encode(resp, pyspecs.default)[0])]


@pytest.fixture(scope="module")
def corpus() -> tuple[bytes, list[bytes]]:
    rng = random.Random(8583)
    msgs, size = [], 0
    while size < MiB:
        for m in messages(rng):
            msgs.append(m)
            size += len(m) + 2
    return b"".join(len(m).to_bytes(2, "big") + m for m in msgs), msgs


def _whole(backend: str, data: bytes):
    return whole(data, "iso8583", backend=backend, spec="iso87-binary", framing="len2")


def test_iso8583_native_1mib(measure, corpus, results):
    data, msgs = corpus
    measure("iso8583 native, 1 MiB len2 feed", _whole("native", data), len(data), len(msgs), rounds=25)
    results.ratios.append(("iso8583 native / pyiso8583 decode", "iso8583 native, 1 MiB len2 feed",
                           "pyiso8583 4.x decode, same messages", ">= 20x; native >= 1,000,000 msg/s"))
    results.ratios.append(("iso8583 native / reference", "iso8583 native, 1 MiB len2 feed",
                           "iso8583 reference, 1 MiB len2 feed", "none"))


def test_iso8583_reference_1mib(measure, corpus):
    data, msgs = corpus
    measure("iso8583 reference, 1 MiB len2 feed", _whole("reference", data), len(data), len(msgs), rounds=3)


def test_pyiso8583_decode_same_messages(measure, corpus):
    data, msgs = corpus
    decode, spec = iso8583.decode, pyspecs.default

    def run():
        for m in msgs:
            decode(m, spec)

    measure("pyiso8583 4.x decode, same messages", run, len(data), len(msgs), rounds=5)


def test_backends_agree_and_every_message_decodes(corpus):
    data, msgs = corpus
    out = _whole("native", data)()
    assert out == _whole("reference", data)()
    types = [e["type"] for e in iter_bodies(out)]
    assert types.count("iso8583.message") == len(msgs) and "protocol.error" not in types

"""Generic ECR link throughput on realistic dialogues for two presets (docs/protocols/ecr.md): Transbank sales
(request, ACK, intermediate status messages, the response with a printed voucher, ACK) and PAX POSLink credit
transactions (T00 with sub-fields, ACK, T01 with host/amount/account/trace groups - its expiry and cardholder
withheld - ACK, EOT). 1 MiB each, native vs
reference, fed whole and in 4 KiB chunks. Target (task): >= 300 MB/s native, framing and decoding together (the
frame events with their scrubbed payloads and fields, and the semantic events), and >= 30x the reference."""

from __future__ import annotations

import random

import pytest

from protocols import Decoder
from protocols.ecr import tables as T
from protocols.events import iter_bodies
from feeding import chunked, whole

MiB = 1 << 20


def transbank_dialogue(rng: random.Random, cfg: T.Config) -> bytes:
    amount = rng.randrange(100, 500000)
    ticket = f"T{rng.randrange(10**6):06d}"
    out = [T.frame(cfg, f"0200|{amount}|{ticket}||1|1".encode()), b"\x06"]
    for status in ("80", "81", "82", "83"):  # intermediate status messages (sendStatus): not in the layout table
        out += [T.frame(cfg, f"0900|{status}|".encode()), b"\x06"]
    lines = ["TRANSBANK", "COMPROBANTE DE VENTA", f"MONTO ${amount:>28}", f"TICKET {ticket:>32}",
             f"CARD ************{rng.randrange(10000):04d}", "APROBADO", "GRACIAS POR SU COMPRA"] * 3
    voucher = "".join(f"{line:<40}" for line in lines)
    pan = f"4{rng.randrange(10**15):015d}"
    response = (f"0210|00|597029414300|70000001|{ticket}|{rng.randrange(10**6):06d}|{amount}|||"
                f"{pan[-4:]}|{rng.randrange(10**6)}|CR|0101|{pan}|VI|01012026|{rng.randrange(240000):06d}|0|0|"
                f"{voucher}")
    out += [T.frame(cfg, response.encode()), b"\x06"]
    return b"".join(out)


def pax_dialogue(rng: random.Random, cfg: T.Config) -> bytes:
    fs, us = "\x1c", "\x1f"
    amount = rng.randrange(100, 500000)
    ref = f"{rng.randrange(10**8):08d}"
    request = fs.join(["T00", "1.35", "01", us.join([str(amount), "", "", "", "", ""]), us.join(["", "", "", ""]),
                       us.join([ref, "", "", ""]), "", "", "", ""])
    pan_last4 = f"{rng.randrange(10000):04d}"
    response = fs.join([
        "0", "T01", "1.35", "000000", "OK",
        us.join(["00", "APPROVAL", f"{rng.randrange(10**6):06d}", ref, "", ""]),
        "01",
        us.join([str(amount), "0", "0", "0", "0", "0"]),
        us.join([pan_last4, "0", "1225", "", "", "", "VISA", "CARDHOLDER/NAME", "", "", "0"]),
        us.join([ref, "1", f"{rng.randrange(10**14):014d}", "", ""]),
        "", "",
        us.join(["EDCTYPE=CREDIT", "CARDBIN=411111", "PROGRAMTYPE=0", "SN=53012345", "TC=ABCDEF0123456789"]),
    ])
    out = [T.frame(cfg, request.encode("latin-1")), b"\x06", T.frame(cfg, response.encode("latin-1")), b"\x06\x04"]
    return b"".join(out)


DIALOGUES = {"transbank": transbank_dialogue, "pax": pax_dialogue}


def make_corpus(preset: str) -> bytes:
    cfg = T.resolve({"preset": preset})
    rng = random.Random(7)
    parts, size = [], 0
    while size < MiB:
        d = DIALOGUES[preset](rng, cfg)
        parts.append(d)
        size += len(d)
    data = b"".join(parts)
    # cut at a dialogue boundary near 1 MiB so the corpus ends cleanly
    cut = MiB
    while data[cut - 1:cut] not in (b"\x06", b"\x04"):
        cut += 1
    return data[:cut]


@pytest.fixture(scope="module", params=sorted(DIALOGUES))
def corpus(request):
    data = make_corpus(request.param)
    dec = Decoder("ecr", backend="reference", preset=request.param)
    events = sum(1 for _ in iter_bodies(dec.feed(data) + dec.close()))
    return request.param, data, events


def _whole(preset: str, backend: str, data: bytes):
    return whole(data, "ecr", backend=backend, preset=preset)


def _chunked(preset: str, backend: str, data: bytes):
    return chunked(data, "ecr", backend=backend, preset=preset)


def test_ecr_native_1mib(measure, corpus, results):
    preset, data, events = corpus
    measure(f"ecr {preset} native, 1 MiB feed", _whole(preset, "native", data), len(data), events, rounds=15)
    results.ratios.append((f"ecr {preset} native / reference", f"ecr {preset} native, 1 MiB feed",
                           f"ecr {preset} reference, 1 MiB feed", ">= 30x; >= 300 MB/s native"))
    results.ratios.append((f"ecr {preset} 4 KiB chunks / 1 MiB feed", f"ecr {preset} native, 4 KiB chunks",
                           f"ecr {preset} native, 1 MiB feed", "close to 1"))


def test_ecr_native_4kib_chunks(measure, corpus):
    preset, data, events = corpus
    measure(f"ecr {preset} native, 4 KiB chunks", _chunked(preset, "native", data), len(data), events, rounds=15)


def test_ecr_reference_1mib(measure, corpus):
    preset, data, events = corpus
    measure(f"ecr {preset} reference, 1 MiB feed", _whole(preset, "reference", data), len(data), events, rounds=3)


def test_backends_agree_on_the_dialogues(corpus):
    preset, data, _ = corpus
    assert _whole(preset, "native", data)() == _whole(preset, "reference", data)()
    assert b"".join(_chunked(preset, "native", data)()) == _whole(preset, "native", data)()

"""The Decoder facade: one interface for every protocol and backend; misuse raises, bad input never does."""

from __future__ import annotations

import pytest

from protocols import BACKENDS, Decoder, DecoderClosed, available_protocols
from protocols.decoder import default_backend


def test_escpos_is_available():
    assert "escpos" in available_protocols()


def test_backend_follows_the_environment(monkeypatch):
    monkeypatch.setenv("TILLWIRE_BACKEND", "reference")
    assert Decoder("escpos").backend == "reference"
    monkeypatch.setenv("TILLWIRE_BACKEND", "native")
    assert Decoder("escpos").backend == "native"
    monkeypatch.setenv("TILLWIRE_BACKEND", "fortran")
    with pytest.raises(ValueError, match="TILLWIRE_BACKEND='fortran'"):
        default_backend()


@pytest.mark.parametrize("backend", BACKENDS)
def test_misuse_raises(backend):
    with pytest.raises(ValueError, match="unknown protocol"):
        Decoder("telex", backend=backend)
    with pytest.raises(ValueError, match="direction"):
        Decoder("escpos", direction="sideways", backend=backend)
    with pytest.raises(ValueError, match="unknown escpos option"):
        Decoder("escpos", backend=backend, colour=True)
    with pytest.raises(TypeError):
        Decoder("escpos", backend=backend, images="yes")
    dec = Decoder("escpos", backend=backend)
    with pytest.raises(TypeError):
        dec.feed("text, not bytes")
    dec.close()
    with pytest.raises(DecoderClosed):
        dec.feed(b"x")
    with pytest.raises(DecoderClosed):
        dec.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_never_raises_and_text_after_garbage_decodes(backend):
    dec = Decoder("escpos", backend=backend)
    events = dec.events(bytes(range(256)) + b"\x1b@after the garbage\n") + dec.close_events()
    assert any(e["type"] == "protocol.error" for e in events)
    assert events[-1] == {"type": "printer.line", "data": {"text": "after the garbage", "align": "left", "spans": []}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_accepts_bytearray_and_memoryview(backend):
    a, b = Decoder("escpos", backend=backend), Decoder("escpos", backend=backend)
    assert a.feed(bytearray(b"abc\n")) == b.feed(memoryview(b"abc\n"))


def test_strided_memoryview_gives_the_same_events_on_both_backends():
    data = memoryview(b"H_e_l_l_o_\n_")[::2]
    assert not data.c_contiguous
    outs = {Decoder("escpos", backend=b).feed(data) for b in BACKENDS}
    assert len(outs) == 1
    assert Decoder("escpos", backend="native").events(data) == [
        {"type": "printer.line", "data": {"text": "Hello", "align": "left", "spans": []}}]

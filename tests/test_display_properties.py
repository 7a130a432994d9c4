"""Properties of the customer display decoders (docs/protocols/display.md): options, the command table shared by C
and Python, the tick rule, card data, bounds and chunk invariance, and the display embedded in ESC/POS (ESC = 2)
against a standalone display-epson decoder. Runs on the backend TILLWIRE_BACKEND selects, except where a test
compares both."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.display import tables as T
from streams import feed_all, split

PAN = b"4111111111111111"


def events(protocol, data, **options):
    d = Decoder(protocol, **options)
    return unpack_events(d.feed(data) + d.close())


@pytest.mark.parametrize("protocol", ["display-epson", "display-cd5220"])
def test_options_accept_ints_and_strings(protocol):
    ev = events(protocol, b"abcdefgh", columns="4", rows="2")
    assert ev == [{"type": "display.text", "data": {"lines": ["abcd", "efgh"]}}]
    assert events(protocol, b"x", columns=3, rows=1, profile="tm-t88")[0]["data"]["lines"] == ["x  "]


@pytest.mark.parametrize("options, name", [
    ({"columns": 0}, "columns"), ({"columns": "41"}, "columns"), ({"columns": "twenty"}, "columns"),
    ({"columns": True}, "columns"), ({"rows": 5}, "rows"), ({"rows": 1.5}, "rows"),
    ({"profile": "nope"}, "profile"), ({"profile": 3}, "profile"), ({"colour": 1}, "colour"),
])
def test_bad_options_name_the_option(options, name):
    with pytest.raises(ValueError, match=name):
        Decoder("display-epson", **options)


def test_the_c_command_table_is_the_python_table():
    from protocols.display.native import ffi, lib

    n = ffi.new("unsigned *")
    table = lib.tw_display_command_table(n)
    c_rows = [(t.dialects, bytes(t.bytes[0:t.len]), t.params, t.action, t.arg) for t in table[0:n[0]]]
    assert c_rows == list(T.COMMANDS)


def test_every_action_is_used_and_commands_are_unique_per_dialect():
    assert {a for _, _, _, a, _ in T.COMMANDS} == set(range(len(T.ACTION_NAMES)))
    for bit in (T.EPSON, T.CD5220):
        cmds = [c for m, c, _, _, _ in T.COMMANDS if m & bit]
        assert len(cmds) == len(set(cmds))
        # no command is a prefix of another, except ESC Q / ESC [ which always take a third byte
        assert not any(a != b and b.startswith(a) for a in cmds for b in cmds)


@pytest.mark.parametrize("protocol", ["display-epson", "display-cd5220"])
def test_tick_ends_a_burst_only_after_a_quiet_tick(protocol):
    d = Decoder(protocol)
    assert d.feed(b"\x0cHello") == b""
    assert d.tick(1) == b""  # bytes arrived since the last tick
    shown = unpack_events(d.tick(2))  # a quiet tick
    assert shown == [{"type": "display.text", "data": {"lines": ["Hello" + " " * 15, " " * 20]}}]
    assert d.tick(3) == b""  # unchanged: nothing more
    assert unpack_events(d.feed(b"!") + d.tick(4) + d.tick(5))[0]["data"]["lines"][0].startswith("Hello!")
    assert d.close() == b""


@given(st.sampled_from(["display-epson", "display-cd5220"]), st.binary(max_size=200),
       st.sampled_from([b"", b" ", b"-"]), st.integers(0, 3))
def test_a_pan_never_leaves_a_display(protocol, noise, sep, where):
    pan = sep.join([PAN[0:4], PAN[4:8], PAN[8:12], PAN[12:16]])
    prefix = [b"", b"\x0c", b"\x1b\x51\x42", b"\x1f\x24\x01\x02"][where]
    data = noise + b"\x0b\x0c" + prefix + pan + b"\r"
    out = Decoder(protocol).feed(data) + Decoder(protocol).close()
    d = Decoder(protocol)
    blob = feed_all(d, [data])
    for ev in unpack_events(out + blob):
        for line in ev["data"].get("lines", []):
            assert "41111111" not in line.replace(" ", "").replace("-", "")
        assert PAN not in ev["data"].get("raw", b"")


@given(st.sampled_from(["display-epson", "display-cd5220"]), st.binary(min_size=1, max_size=2000),
       st.lists(st.integers(0, 3000), max_size=8))
def test_arbitrary_bytes_any_split_same_output(protocol, data, cuts):
    whole = feed_all(Decoder(protocol), [data])
    assert feed_all(Decoder(protocol), split(data, cuts)) == whole
    for ev in unpack_events(whole):
        if ev["type"] == "protocol.error":
            raw = ev["data"]["raw"]
            assert len(raw) <= 1 and all(b < 0x20 for b in raw)
        if ev["type"] == "display.text":
            assert [len(line) for line in ev["data"]["lines"]] == [20, 20]


def test_long_streams_do_not_grow_state():
    d = Decoder("display-epson")
    chunk = b"\x1f\x02" + b"Scrolling message! " * 50 + b"\x0a" + b"\x1b\x26\x01\x20\xff" + b"\x05" * 10
    for _ in range(200):
        d.feed(chunk)
    d.close()


def _display_bytes():
    """Display-epson streams without ESC or DLE bytes anywhere (those would reach the printer's ESC = / DLE
    parser) and without commands left open."""
    text = st.sampled_from([b"Milk 1L", b"TOTAL 5.00", b" 4111 1111 1111 1111", b"\x9c\x81", b"CHANGE"])
    cmd = st.sampled_from([b"\x0c", b"\x0b", b"\x0d", b"\x0a", b"\x08", b"\x09", b"\x18", b"\x1f\x02",
                           b"\x1f\x03", b"\x1f\x01", b"\x1f\x24\x01\x02", b"\x1f\x24\x05\x01", b"\x1f\x42",
                           b"\x1f\x58\x02", b"\x1f\x43\x01", b"\x07"])
    return st.lists(st.one_of(text, cmd), max_size=20).map(b"".join)


@given(st.lists(_display_bytes(), min_size=1, max_size=4), st.lists(st.integers(0, 500), max_size=5))
def test_the_display_behind_a_printer_is_a_display_epson(updates, cuts):
    """Each ESC = 2 ... ESC = 1 interlude shows on the embedded display exactly what a display-epson decoder shows
    for the same bytes, with ESC = 1 ending a burst as a quiet tick does."""
    stream = b"".join(b"\x1b=\x02" + u + b"\x1b=\x01" + b"printed\n" for u in updates)
    printer = [e for e in unpack_events(feed_all(Decoder("escpos"), split(stream, cuts)))
               if e["type"] != "printer.line"]
    d = Decoder("display-epson")
    alone = []
    for u in updates:
        alone += unpack_events(d.feed(u) + d.tick(0) + d.tick(0))
    alone += unpack_events(d.close())
    strip = [dict(e, data={k: v for k, v in e["data"].items() if k != "offset"}) for e in printer + alone]
    assert strip[:len(printer)] == strip[len(printer):]


# ------------------------------------------------------------------ a PAN shown a few characters at a time

def _pan_runs(pan: str, n: int = 5) -> list[bytes]:
    return [pan[i:i + n].encode() for i in range(len(pan) - n + 1)]


@given(st.from_regex(r"\A[1-9][0-9]{12,18}\Z"), st.sampled_from(["display-epson", "display-cd5220"]),
       st.sampled_from(["native", "reference"]))
def test_a_pan_typed_digit_by_digit_never_shows_five_of_its_digits(pan, protocol, backend):
    """A till that echoes a card number as it is keyed in, the bridge ticking between keystrokes: every snapshot
    is an event, and together they must not reveal the number (a per-snapshot "first six, last four" would)."""
    d = Decoder(protocol, backend=backend)
    out = d.feed(b"\x0c")
    t = 0
    for digit in pan.encode():
        out += d.feed(bytes([digit]))
        out += d.tick(t) + d.tick(t + 10**9)
        t += 2 * 10**9
    out += d.close()
    assert not [r for r in _pan_runs(pan) if r in out]


@given(st.from_regex(r"\A[1-9][0-9]{12,18}\Z"), st.sampled_from(["native", "reference"]))
def test_a_pan_scrolling_through_the_window_never_shows_five_of_its_digits(pan, backend):
    """Epson horizontal scroll mode (US MD3) shifts the row one character at a time under the window."""
    d = Decoder("display-epson", backend=backend)
    out = d.feed(b"\x1f\x03" + f"PAN:{pan} THANK YOU".encode()) + d.close()
    assert not [r for r in _pan_runs(pan) if r in out]

"""MSR decoder properties on the backend TILLWIRE_BACKEND selects: option parsing, the swipe framing by time
(docs/protocols/msr.md section 2), the bounds, the card data rule (no PAN run of 7 digits, no discretionary data,
no name in any output), and the msr.swipe the scanner decoder builds from the same track."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.msr import tables as T
from streams import split

MS = 1_000_000
T1 = b"%B4111111111111111^DOE/JOHN^2512101123456789?"
T2 = b";4111111111111111=25121011234567890?"


def swipes(events):
    return [e["data"] for e in events if e["type"] == "msr.swipe"]


def codes(events):
    return [e["data"]["code"] for e in events if e["type"] == "protocol.error"]


# ------------------------------------------------------------------------------------------------ options

@pytest.mark.parametrize("opts, word", [
    ({"separator": "tab"}, "separator"), ({"separator": 13}, "separator"), ({"lrc": "maybe"}, "lrc"),
    ({"lrc": 2}, "lrc"), ({"tracks": "4"}, "tracks"), ({"tracks": ""}, "tracks"), ({"tracks": "112"}, "tracks"),
    ({"tracks": True}, "tracks"), ({"gap_ms": "fast"}, "gap_ms"), ({"gap_ms": 0}, "gap_ms"),
    ({"gap_ms": 60001}, "gap_ms"), ({"gap_ms": True}, "gap_ms"), ({"colour": "red"}, "colour"),
])
def test_bad_options_name_the_option(opts, word):
    with pytest.raises(ValueError, match=word):
        Decoder("msr", **opts)


def test_cli_strings_and_ints_are_accepted():
    d = Decoder("msr", separator="CRLF", lrc="true", tracks="1,2", gap_ms="20")
    assert swipes(d.events(T1 + b":\r\n" + T2 + b"9\r\n")) == [{"pan": "411111******1111", "tracks": [1, 2]}]
    d = Decoder("msr", tracks=2, lrc=0)
    assert swipes(d.events(T2 + b"\r")) == [{"pan": "411111******1111", "tracks": [2]}]


# -------------------------------------------------------------------------------------------- time (§2)

def test_gap_ends_a_swipe_only_after_a_quiet_tick():
    d = Decoder("msr", gap_ms=50)
    assert d.events(T1 + b"\r") == []
    assert d.tick(0) == b""             # records the bytes' time
    assert d.events(T2 + b"\r") == []
    assert d.tick(40 * MS) == b""       # new bytes: their time is 40 ms
    assert d.tick(90 * MS) == b""       # exactly the gap: not more
    assert swipes(unpack_events(d.tick(91 * MS))) == [{"pan": "411111******1111", "tracks": [1, 2]}]
    assert d.tick(500 * MS) == b""      # nothing pending
    d.feed(T1)
    d.tick(600 * MS)
    assert d.tick(599 * MS) == b""      # a clock going back ends nothing
    assert d.close_events() == [{"type": "msr.swipe", "data": {"pan": "411111******1111", "tracks": [1]}}]


def test_a_gap_inside_a_track_cuts_it():
    d = Decoder("msr")
    d.feed(T1[:20])
    d.tick(0)
    out = unpack_events(d.tick(51 * MS))
    assert codes(out) == ["msr_no_end_sentinel"] and swipes(out) == [{"tracks": []}]
    assert d.close() == b""


def test_without_ticks_swipes_end_at_the_next_swipe_or_close():
    d = Decoder("msr")
    assert d.events(T1 + b"\r" + T2 + b"\r") == []
    assert swipes(d.events(T1)) == [{"pan": "411111******1111", "tracks": [1, 2]}]
    assert swipes(d.close_events()) == [{"pan": "411111******1111", "tracks": [1]}]


# ------------------------------------------------------------------------------------------ bounds (§3)

@pytest.mark.parametrize("n, start, tracks", [(1, b"%", "1"), (2, b";", "2"), (3, b";", "3")])
def test_track_bounds(n, start, tracks):
    fill = b"A" if n == 1 else b"1"
    ok = start + fill * (T.MAX_TRACK[n] - 2) + b"?"
    assert len(ok) == T.MAX_TRACK[n]
    d = Decoder("msr", tracks=tracks)
    assert swipes(d.events(ok + b"\r")) == [{"tracks": [n]}]
    out = d.events(start + fill * (T.MAX_TRACK[n] - 1) + b"?\r") + d.close_events()
    assert codes(out) == ["msr_track_too_long"] and swipes(out) == [{"tracks": []}]


def test_memory_does_not_grow_with_junk():
    d = Decoder("msr")
    out = unpack_events(b"".join(d.feed(b"%" + b"A" * 5000 + b"x" * 5000) for _ in range(50)) + d.close())
    assert len(out) < 400


# ----------------------------------------------------------------------------------------- card data (§5)

pans = st.text("0123456789", min_size=12, max_size=19)
names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ /.", min_size=2, max_size=26)
discs = st.text("0123456789", min_size=0, max_size=30)


@st.composite
def swipe_stream(draw):
    pan, name, disc = draw(pans), draw(names), draw(discs)
    t1 = f"%B{pan}^{name}^2512101{disc}?".encode()
    t2 = f";{pan}={draw(st.sampled_from(['2512', '']))}101{disc}?".encode()
    t3 = f";01{pan}={disc}{disc}?".encode()
    sep = draw(st.sampled_from([b"\r", b"\r\n", b"\n", b""]))
    parts = draw(st.lists(st.sampled_from([t1, t2, t3, t1[:-5], t2[5:], b"%E?", b"x"]), min_size=1, max_size=6))
    return pan, name, disc, sep.join(parts) + sep


def leaks(out: bytes, secret: str, run: int = 7) -> bool:
    return any(secret[k:k + run].encode() in out for k in range(len(secret) - run + 1))


@given(swipe_stream(), st.sampled_from(["cr", "crlf", "lf", "none"]), st.sampled_from(["on", "off"]),
       st.sampled_from(["12", "123", "2"]), st.lists(st.integers(0, 400), max_size=10))
def test_no_card_data_leaves(stream, separator, lrc, tracks, cuts):
    pan, name, disc, data = stream
    d = Decoder("msr", separator=separator, lrc=lrc, tracks=tracks)
    out = b"".join(d.feed(c) for c in split(data, cuts)) + d.close()
    assert not leaks(out, pan), "a run of 7 PAN digits left"
    assert not leaks(out, disc), "a run of 7 discretionary digits left"
    if len(name.strip()) >= 6:
        assert name.encode() not in out
    for e in unpack_events(out):
        if e["type"] == "protocol.error":
            assert e["data"]["raw"] == b""
        elif e["type"] == "msr.swipe":
            assert set(e["data"]) <= {"pan", "tracks"}


def test_only_the_masked_pan_leaves():
    d = Decoder("msr", tracks="12")
    out = d.feed(T1 + b"\r" + T2 + b"\r") + d.close()
    assert b"DOE" not in out and b"2512" not in out and b"123456789" not in out
    assert not re.search(rb"\d{7}", out)


# ------------------------------------------------------------------------------- shared with the scanner

@pytest.mark.parametrize("track", [T1, T2, b"%B12^X^?", b";1234567890123456789012=?", b"%AMEMBER?"])
def test_scanner_and_msr_build_the_same_swipe(track):
    from_scanner = Decoder("scanner").feed(track + b"\r")
    number = 1 if track[:1] == b"%" else 2
    from_msr = Decoder("msr", tracks=str(number)).feed(track + b"\r")
    assert from_scanner == from_msr and from_msr

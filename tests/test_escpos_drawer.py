"""drawer.status on the printer's replies (docs/protocols/escpos.md section 9, "Cash drawer"): the option
drawer_open_level, one drawer.status right after every reply that carries the drawer bit, both backends alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from streams import split

DLE_EOT_1 = ("printer", 1)
GS_R_2 = ("drawer", 2)


def run(data: bytes, requests, backend=None, cuts=(), **options) -> list[dict]:
    dec = Decoder("escpos", direction="from_device", backend=backend, **options)
    for kind, n in requests:
        dec.note_request(kind, n)
    out = b"".join(dec.feed(c) for c in split(data, list(cuts))) + dec.close()
    from protocols.decoder import unpack_events

    return unpack_events(out)


@pytest.mark.parametrize("level,pin_high_means_open", [("high", True), ("low", False), ("LOW", False),
                                                       (" High ", True)])
def test_polarity(backend, level, pin_high_means_open):
    evs = run(b"\x16\x00", [DLE_EOT_1, GS_R_2], backend, drawer_open_level=level)
    assert [e["type"] for e in evs] == ["printer.status", "drawer.status", "printer.status", "drawer.status"]
    assert evs[0]["data"]["drawer_open"] is True and evs[2]["data"]["drawer_open"] is False  # the pin level stays
    assert evs[1]["data"] == {"open": pin_high_means_open}
    assert evs[3]["data"] == {"open": not pin_high_means_open}


def test_every_reply_not_only_changes(backend):
    evs = run(b"\x16\x16\x16", [DLE_EOT_1] * 3, backend)
    assert [e["data"] for e in evs if e["type"] == "drawer.status"] == [{"open": True}] * 3


def test_replies_without_the_drawer_bit_give_none(backend):
    # DLE EOT 2, 3, 4, GS r 1, and replies no request explains: the drawer state is not known
    evs = run(b"\x12\x12\x12\x00\x12\x00", [("offline", 2), ("error", 3), ("paper", 4), ("paper_sensor", 1)],
              backend)
    assert evs and all(e["type"] != "drawer.status" for e in evs)


@pytest.mark.parametrize("bad", ["open", "", "1", 1, None, True])
def test_bad_option(bad):
    with pytest.raises(ValueError, match="drawer_open_level"):
        Decoder("escpos", direction="from_device", drawer_open_level=bad)


def test_to_device_accepts_the_option(backend):
    assert Decoder("escpos", backend=backend, drawer_open_level="low").events(b"A\n")


reply_bytes = st.lists(st.sampled_from([b"\x12", b"\x16", b"\x1e", b"\x00", b"\x01", b"\x10\x00\x00\x00",
                                        b"\x14\x00\x00\x0f", b"\x1c\x40\x0c\x0f", b"\x7f", b"\x11"]),
                       max_size=20).map(b"".join)


@given(reply_bytes, st.lists(st.sampled_from([DLE_EOT_1, GS_R_2, ("offline", 2), ("asb", 1)]), max_size=12),
       st.sampled_from(["high", "low"]), st.lists(st.integers(0, 200), max_size=6))
def test_native_matches_reference(data, requests, level, cuts):
    pytest.importorskip("protocols.escpos.native", reason="the C core is not built (make native)")
    native = run(data, requests, "native", cuts, drawer_open_level=level)
    reference = run(data, requests, "reference", (), drawer_open_level=level)
    assert native == reference
    for k, e in enumerate(native):
        if e["type"] == "drawer.status":
            pin_high = native[k - 1]["data"]["drawer_open"]
            assert e["data"]["open"] == (pin_high if level == "high" else not pin_high)


def test_a_card_number_printed_on_a_receipt_leaves_masked():
    """docs/protocols/payment.md section 2: a PAN printed anywhere leaves masked (first six, last four), also
    grouped; shorter numbers (prices, receipt numbers) are untouched."""
    from protocols import Decoder

    lines = Decoder("escpos").events(b"VISA 4143873806956041\nCARD 4111 1111 1111 1111\nNo. 1-000231 12.50\n")
    assert [e["data"]["text"] for e in lines] == ["VISA 414387******6041", "CARD 4111 11** **** 1111",
                                                  "No. 1-000231 12.50"]

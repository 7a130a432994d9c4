"""Printer profiles are data: ESC t numbering per profile, ESC R national variants, Kanji double-byte tables."""

from __future__ import annotations

import pytest

from protocols import Decoder
from protocols.escpos.profiles import load_profile, profile_names


def line_text(events):
    return [e["data"]["text"] for e in events if e["type"] == "printer.line"]


def decode(data: bytes, **options):
    dec = Decoder("escpos", **options)
    return dec.events(data) + dec.close_events()


def test_shipped_profiles():
    assert {"generic", "tm-t88"} <= set(profile_names())
    with pytest.raises(ValueError, match="unknown printer profile 'tm-x'"):
        load_profile("tm-x")


@pytest.mark.parametrize(
    ("n", "byte", "char"),
    [
        (0, 0x9C, "£"),        # PC437
        (2, 0x9B, "ø"),        # PC850
        (16, 0x80, "€"),       # WPC1252
        (17, 0x80, "А"),       # PC866 Cyrillic
        (18, 0xA5, "ą"),       # PC852
        (19, 0xD5, "€"),       # PC858
        (1, 0xB1, "ｱ"),        # Katakana (JIS X 0201)
        (40, 0xA4, "€"),       # ISO-8859-15
        (15, 0xA4, "€"),       # ISO-8859-7 (python-escpos takes € from here)
    ],
)
def test_escpos_t_selects_the_profile_table(n, byte, char):
    for profile in ("generic", "tm-t88"):
        events = decode(b"\x1bt" + bytes([n, byte]) + b"\n", profile=profile)
        assert line_text(events) == [char], (profile, n)


def test_code_table_switch_in_mid_line():
    events = decode(b"Caf\x82 \x1bt\x13\xd5 5\x1bt\x00 \x8e\n")
    assert line_text(events) == ["Café € 5 Ä"]


def test_unknown_code_table_keeps_the_previous_one():
    events = decode(b"\x1bt\x10\x80\x1bt\x63\x80\n")
    assert events[0]["type"] == "protocol.error"
    assert events[0]["data"]["code"] == "unknown_code_table" and events[0]["data"]["raw"] == b"\x1bt\x63"
    assert line_text(events) == ["€€"]


@pytest.mark.parametrize(("n", "text"), [(0, "#$@[\\]^`{|}~"), (2, "#$§ÄÖÜ^`äöüß"), (3, "£$@[\\]^`{|}~"),
                                         (8, "#$@[¥]^`{|}~"), (16, "#₫@[\\]^`{|}~")])
def test_escpos_r_national_variants(n, text):
    events = decode(b"\x1bR" + bytes([n]) + b"#$@[\\]^`{|}~\n")
    assert line_text(events) == [text]


def test_escpos_at_restores_profile_defaults():
    events = decode(b"\x1bR\x02\x1bt\x10[\x80\n\x1b@[\x80\n")
    assert line_text(events) == ["Ä€", "[Ç"]


def test_kanji_mode_gbk_and_shift_jis():
    gbk = "收银台".encode("gbk")
    sjis = "レシート".encode("shift_jis")
    assert line_text(decode(b"\x1c&" + gbk + b"\x1c.A\n")) == ["收银台A"]
    assert line_text(decode(b"\x1c&" + sjis + b"\n", profile="tm-t88")) == ["レシート"]


def test_kanji_lead_byte_split_across_feeds_and_at_close():
    dec = Decoder("escpos")
    data = b"\x1c&" + "票".encode("gbk")
    events = dec.events(data[:-1]) + dec.events(data[-1:] + b"\n")
    assert line_text(events) == ["票"]
    dec = Decoder("escpos")
    events = dec.events(b"\x1c&\xc6") + dec.close_events()
    assert line_text(events) == ["\ufffd"]


def test_kanji_lead_followed_by_control_byte():
    # a lead byte then LF: the lead alone is U+FFFD and LF still ends the line
    assert line_text(decode(b"\x1c&A\xc6\nB\n")) == ["A\ufffd", "B"]

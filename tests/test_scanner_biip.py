"""GS1 element strings against an independent parser: biip (PyPI, jodal/biip) parses hypothesis-generated element
strings built from our AI table; every AI -> value biip finds must be what the scanner decoder puts in ``gs1``, and
the decimal AIs must agree with biip's Decimal. Contract: docs/protocols/scanner.md section 6."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

biip = pytest.importorskip("biip")
from biip import ParseError  # noqa: E402
from biip.gs1_messages import GS1Message  # noqa: E402

from protocols import Decoder  # noqa: E402
from protocols.decoder import unpack_events  # noqa: E402
from protocols.scanner import tables as T  # noqa: E402
from simulator.gs1 import check_digit

DATES = {"11", "12", "13", "15", "16", "17"}
AI_KEYS = sorted(T.AI_TABLE)
X_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz-./_"


@st.composite
def element(draw) -> tuple[str, str]:
    ai = draw(st.sampled_from(AI_KEYS))
    fixed, top, charset, kind = T.AI_TABLE[ai]
    if ai in DATES:
        value = f"{draw(st.integers(0, 99)):02d}{draw(st.integers(1, 12)):02d}{draw(st.integers(1, 28)):02d}"
    elif ai in T.CHECK_DIGIT_AIS:
        body = draw(st.text("0123456789", min_size=fixed - 1, max_size=fixed - 1))
        value = body + check_digit(body)
    elif ai in ("391" + str(n) for n in range(10)) or ai in ("393" + str(n) for n in range(10)):
        value = draw(st.sampled_from(["978", "840", "752"])) + draw(st.text("0123456789", min_size=1, max_size=15))
    elif ai == "422":
        value = draw(st.sampled_from(["250", "276", "840"]))
    elif charset == "N":
        n = fixed or draw(st.integers(1, top))
        value = draw(st.text("0123456789", min_size=n, max_size=n))
    else:
        value = draw(st.text(X_CHARS, min_size=1, max_size=top))
    return ai, value


@st.composite
def messages(draw) -> list[tuple[str, str]]:
    els = draw(st.lists(element(), min_size=1, max_size=6, unique_by=lambda e: e[0]))
    return els


def encode(els) -> str:
    out = ""
    for k, (ai, value) in enumerate(els):
        out += ai + value
        if not T.AI_TABLE[ai][0] and k + 1 < len(els):
            out += "\x1d"
    return out


@given(messages(), st.sampled_from(["]C1", "]d2", "]Q3", "]e0", "\x1d"]))
def test_gs1_values_agree_with_biip(els, aim):
    text = encode(els)
    try:
        theirs = GS1Message.parse(text)
    except ParseError:
        return  # biip also checks what we do not (e.g. a GLN's check digit in some AIs); nothing to compare
    events = unpack_events(Decoder("scanner").feed((aim + text + "\r").encode()))
    assert [e["type"] for e in events] == ["scanner.data"], events
    data = events[0]["data"]
    expected = {es.ai.ai: es.value for es in theirs.element_strings}
    for ai, value in data["gs1"].items():
        if ai in T.CHECK_DIGIT_AIS:  # a key whose check digit holds leaves as it is
            assert value == expected[ai]
        else:  # any other value leaves scrubbed: compare the digits left in clear
            same_length = len(value) == len(expected[ai])
            assert same_length and all(a == b or a == "*" for a, b in zip(value, expected[ai]))
    assert list(data["gs1"]) == list(expected)
    for es in theirs.element_strings:
        digits = len(es.value) - (3 if es.ai.ai[:3] in ("391", "393") else 0)
        if digits <= int(es.ai.ai[-1]):
            continue  # biip 5.2 reads "1" with 2 decimals as 0.1 (it splits the string); we give 0.01
        if es.decimal is not None and es.ai.ai in data.get("gs1_numbers", {}):
            num = data["gs1_numbers"][es.ai.ai]
            assert Decimal(num["value"]).scaleb(-num["decimals"]) == es.decimal
        if es.money is not None and es.ai.ai in data.get("gs1_numbers", {}):
            num = data["gs1_numbers"][es.ai.ai]
            assert Decimal(num["value"]).scaleb(-num["decimals"]) == es.money.amount


def test_gs1_general_specifications_example():
    """(01)09506000134352(17)201225(10)ABC123(21)XYZ: GS1's example GTIN with expiry, batch and serial."""
    text = "]C10109506000134352172012251" + "0ABC123\x1d21XYZ"
    data = unpack_events(Decoder("scanner").feed(text.encode() + b"\r"))[0]["data"]
    theirs = {es.ai.ai: es.value for es in GS1Message.parse(text[3:]).element_strings}
    assert data["gs1"] == theirs == {"01": "09506000134352", "17": "201225", "10": "ABC123", "21": "XYZ"}

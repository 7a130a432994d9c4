"""Decoder options read alike in every protocol (protocols/options.py): Python values and command-line strings."""

from __future__ import annotations

import pytest

from protocols import Decoder
from protocols.options import boolean, integer


@pytest.mark.parametrize("text", ["true", "TRUE", "yes", "on", "1", 1, True])
def test_true_spellings(text):
    assert boolean("x", "strict", text) is True


@pytest.mark.parametrize("text", ["false", "No", "off", "0", 0, False])
def test_false_spellings(text):
    assert boolean("x", "strict", text) is False


@pytest.mark.parametrize("value", ["maybe", 2, None, 1.0])
def test_anything_else_is_not_a_boolean(value):
    with pytest.raises(ValueError, match=r"x option strict=.* is not a boolean"):
        boolean("x", "strict", value)


@pytest.mark.parametrize(("value", "number"), [(5, 5), ("5", 5), ("0x7F", 127), (" 0x7f ", 127)])
def test_integers_in_decimal_or_hex(value, number):
    assert integer("x", "seed", value) == number


@pytest.mark.parametrize("value", [True, "7F", "0xZZ", "-", 1.5])
def test_not_integers(value):
    with pytest.raises(ValueError, match="x option seed"):
        integer("x", "seed", value)


@pytest.mark.parametrize("protocol", ["zvt-serial", "zvt-tcp", "ecr", "iso8583"])
def test_every_payment_decoder_reads_strict_alike(protocol):
    for value in ("1", "yes", True):
        Decoder(protocol, strict=value)
    with pytest.raises(ValueError, match="option strict='maybe' is not a boolean"):
        Decoder(protocol, strict="maybe")

"""Golden vectors for the customer display decoders (tests/vectors/display/*.md, the ESC/POS vector format): each
fed whole, byte by byte and at sampled pairs of cut points, on the backend TILLWIRE_BACKEND selects.
``cd5220*.md`` files run ``display-cd5220``, the others ``display-epson``. Contract: docs/protocols/display.md."""

from __future__ import annotations

import os

import pytest

from protocols.display.tables import ERRORS
from vector_cases import check_vector, load_cases


def display_cases():
    return load_cases(["display"], ERRORS, lambda path: "display-cd5220"
                      if os.path.basename(path).startswith("cd5220") else "display-epson")


CASES = display_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vector(case):
    check_vector(case)


def test_every_display_error_event_and_setting_has_a_vector():
    codes = {e["data"]["code"] for c in CASES for e in c.expected if e["type"] == "protocol.error"}
    assert set(ERRORS) <= codes
    settings = {e["data"]["setting"] for c in CASES for e in c.expected if e["type"] == "display.control"}
    assert settings == {"mode", "cursor", "brightness", "blink", "reverse", "user_chars"}
    assert {c.protocol for c in CASES} == {"display-epson", "display-cd5220"}

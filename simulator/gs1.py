"""GS1 check digits for generated labels (GS1 General Specifications 7.9: weights 3, 1, 3, … from the right).
Test and benchmark data use this, not the decoders' own check, so a wrong rule in a decoder cannot hide itself."""

from __future__ import annotations


def check_digit(body: str) -> str:
    """The mod-10 check digit of the digit string ``body``."""
    total = sum(int(c) * (3 if k % 2 == 0 else 1) for k, c in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def with_check_digit(body: str) -> str:
    return body + check_digit(body)

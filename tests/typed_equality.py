"""Equality for decoded events that also compares types: ``True != 1``, ``str != bytes``, ``list != tuple``.
Event fields must never change type (EVENTS.md), so the tests compare with this rather than ``==``."""

from __future__ import annotations


def same(actual, expected) -> bool:
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(same(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(same(a, b) for a, b in zip(actual, expected))
    return actual == expected

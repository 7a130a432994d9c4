"""Golden vectors of every protocol but ESC/POS: loading the Markdown files (format: tests/test_escpos_vectors.py)
and checking a case whole and at every split plan. Each protocol's test file says where its vectors live, which
decoder reads each file and which table gives the error reasons."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterable, Mapping

from protocols import Decoder
from protocols.decoder import unpack_events
from streams import feed_all, split
from test_escpos_vectors import Case, _show, parse_file, split_plans
from typed_equality import same

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors")


def file_options(path: str) -> dict:
    """The options a vector file gives all its cases: an ``options:`` line before its first ``##`` case."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("## "):
                break
            if line.startswith("options:"):
                return json.loads(line.split(":", 1)[1])
    return {}


def load_cases(folders: Iterable[str], errors: Mapping[str, str], protocol_of: Callable[[str], str]) -> list[Case]:
    """Every case of ``vectors/<folder>/*.md``: ``protocol`` from ``protocol_of(path)``, the file's options where
    the case gives none, and each expected protocol.error's reason from ``errors`` (the protocol's table)."""
    cases = []
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(VECTORS, folder, "*.md"))):
            default = file_options(path)
            protocol = protocol_of(path)
            for case in parse_file(path):
                if not case.options:
                    case.options = dict(default)
                case.protocol = protocol
                for event in case.expected:
                    if event["type"] == "protocol.error":
                        event["data"]["reason"] = errors[event["data"]["code"]]
                cases.append(case)
    return cases


def decode_case(case: Case, cuts: list[int]) -> bytes:
    return feed_all(Decoder(case.protocol, case.direction, **case.options), split(case.data, cuts))


def check_vector(case: Case, plans: Callable[[int], list[list[int]]] = split_plans) -> None:
    """The case's bytes fed whole give exactly its events; every split plan gives the same output."""
    whole = decode_case(case, [])
    events = unpack_events(whole)
    assert same(events, case.expected), (
        f"\n{case.file}:{case.line} {case.title}\ninput: {case.data.hex(' ')}\n"
        f"--- expected\n{_show(case.expected)}\n--- actual\n{_show(events)}")
    for cuts in plans(len(case.data)):
        assert decode_case(case, cuts) == whole, (case.title, cuts)

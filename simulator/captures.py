"""Writing sample captures: what every generator in ``simulator/`` shares. A generator builds a mapping of file
name → bytes; ``write_captures`` puts them in a directory and ``main`` is the ``python -m simulator.<x> --out DIR``
command line around it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Mapping


def write_captures(out: str | os.PathLike[str], files: Mapping[str, bytes]) -> list[str]:
    """Write each capture into ``out`` (created if needed); returns the paths written, in order."""
    os.makedirs(out, exist_ok=True)
    written = []
    for name, data in files.items():
        path = os.path.join(out, name)
        with open(path, "wb") as fh:
            fh.write(bytes(data))
        written.append(path)
    return written


def main(module: str, doc: str, default_out: str, captures: Callable[[], Mapping[str, bytes]],
         argv: Iterable[str] | None = None) -> int:
    """``python -m simulator.<module> [--out DIR]``: writes the captures and names each file written."""
    parser = argparse.ArgumentParser(prog=f"python -m simulator.{module}", description=doc.strip().splitlines()[0])
    parser.add_argument("--out", default=default_out, help=f"directory for the captures (default {default_out})")
    args = parser.parse_args(list(argv) if argv is not None else None)
    for path in write_captures(args.out, captures()):
        sys.stdout.write(f"wrote {path}\n")
    return 0

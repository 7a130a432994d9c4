"""``tillwire replay FILE.tws`` (decode a recording to events) and ``tillwire export pcapng FILE.tws``."""

from __future__ import annotations

import argparse
import os
import sys

from bridge.cli import _fail, write_events


def _open(path: str):
    from bridge.recording import tws

    if not os.path.exists(path):
        return None, _fail(f"cannot read {path}: no such file")
    try:
        return tws.Reader(path), 0
    except tws.TwsError as exc:
        return None, _fail(str(exc))
    except PermissionError:
        return None, _fail(f"cannot read {path}: permission denied")
    except OSError as exc:
        return None, _fail(f"cannot read {path}: {exc.strerror or exc}")


def replay_events(reader, src_prefix: str) -> list[dict]:
    """The events of a recording, decoded by the live bridge's ``Pipeline`` (one decoder per device and direction,
    protocol and options from the device table, status requests paired with replies), enveloped with ``src`` =
    prefix + device name and ``ts`` = the t_ns of the chunk that completed them (for what ``close`` flushes: the
    stream's last chunk)."""
    from protocols.events import Sequencer

    from bridge.capture import Chunk
    from bridge.pipeline import Pipeline
    from bridge.recording import tws

    pipeline = Pipeline(reader.devices, lambda name: src_prefix + name)
    infos = {d.name for d in reader.devices}
    last_t: dict[tuple[str, str], int] = {}
    bodies = []
    for rec in reader.records():
        if type(rec) is not tws.ChunkRecord or rec.device not in infos:
            continue
        last_t[(rec.device, rec.direction)] = rec.t_ns
        bodies += pipeline.process([Chunk(rec.t_ns, rec.device, rec.direction, rec.data)])
    bodies += pipeline.close(0, last_t)
    seqs: dict[str, Sequencer] = {}
    events: list[dict] = []
    for src, kind, data, ts in bodies:
        events.extend(seqs.setdefault(src, Sequencer(src)).wrap([{"type": kind, "data": data}], ts=ts))
    return events


def cmd_replay(args: argparse.Namespace) -> int:

    reader, rc = _open(args.file)
    if reader is None:
        return rc
    with reader:
        prefix = args.src_prefix if args.src_prefix is not None else f"file://{os.path.basename(args.file)}/"
        try:
            events = replay_events(reader, prefix)
        except (ValueError, TypeError, ImportError) as exc:
            return _fail(f"{args.file}: {exc}")
        out = sys.stdout.buffer
        if not write_events(out, events, args.format):
            from bridge.receipt_text import render_event

            for ev in events:
                lines = render_event({"type": ev["type"], "data": ev["data"]}, args.width)
                for line in lines:
                    out.write(f"{ev['src']} {line}\n".encode())
        if reader.truncated:
            sys.stderr.write(f"tillwire: warning: {args.file} was cut short; replayed up to its last whole block\n")
        out.flush()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bridge.recording import pcapng

    reader, rc = _open(args.file)
    if reader is None:
        return rc
    target = args.output or os.path.splitext(args.file)[0] + ".pcapng"
    with reader:
        try:
            with open(target, "wb") as fh:
                n = pcapng.write(reader, fh)
        except OSError as exc:
            return _fail(f"cannot write {target}: {exc.strerror or exc}")
    sys.stderr.write(f"tillwire: wrote {n} packets from {len(reader.devices)} devices to {target}\n")
    return 0


def register(sub) -> None:
    """Add ``replay`` and ``export`` to the ``tillwire`` subcommands (``sub`` from ``add_subparsers``)."""
    rp = sub.add_parser(
        "replay", help="decode a session recording (.tws) into events",
        description="Decode a .tws session recording into enveloped events: one decoder per device and direction, "
                    "ts = the recorded time of the chunk that completed each event.",
        epilog="examples:\n  tillwire replay session.tws\n  tillwire replay --format text session.tws\n"
               "  tillwire replay --src-prefix pos://store-1/till-3/ session.tws",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("--format", choices=("jsonl", "msgpack", "text"), default="jsonl",
                    help="jsonl (default), msgpack, or text")
    rp.add_argument("--src-prefix", help="source URI prefix; the device name is appended (default file://<name>/)")
    rp.add_argument("--width", type=int, default=42, help="paper width for --format text (default 42)")
    rp.add_argument("file", metavar="FILE", help="a .tws recording")
    rp.set_defaults(func=cmd_replay)
    ex = sub.add_parser(
        "export", help="export a session recording to another format (pcapng)",
        description="Export a .tws session recording: pcapng, one interface per device (Wireshark opens it).",
        epilog="example:\n  tillwire export pcapng session.tws -o session.pcapng",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("target", choices=("pcapng",), help="the format to write (pcapng)")
    ex.add_argument("file", metavar="FILE", help="a .tws recording")
    ex.add_argument("-o", "--output", help="output path (default: FILE with .pcapng)")
    ex.set_defaults(func=cmd_export)

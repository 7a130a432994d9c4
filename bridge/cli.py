"""``tillwire``: the command line. Each subcommand's ``--help`` shows an example."""

from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a user mistake is one line on stderr and exit status 2 (never a usage dump or traceback)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def _fail(message: str) -> int:
    sys.stderr.write(f"tillwire: error: {message}\n")
    return EXIT_USAGE


def _option(text: str) -> tuple[str, object]:
    """``-o key=value``: ``true``/``false`` become booleans and decimal digits an int; anything else stays a string
    for the decoder to check (it names the options and values it accepts)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"-o takes key=value, not {text!r}")
    value = value.strip()
    if value.lower() in ("true", "false"):
        return key.strip(), value.lower() == "true"
    if value.isdigit():
        return key.strip(), int(value)
    return key.strip(), value


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


def write_events(out, events: list[dict], fmt: str) -> bool:
    """Write enveloped events as ``msgpack`` or ``jsonl``; False for any other format (the caller renders text)."""
    from protocols.events import pack, to_json_view

    if fmt == "msgpack":
        out.write(b"".join(pack(ev) for ev in events))
    elif fmt == "jsonl":
        for ev in events:
            out.write(json.dumps(to_json_view(ev), ensure_ascii=False).encode() + b"\n")
    else:
        return False
    return True


def cmd_decode(args: argparse.Namespace) -> int:
    from bridge.receipt_text import render_event, summarize
    from protocols import Decoder, available_protocols
    from protocols.events import Sequencer, iter_bodies

    if args.protocol not in available_protocols():
        return _fail(f"unknown protocol {args.protocol!r}; known protocols: {', '.join(available_protocols())}")
    if args.src and len(args.files) > 1:
        return _fail("--src names one source; give one FILE with it")
    options: dict = {}
    if args.images:
        options["images"] = True
    if args.profile:
        options["profile"] = args.profile
    for text in args.option:
        try:
            key, value = _option(text)
        except ValueError as exc:
            return _fail(str(exc))
        options[key] = value
    # Read everything first, so a bad path fails before anything is printed.
    inputs = []
    for path in args.files:
        try:
            inputs.append((path, _read_input(path)))
        except FileNotFoundError:
            return _fail(f"cannot read {path}: no such file")
        except IsADirectoryError:
            return _fail(f"cannot read {path}: it is a directory")
        except PermissionError:
            return _fail(f"cannot read {path}: permission denied")
        except OSError as exc:
            return _fail(f"cannot read {path}: {exc.strerror or exc}")
    requests: list[tuple[str, int]] = []
    if args.requests:
        if args.direction != "from_device":
            return _fail("--requests pairs replies with requests: use it with --direction from_device")
        try:
            sent = _read_input(args.requests)
            req_dec = Decoder(args.protocol, direction="to_device", **options)
        except OSError as exc:
            return _fail(f"cannot read {args.requests}: {exc.strerror or exc}")
        except (ValueError, TypeError, ImportError) as exc:
            return _fail(str(exc))
        requests = [(b["data"]["kind"], b["data"]["n"]) for b in iter_bodies(req_dec.feed(sent) + req_dec.close())
                    if b["type"].endswith(".status_request")]
    out = sys.stdout.buffer
    for path, data in inputs:
        try:
            dec = Decoder(args.protocol, direction=args.direction, **options)
            for kind, n in requests:
                dec.note_request(kind, n)
        except (ValueError, TypeError, ImportError) as exc:
            return _fail(str(exc))
        bodies = list(iter_bodies(dec.feed(data) + dec.close()))
        name = "stdin" if path == "-" else os.path.basename(path)
        src = args.src or f"file://{name}"
        events = Sequencer(src).wrap(bodies, ts=0)
        if not write_events(out, events, args.format):
            text = []
            if len(inputs) > 1:
                text.append(f"==> {name} <==")
            for body in bodies:
                text.extend(render_event(body, args.width))
            text.append(summarize(name, bodies))
            text.append("")
            out.write("\n".join(text).encode())
    out.flush()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tillwire",
        description="tillwire: taps POS device byte streams, decodes them and delivers the events.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    dec = sub.add_parser(
        "decode",
        help="decode a captured byte stream into events",
        description="Decode a captured byte stream (a file, or - for stdin) into enveloped events.",
        epilog="examples:\n"
               "  tillwire decode -p escpos --format text sessions/escpos/grocery-card.bin\n"
               "  tillwire decode -p zvt-serial --format text sessions/payment/zvt-card-sale.serial.bin\n"
               "  tillwire decode -p iso8583 -o spec=iso87-binary -o framing=len2 capture.bin",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dec.add_argument("-p", "--protocol", required=True, help="protocol of the stream, e.g. escpos")
    dec.add_argument("--direction", choices=("to_device", "from_device"), default="to_device",
                     help="to_device: till → device (default); from_device: the device's replies")
    dec.add_argument("--format", choices=("jsonl", "msgpack", "text"), default="jsonl",
                     help="jsonl (default), msgpack, or text: the receipt as a person reads it")
    dec.add_argument("--src", help="source URI of the events (default file://<name>)")
    dec.add_argument("--images", action="store_true", help="include image bits in printer.image events")
    dec.add_argument("--profile", help="printer profile for code tables (escpos: generic, tm-t88)")
    dec.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                     help="a decoder option, e.g. -o strict=true, -o spec=iso87-binary -o framing=len2, "
                          "-o preset=transbank (repeatable; see docs/protocols/)")
    dec.add_argument("--requests", metavar="FILE",
                     help="with --direction from_device: the till's side of the same session, whose status "
                          "requests tell what each reply answers")
    dec.add_argument("--width", type=int, default=42,
                     help="paper width in characters for --format text (default 42: 80 mm paper, font A)")
    dec.add_argument("files", nargs="+", metavar="FILE", help="captured bytes, or - for stdin")
    dec.set_defaults(func=cmd_decode)

    from bridge import outbox_cmd, run_cmd, tail_cmd
    from bridge.replay_cmd import register as register_recording_commands

    run_cmd.add_parsers(sub, _fail)
    tail_cmd.add_parser(sub)
    outbox_cmd.add_parser(sub, _fail)
    register_recording_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except BrokenPipeError:
        # `tillwire decode ... | head`: the reader went away; not an error of ours.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

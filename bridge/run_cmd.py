"""``tillwire run`` and ``tillwire record``: the bridge as a long-running process."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import time
from collections import Counter

from bridge.pipeline import Body


class LivePrinter:
    """One line per stored event: local time, source (without the common prefix), seq, type, a summary."""

    def __init__(self, prefix: str, out=None, quiet: bool = False):
        self.prefix = prefix
        self.out = out or sys.stdout
        self.quiet = quiet
        self.by_type: Counter[str] = Counter()

    def stored(self, bodies: list[Body], keys: list[tuple[str, int]]) -> None:
        from bridge.receipt_text import one_line

        lines = []
        for (src, kind, data, ts), (_, seq) in zip(bodies, keys):
            self.by_type[kind] += 1
            if self.quiet:
                continue
            name = src[len(self.prefix):] if src.startswith(self.prefix) else src
            clock = time.strftime("%H:%M:%S", time.localtime(ts / 1e9)) + f".{ts // 1_000_000 % 1000:03d}" \
                if ts else "--:--:--.---"
            lines.append(f"{clock} {name:<10} #{seq:<5} {kind:<22} {one_line({'type': kind, 'data': data})}")
        if lines:
            try:
                self.out.write("\n".join(lines) + "\n")
                self.out.flush()
            except BrokenPipeError:
                self.quiet = True


def _install_stop_handlers(bridge) -> None:
    def handler(signum, frame):  # noqa: ARG001 - signal API
        bridge.request_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _start(bridge, fail) -> int | None:
    from bridge.feed import FeedError
    from bridge.outbox import OutboxError
    from bridge.recording.tws import TwsError
    from bridge.service import StartError

    try:
        bridge.start()
    except OutboxError as exc:
        bridge.close()
        return fail(str(exc))
    except (FeedError, TwsError, StartError) as exc:
        bridge.close()
        return fail(str(exc).splitlines()[0])
    except OSError as exc:
        bridge.close()
        where = f" ({exc.filename})" if exc.filename else ""
        hint = ""
        if exc.errno in (errno.EADDRINUSE, errno.EAGAIN, errno.EBUSY):
            hint = "; is another tillwire running with the same config?"
        return fail(f"cannot start: {exc.strerror or exc}{where}{hint}")
    return None


def summary_lines(bridge) -> list[str]:
    cfg, t = bridge.config, bridge.totals
    lines = ["", f"tillwire run: summary ({cfg.path})"]
    if bridge.pipeline is not None:
        for name, c in bridge.pipeline.counters.items():
            lines.append(f"  {name:<10} {c.chunks} chunks, {c.bytes} bytes → {c.events} events, "
                         f"{c.errors} protocol.error")
    lines.append(f"  stored {t.stored} events in {t.commits} commits into {cfg.outbox}")
    if t.dropped_events or t.queue_dropped_bytes:
        lines.append(f"  LOST: {t.dropped_events} events could not be stored; {t.queue_dropped_bytes} bytes "
                     f"were not captured (queue full)")
    for st in bridge.sink_stats():
        line = (f"  sink {st['name']:<10} {st['delivered']} delivered ({st['duplicates']} duplicate acks), "
                f"{st['depth']} pending, {st['parked']} parked, {st['retries']} retries → {st['target']}")
        lines.append(line)
        if st["depth"] and st["last_error"]:
            lines.append(f"    last error: {st['last_error']}")
    for alert in bridge.alerts.values():
        lines.append(f"  ALERT {alert.kind}: {alert.message}")
    return lines


def cmd_run(args: argparse.Namespace, fail) -> int:
    from bridge.config import ConfigError, load
    from bridge.service import Bridge

    try:
        cfg = load(args.config)
    except ConfigError as exc:
        return fail(str(exc))
    printer = LivePrinter(cfg.source_prefix, quiet=args.quiet)
    bridge = Bridge(cfg, on_stored=printer.stored, record=args.record)
    err = _start(bridge, fail)
    if err is not None:
        return err
    _install_stop_handlers(bridge)
    out = sys.stdout
    out.write(f"tillwire run: {len(cfg.devices)} devices ({', '.join(d.name for d in cfg.devices)}), "
              f"outbox {cfg.outbox}\n")
    if bridge.feed_server is not None:
        out.write(bridge.feed_server.startup_message() + "\n")
    if bridge.recorder is not None:
        out.write(f"recording every device into {args.record or cfg.record}\n")
    for runner in bridge.sink_runners:
        out.write(f"sink {runner.name}: delivering to {runner.stats()['target']}\n")
    out.flush()
    bridge.wait()
    bridge.close()
    out.write("\n".join(summary_lines(bridge)) + "\n")
    out.flush()
    return 1 if bridge.fatal is not None else 0


def cmd_record(args: argparse.Namespace, fail) -> int:
    from bridge.config import ConfigError, load
    from bridge.service import Bridge

    try:
        cfg = load(args.config)
    except ConfigError as exc:
        return fail(str(exc))
    bridge = Bridge(cfg, store=False, feed=False, record=args.out)
    err = _start(bridge, fail)
    if err is not None:
        return err
    _install_stop_handlers(bridge)
    sys.stdout.write(f"tillwire record: recording {len(cfg.devices)} devices into {args.out}; Ctrl-C stops\n")
    sys.stdout.flush()
    if args.duration:
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline and not bridge.devices_finished():
            bridge._stop_transports.wait(0.1)  # noqa: SLF001 - the same event the handlers set
            if bridge._stop_transports.is_set():  # noqa: SLF001
                break
    else:
        bridge.wait()
    bridge.close()
    sys.stdout.write(f"tillwire record: wrote {args.out}\n")
    return 0


def add_parsers(sub, fail) -> None:
    run = sub.add_parser(
        "run", help="run the bridge: capture devices into the outbox and serve the feed",
        description="Run the bridge on a config file: every device's transport is opened (and reopened with "
                    "backoff), both directions decoded, every event stored durably in the outbox and served on "
                    "the embedded feed. SIGTERM or Ctrl-C drains and exits cleanly.",
        epilog="examples:\n"
               "  tillwire run --config examples/demo.toml          # the bundled till sessions, replayed\n"
               "  tillwire run --config examples/hardware.toml --quiet",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--config", "-c", required=True, help="the bridge's TOML config (docs/bridge/config.md)")
    run.add_argument("--quiet", "-q", action="store_true", help="no line per event, only start-up and summary")
    run.add_argument("--record", metavar="FILE.tws",
                     help="also record every device into this new .tws file ({start} becomes the start time)")
    run.set_defaults(func=lambda a: cmd_run(a, fail))

    rec = sub.add_parser(
        "record", help="record live devices (or taps) into a .tws session file",
        description="Open the devices of a config file (taps pass the traffic through as in `run`) and record "
                    "every chunk, both directions, into a .tws file, card data masked. No outbox, no feed.",
        epilog="example:\n  tillwire record --config examples/hardware.toml --out till-1.tws --duration 600",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rec.add_argument("--config", "-c", required=True, help="the bridge's TOML config (its [[devices]] are used)")
    rec.add_argument("--out", "-o", required=True, metavar="FILE.tws",
                     help="the recording to write (never overwritten; {start} in the name becomes the start time)")
    rec.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    rec.set_defaults(func=lambda a: cmd_record(a, fail))

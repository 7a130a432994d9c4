"""``tillwire outbox``: what is waiting for whom, the dead letters, and re-driving them (docs/bridge/sinks.md §5).

It works on the outbox file while the bridge runs (a connection of its own; it only reads, except ``redrive``,
which flags dead letters that the running bridge's sink then sends within about a second — or at the next
start when the bridge is not running).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

EPILOG = """examples:
  tillwire outbox --config examples/demo.toml                    # sinks: cursor, pending, age, dead letters
  tillwire outbox --config shop.toml dead-letters --sink backoffice
  tillwire outbox --config shop.toml redrive --sink backoffice --all
  tillwire outbox --config shop.toml drop --sink backoffice --id 7   # delete a dead letter for good
  tillwire outbox --outbox var/outbox.sqlite --json              # without a config file"""


def _path(args, fail) -> tuple[str | None, object, int | None]:
    if bool(args.config) == bool(args.outbox):
        return None, None, fail("give --config FILE (the bridge's config) or --outbox FILE, one of them")
    if args.config:
        from bridge.config import ConfigError, load

        try:
            cfg = load(args.config, check_devices=False, check_sinks=False)  # no secrets needed to look
        except ConfigError as exc:
            return None, None, fail(str(exc))
        return str(cfg.outbox), cfg, None
    return args.outbox, None, None


def _open(path: str, readonly: bool, fail):
    from bridge.outbox import OutboxError
    from bridge.sinks.store import connect

    if not Path(path).exists():
        return None, fail(f"no outbox at {path}; the bridge creates it when it starts (`tillwire run`)")
    try:
        return connect(path, readonly=readonly), None
    except OutboxError as exc:
        return None, fail(str(exc))


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cmd_outbox(args: argparse.Namespace, fail) -> int:
    path, cfg, err = _path(args, fail)
    if err is not None:
        return err
    action = args.action or "status"
    db, err = _open(path, readonly=action not in ("redrive", "drop"), fail=fail)
    if err is not None:
        return err
    try:
        if action == "status":
            return _status(db, path, cfg, args)
        if action == "dead-letters":
            return _dead(db, args)
        return _redrive(db, cfg, args, fail)
    except sqlite3.OperationalError as exc:  # e.g. "database is locked" for longer than the busy timeout
        return fail(f"outbox {path}: {exc}; try again (the bridge may be pruning)")
    finally:
        db.close()


def _status(db, path: str, cfg, args) -> int:
    from bridge.sinks.store import summary

    info = summary(db)
    configured = {s.name: s for s in cfg.sinks} if cfg is not None else None
    for s in info["sinks"]:
        s["configured"] = configured is None or s["sink"] in configured
        if configured is not None and s["sink"] in configured:
            s["kind"] = configured[s["sink"]].kind
    if args.json:
        sys.stdout.write(json.dumps({"outbox": path, **info}) + "\n")
        return 0
    out = [f"outbox {path}: {info['events']} events stored (rows {info['first_rowid']}…{info['last_rowid']})"]
    if not info["sinks"]:
        out.append("  no sinks: nothing is delivered (add [[sinks]] to the config; docs/bridge/sinks.md)")
    for s in info["sinks"]:
        flag = "" if s["configured"] else "  (no longer configured: does not hold back pruning)"
        line = (f"  sink {s['sink']:<12} {s.get('kind', ''):<8} acked up to row {s['acked']}, {s['depth']} pending"
                f"{', oldest ' + _age(s['oldest_age_s']) if s['depth'] else ''}, {s['dead_letters']} dead letters"
                f"{' (' + str(s['redrive_requested']) + ' queued for redrive)' if s['redrive_requested'] else ''}"
                f"{flag}")
        out.append(line)
    if configured:
        for name in configured:
            if not any(s["sink"] == name for s in info["sinks"]):
                out.append(f"  sink {name:<12} configured, not started yet (its cursor is added at the next start)")
    for src in info["sources"]:
        out.append(f"  source {src['src']}: last seq {src['last_seq']}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def _dead(db, args) -> int:
    from bridge.sinks.store import dead_letters

    letters = dead_letters(db, args.sink, args.limit)
    if args.json:
        for d in letters:
            sys.stdout.write(json.dumps({
                "id": d.id, "sink": d.sink, "src": d.src, "seq": d.seq, "type": d.type, "parked_ns": d.parked,
                "status": d.status, "reason": d.reason, "attempts": d.attempts, "redrive": d.redrive,
                "response": d.response.decode("utf-8", "replace")}, ensure_ascii=False) + "\n")
        return 0
    if not letters:
        sys.stdout.write("no dead letters" + (f" for sink {args.sink}" if args.sink else "") + "\n")
        return 0
    for d in letters:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.parked / 1e9))
        body = " ".join(d.response.decode("utf-8", "replace").split())
        if len(body) > 160:
            body = body[:157] + "..."
        sys.stdout.write(f"#{d.id} sink {d.sink} {d.src}:{d.seq} {d.type} parked {when} after {d.attempts} "
                         f"attempt(s): {d.reason}{' [redrive queued]' if d.redrive else ''}\n")
        if body:
            sys.stdout.write(f"    response: {body}\n")
    return 0


def _redrive(db, cfg, args, fail) -> int:
    """``redrive`` flags dead letters for the running bridge to send again; ``drop`` deletes them for good."""
    from bridge.sinks.store import drop_dead_letters, request_redrive

    verb = args.action
    if not args.all and not args.id:
        return fail(f"{verb} needs --all or one or more --id N (see `tillwire outbox dead-letters`)")
    if cfg is not None and verb == "redrive" and args.sink not in {s.name for s in cfg.sinks}:
        return fail(f"sink {args.sink!r} is not in {cfg.path}; configured sinks: "
                    f"{', '.join(s.name for s in cfg.sinks) or 'none'}")
    known = {r[0] for r in db.execute("SELECT DISTINCT sink FROM dead_letters")}
    if args.sink not in known:
        sys.stdout.write(f"no dead letters for sink {args.sink}\n")
        return 0
    ids = None if args.all else args.id
    missing = [i for i in (ids or []) if db.execute("SELECT 1 FROM dead_letters WHERE id = ? AND sink = ?",
                                                     (i, args.sink)).fetchone() is None]
    if missing:
        return fail(f"no dead letter {', '.join('#' + str(m) for m in missing)} for sink {args.sink}; nothing "
                    f"changed")
    if verb == "drop":
        count = drop_dead_letters(db, args.sink, ids)
        sys.stdout.write(f"{count} dead letter(s) of sink {args.sink} deleted\n")
        return 0
    count = request_redrive(db, args.sink, ids)
    sys.stdout.write(f"{count} dead letter(s) of sink {args.sink} queued for redrive; the running bridge sends "
                     f"them within a few seconds (or at its next start)\n")
    return 0


def add_parser(sub, fail) -> None:
    p = sub.add_parser(
        "outbox", help="show what each sink has pending, list dead letters, re-drive them",
        description="Inspect the durable outbox: per sink the acknowledged cursor, events pending and the age of "
                    "the oldest, dead letters (events a destination refused for good); queue dead letters for "
                    "redelivery. Safe while the bridge runs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", help="the bridge's TOML config (its [bridge] outbox and [[sinks]])")
    p.add_argument("--outbox", help="the outbox file, instead of --config")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    st = actions.add_parser("status", help="the default: sinks, pending, dead letters, sources")
    st.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    dl = actions.add_parser("dead-letters", help="list dead letters with the destination's response")
    dl.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON object per line")
    dl.add_argument("--sink", help="only this sink's")
    dl.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    rd = actions.add_parser("redrive", help="send dead letters again (after the destination was fixed)")
    rd.add_argument("--sink", required=True, help="the sink whose dead letters to send again")
    rd.add_argument("--id", type=int, action="append", default=[], metavar="N", help="a dead letter's id "
                    "(repeatable)")
    rd.add_argument("--all", action="store_true", help="every dead letter of the sink")
    dr = actions.add_parser("drop", help="delete dead letters for good (after they were dealt with elsewhere)")
    dr.add_argument("--sink", required=True, help="the sink whose dead letters to delete")
    dr.add_argument("--id", type=int, action="append", default=[], metavar="N", help="a dead letter's id "
                    "(repeatable)")
    dr.add_argument("--all", action="store_true", help="every dead letter of the sink")
    p.set_defaults(func=lambda a: cmd_outbox(a, fail))

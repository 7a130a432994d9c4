"""``tillwire tail``: print events from a running bridge's feed (docs/bridge/feed.md §6); standard library only.

Without ``--follow`` it prints what is there and exits; with it, it keeps long-polling from the last cursor, and
rides out a bridge restart by retrying (the cursor makes sure nothing is printed twice or skipped).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

import msgpack

DEFAULT_URL = "http://127.0.0.1:8765"
URL_ENV = "TILLWIRE_FEED_URL"
TOKEN_ENV = "TILLWIRE_FEED_TOKEN"
DEFAULT_LINES = 10
FOLLOW_WAIT_S = 25  # per long-poll; below the server's 60 s bound and common proxy idle timeouts
PAGE = 1000
RETRY_MAX_S = 5.0
SUMMARY_WIDTH = 100
EXIT_UNREACHABLE = 1  # the command was right, the feed was not there: not a usage error (2)

EPILOG = """examples:
  tillwire tail                                   the last 10 events
  tillwire tail -f --type 'payment.*'             follow payment events as they are captured
  tillwire tail --after 1200 --format jsonl       every event after cursor 1200, as JSON lines
  tillwire tail -n 50 --src 'pos://store-1/till-3/*' --url http://10.0.0.5:8765
the token comes from --token or $TILLWIRE_FEED_TOKEN (prefer the variable: arguments show in ps)"""


class FeedUnreachable(Exception):
    pass


class FeedRefused(Exception):
    """The feed answered, with an error the user must fix (401, 400, 404 …)."""


class Page(NamedTuple):
    events: list[dict]
    cursor: int
    head: int
    gap: int | None


class FeedClient:
    def __init__(self, url: str, token: str | None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must look like {DEFAULT_URL}, not {url!r}")
        try:
            self._port = parts.port
        except ValueError:
            raise ValueError(f"--url has a bad port: {url!r}") from None
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._prefix = parts.path.rstrip("/")
        self._token = token

    def events(self, after: int, *, wait: float = 0, last: int | None = None, types=(), srcs=()) -> Page:
        params: list[tuple[str, object]] = [("after", after)]
        if wait:
            params.append(("wait", wait))
        params.append(("last", last) if last is not None else ("limit", PAGE))
        params += [("type", t) for t in types] + [("src", s) for s in srcs]
        headers = {"Accept": "application/msgpack"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        conn_cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_cls(self._host, self._port, timeout=wait + 15)
        try:
            conn.request("GET", f"{self._prefix}/events?{urlencode(params)}", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise FeedUnreachable(f"cannot reach the feed at {self.url} ({reason}) — is `tillwire run` "
                                  f"running?") from None
        finally:
            conn.close()
        if resp.status == 401:
            raise FeedRefused(f"the feed at {self.url} wants a token: give --token or set ${TOKEN_ENV} "
                              f"(the one the bridge's [feed] section names)")
        if resp.status != 200:
            line = body.decode("utf-8", "replace").strip().splitlines()[:1]
            raise FeedRefused(f"the feed at {self.url} answered {resp.status}"
                              + (f": {line[0]}" if line else ""))
        try:
            events = _unpack_all(body)
            cursor = int(resp.getheader("Tillwire-Cursor", after))
            head = int(resp.getheader("Tillwire-Head", cursor))
            gap = resp.getheader("Tillwire-Gap")
        except (ValueError, msgpack.UnpackException) as exc:
            raise FeedRefused(f"{self.url} does not look like a tillwire feed ({type(exc).__name__})") from None
        return Page(events, cursor, head, int(gap) if gap else None)


def _unpack_all(body: bytes) -> list[dict]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(body)
    return list(unpacker)


def _time(ts: int) -> str:
    try:
        return datetime.fromtimestamp(ts / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    except (OverflowError, OSError, ValueError, TypeError):
        return str(ts)


def summary(event: dict) -> str:
    """A short, one-line description of an event (the same as ``tillwire run`` prints)."""
    from bridge.receipt_text import one_line

    return one_line({"type": event.get("type", "?"), "data": event.get("data")}, SUMMARY_WIDTH)


def format_event(event: dict, fmt: str) -> str:
    from protocols.events import to_json_view

    if fmt == "jsonl":
        return json.dumps(to_json_view(event), ensure_ascii=False)
    return (f"{_time(event.get('ts', 0))} {event.get('src', '?')} #{event.get('seq', '?')} "
            f"{event.get('type', '?')} {summary(event)}").rstrip()


def _err(message: str) -> None:
    sys.stderr.write(f"tillwire: error: {message}\n")
    sys.stderr.flush()


def _note(message: str) -> None:
    sys.stderr.write(f"tillwire tail: {message}\n")
    sys.stderr.flush()


def _print(events: list[dict], fmt: str) -> None:
    if events:
        sys.stdout.write("".join(format_event(ev, fmt) + "\n" for ev in events))
        sys.stdout.flush()


def _gap(page: Page, after: int) -> None:
    if page.gap is not None:
        _note(f"events after cursor {after} up to {page.gap - 1} were pruned from the outbox before they were "
             f"read; continuing at {page.gap}")


def cmd_tail(args: argparse.Namespace) -> int:
    from bridge.cli import EXIT_USAGE, _fail

    if args.after is not None and args.lines is not None:
        return _fail("give --after (everything after a cursor) or -n (the newest N), not both")
    if args.after is not None and args.after < 0 or args.lines is not None and args.lines < 0:
        return _fail("--after and -n take a number ≥ 0")
    try:
        client = FeedClient(args.url, args.token)
    except ValueError as exc:
        return _fail(str(exc))
    fmt, filters = args.format, {"types": args.type, "srcs": args.src}
    try:
        if args.after is None:
            first = client.events(0, last=DEFAULT_LINES if args.lines is None else args.lines, **filters)
            _print(first.events, fmt)
            cursor = first.cursor
        else:
            cursor, target = args.after, None
            while True:  # page until the head seen at the start: a busy bridge cannot keep us here forever
                page = client.events(cursor, **filters)
                _gap(page, cursor)
                _print(page.events, fmt)
                target = page.head if target is None else target
                if page.cursor == cursor or page.cursor >= target:
                    cursor = page.cursor
                    break
                cursor = page.cursor
    except FeedUnreachable as exc:
        _err(str(exc))
        return EXIT_UNREACHABLE
    except FeedRefused as exc:
        _err(str(exc))
        return EXIT_USAGE
    if not args.follow:
        return 0
    return _follow(client, cursor, fmt, filters)


def _follow(client: FeedClient, cursor: int, fmt: str, filters: dict) -> int:
    from bridge.cli import EXIT_USAGE

    delay, told = 0.5, False
    while True:
        try:
            page = client.events(cursor, wait=FOLLOW_WAIT_S, **filters)
        except FeedUnreachable as exc:
            if not told:
                _note(f"{exc} (retrying)")
                told = True
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        except FeedRefused as exc:
            _err(str(exc))
            return EXIT_USAGE
        if told:
            _note(f"the feed at {client.url} is back")
            delay, told = 0.5, False
        if page.head < cursor:  # the feed serves another (new) outbox: its rowids restarted below ours
            _note(f"the feed's outbox ends at cursor {page.head}, before this tail's {cursor}: it is a new outbox; "
                  f"continuing from its start")
            cursor = 0
            continue
        _gap(page, cursor)
        _print(page.events, fmt)
        cursor = page.cursor


def add_parser(sub) -> None:
    """Register ``tillwire tail`` on the CLI's subparsers (bridge/cli.py ``build_parser``)."""
    tail = sub.add_parser(
        "tail",
        help="print events from a running bridge's feed",
        description="Print the events a running bridge has captured, from its embedded feed (GET /events).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tail.add_argument("--url", default=os.environ.get(URL_ENV) or DEFAULT_URL,
                      help=f"the feed (default ${URL_ENV} or {DEFAULT_URL})")
    tail.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                      help=f"bearer token, when the feed needs one (default ${TOKEN_ENV})")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events until Ctrl-C")
    tail.add_argument("-n", "--lines", type=int, metavar="N",
                      help=f"the newest N events (default {DEFAULT_LINES}; 0 with -f: only new ones)")
    tail.add_argument("--after", type=int, metavar="CURSOR",
                      help="every event after this cursor (an outbox rowid; 0: the oldest retained)")
    tail.add_argument("--type", action="append", default=[], metavar="GLOB",
                      help="only events whose type matches, e.g. 'payment.*' (repeatable: any of them)")
    tail.add_argument("--src", action="append", default=[], metavar="GLOB",
                      help="only events whose source matches, e.g. 'pos://store-1/*' (repeatable)")
    tail.add_argument("--format", choices=("text", "jsonl"), default="text",
                      help="text (default): time, src, #seq, type and a summary; jsonl: the events as JSON lines")
    tail.set_defaults(func=cmd_tail)

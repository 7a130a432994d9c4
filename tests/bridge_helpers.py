"""Helpers for tests that run the real bridge: configs, free ports, a `tillwire run` child, the outbox's rows."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgpack

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "pos://test-store/till-1/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, devices: list[dict], *, feed: bool = False, extra_toml: str = "",
                 **bridge) -> Path:
    """A config file; ``devices`` are dicts of name/protocol/transport[/options]; ``extra_toml`` is appended as
    it is (``[[sinks]]`` tables, ``[delivery]``)."""
    lines = ["[bridge]", f'source_prefix = "{PREFIX}"', 'outbox = "outbox.sqlite"']
    for key, value in bridge.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, bool) else f"{key} = {str(value).lower()}")
    lines += ["", "[feed]", f"enabled = {'true' if feed else 'false'}"]
    if feed:
        lines.append(f'listen = "127.0.0.1:{feed if isinstance(feed, int) and feed > 1 else free_port()}"')
    for dev in devices:
        lines += ["", "[[devices]]"]
        for key in ("name", "protocol", "transport"):
            lines.append(f'{key} = "{dev[key]}"')
        if dev.get("options"):
            opts = ", ".join(f"{k} = {v!r}" if not isinstance(v, bool) else f"{k} = {str(v).lower()}"
                             for k, v in dev["options"].items())
            lines.append(f"options = {{ {opts} }}")
    path = tmp_path / "bridge.toml"
    path.write_text("\n".join(lines) + "\n" + (("\n" + extra_toml.strip() + "\n") if extra_toml else ""))
    return path


def start_bridge(config: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    """`tillwire run --config …` as a child process (its own process group, so a kill reaches only it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run", "--config", str(config), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
        start_new_session=True)


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the bridge exited with {proc.returncode}: {err.decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def rows(outbox: Path) -> list[tuple[int, str, int, dict]]:
    """Every row of an outbox as (rowid, src, seq, envelope), read through a read-only connection."""
    if not outbox.exists():
        return []
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return [(r, s, q, msgpack.unpackb(e, raw=False))
                for r, s, q, e in db.execute("SELECT rowid, src, seq, envelope FROM events ORDER BY rowid")]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def high_water(outbox: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT src, last_seq FROM sources"))
    finally:
        db.close()


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 15.0) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the bridge did not exit within {timeout} s of {sig!r}: {err.decode()[-2000:]}")
    return proc.returncode, out.decode(), err.decode()

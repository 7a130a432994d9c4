"""``tillwire tail`` end to end against a running FeedServer on loopback (in process, and as a real process for
``--follow`` and Ctrl-C)."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.feed import FeedServer
from bridge.outbox import Outbox

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10.0
TS = 1_795_400_000_123_000_000  # 2026-11-23T02:13:20.123Z

PRINTER = "pos://store-1/till-3/printer"
TERMINAL = "pos://store-1/till-3/terminal"
SCANNER = "pos://store-1/till-4/scanner"


@pytest.fixture
def outbox_path(tmp_path):
    return tmp_path / "outbox.db"


@pytest.fixture
def box(outbox_path):
    b = Outbox.open(outbox_path)
    yield b
    b.close()


@pytest.fixture
def feed(box, outbox_path):
    server = FeedServer(outbox_path, port=0, poll_s=0.05).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_feed_env(monkeypatch):
    monkeypatch.delenv("TILLWIRE_FEED_URL", raising=False)
    monkeypatch.delenv("TILLWIRE_FEED_TOKEN", raising=False)


def sale(box):
    box.append([
        (PRINTER, "printer.line", {"text": "MILK 1L        1.29", "spans": [], "align": "left"}, TS),
        (TERMINAL, "payment.result", {"approved": True, "amount": 129, "currency": "EUR"}, TS + 1_000_000),
        (SCANNER, "scanner.data", {"symbology": "ean13", "label": "4006381333931"}, TS + 2_000_000),
        (PRINTER, "printer.cut", {"partial": False}, TS + 3_000_000),
    ])


def run_tail(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["tail", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def wait_until(predicate, timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_text_lines_show_time_src_seq_type_and_a_summary(box, feed, capsys):
    sale(box)
    code, lines, err = run_tail(capsys, "--url", feed.url)
    assert code == 0 and err == ""
    assert lines[0] == f"2026-11-23T02:13:20.123Z {PRINTER} #1 printer.line MILK 1L 1.29"
    assert lines[2].startswith(f"2026-11-23T02:13:20.125Z {SCANNER} #1 scanner.data ")
    assert "4006381333931" in lines[2]
    assert [ln.split()[3] for ln in lines] == ["printer.line", "payment.result", "scanner.data", "printer.cut"]


def test_jsonl_is_the_feed_json_view(box, feed, capsys):
    sale(box)
    code, lines, _ = run_tail(capsys, "--url", feed.url, "--format", "jsonl")
    events = [json.loads(ln) for ln in lines]
    assert [(e["src"], e["seq"]) for e in events] == [(PRINTER, 1), (TERMINAL, 1), (SCANNER, 1), (PRINTER, 2)]
    assert events[1]["data"] == {"approved": True, "amount": 129, "currency": "EUR"}


def test_default_is_the_last_ten_and_n_chooses(box, feed, capsys):
    box.append([(PRINTER, "printer.line", {"n": i}, TS + i) for i in range(25)])
    _, lines, _ = run_tail(capsys, "--url", feed.url, "--format", "jsonl")
    assert [json.loads(ln)["seq"] for ln in lines] == list(range(16, 26))
    _, lines, _ = run_tail(capsys, "--url", feed.url, "--format", "jsonl", "-n", "3")
    assert [json.loads(ln)["seq"] for ln in lines] == [23, 24, 25]


def test_after_prints_everything_after_the_cursor_across_pages(box, feed, capsys):
    box.append([(PRINTER, "printer.line", {"n": i}, TS + i) for i in range(2500)])  # more than one page (1000)
    code, lines, _ = run_tail(capsys, "--url", feed.url, "--format", "jsonl", "--after", "10")
    assert code == 0
    assert [json.loads(ln)["seq"] for ln in lines] == list(range(11, 2501))


@pytest.mark.parametrize("args, expected", [
    (["--type", "payment.*"], ["payment.result"]),
    (["--type", "printer.*", "--type", "scanner.*"], ["printer.line", "scanner.data", "printer.cut"]),
    (["--src", "pos://store-1/till-4/*"], ["scanner.data"]),
    (["--src", "*/printer", "--type", "*.cut"], ["printer.cut"]),
])
def test_filters(box, feed, capsys, args, expected):
    sale(box)
    _, lines, _ = run_tail(capsys, "--url", feed.url, "--format", "jsonl", "--after", "0", *args)
    assert [json.loads(ln)["type"] for ln in lines] == expected


def test_a_pruned_cursor_is_noted_on_stderr(box, feed, capsys):
    box.append([(PRINTER, "printer.line", {"n": i}, TS + i) for i in range(8)])
    box.ack("default", 5)
    box.prune()
    code, lines, err = run_tail(capsys, "--url", feed.url, "--format", "jsonl", "--after", "2")
    assert code == 0 and [json.loads(ln)["seq"] for ln in lines] == [6, 7, 8]
    assert err.count("\n") == 1 and "pruned" in err and "6" in err


def test_the_url_and_token_come_from_the_environment(box, outbox_path, capsys, monkeypatch):
    sale(box)
    with FeedServer(outbox_path, port=0, token="tok-123") as feed:
        monkeypatch.setenv("TILLWIRE_FEED_URL", feed.url)
        code, _, err = run_tail(capsys)
        assert code == 2
        assert err.count("\n") == 1 and "token" in err and "tok-123" not in err
        monkeypatch.setenv("TILLWIRE_FEED_TOKEN", "tok-123")
        code, lines, err = run_tail(capsys)
        assert code == 0 and len(lines) == 4 and err == ""
        code, _, err = run_tail(capsys, "--token", "wrong")
        assert code == 2 and "Traceback" not in err


def test_an_unreachable_feed_is_one_line_and_exit_1(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, lines, err = run_tail(capsys, "--url", url)
    assert code == 1 and lines == []
    assert err == f"tillwire: error: cannot reach the feed at {url} (Connection refused) — is `tillwire run` running?\n"


@pytest.mark.parametrize("args, message", [
    (["--url", "ftp://example.com"], "--url must look like"),
    (["--url", "http://127.0.0.1:99999"], "bad port"),
    (["--after", "3", "-n", "4"], "not both"),
    (["-n", "-1"], "≥ 0"),
    (["--format", "xml"], "invalid choice"),
])
def test_user_mistakes_are_one_line_and_exit_2(capsys, args, message):
    try:
        code = main(["tail", *args])
    except SystemExit as exc:  # argparse's own checks exit from parse_args
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_path_that_is_not_a_feed_is_reported(feed, capsys):
    code, _, err = run_tail(capsys, "--url", feed.url + "/nothing-here")
    assert code == 2 and "answered 404" in err and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------------- --follow


class TailProcess:
    """``tillwire tail`` as a real process; its stdout lines arrive on a queue so reads have a deadline."""

    def __init__(self, *args: str):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("TILLWIRE_FEED_URL", None)
        env.pop("TILLWIRE_FEED_TOKEN", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "tail", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self._result: tuple[int, str] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def take(self, n: int, timeout: float = TIMEOUT) -> list[str]:
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            try:
                out.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"got {len(out)} of {n} lines; stderr: {self.stop()[1]!r}") from None
        return out

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        if self._result is not None:
            return self._result
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=TIMEOUT)
        self._reader.join(timeout=TIMEOUT)
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self._result = code, err
        return self._result


def test_follow_prints_new_events_as_they_are_captured_and_ctrl_c_exits_quietly(box, feed):
    sale(box)
    tail = TailProcess("--url", feed.url, "--format", "jsonl", "-f", "-n", "1")
    try:
        assert [json.loads(ln)["type"] for ln in tail.take(1)] == ["printer.cut"]
        box.append([(TERMINAL, "payment.result", {"approved": False}, TS + 9)])
        feed.notify()
        assert json.loads(tail.take(1)[0])["src"] == TERMINAL
        box.append([(SCANNER, "scanner.data", {"label": "x"}, TS + 10), (PRINTER, "printer.cut", {}, TS + 11)])
        assert [json.loads(ln)["seq"] for ln in tail.take(2)] == [2, 3]
    finally:
        code, err = tail.stop(signal.SIGINT)
    assert code == 130 and err == ""  # no traceback, no message
    assert tail.lines.empty()  # nothing twice


def test_follow_with_a_filter_and_only_new_events(box, feed):
    sale(box)
    tail = TailProcess("--url", feed.url, "--format", "jsonl", "-f", "-n", "0", "--type", "payment.*")
    try:
        wait_until(lambda: feed.waiting >= 1, what="tail to be long-polling")  # -n 0: from the head it saw
        box.append([(PRINTER, "printer.line", {"text": "x"}, TS + 5),
                    (TERMINAL, "payment.result", {"approved": True}, TS + 6)])
        feed.notify()
        assert [(json.loads(ln)["type"], json.loads(ln)["seq"]) for ln in tail.take(1)] == [("payment.result", 2)]
    finally:
        code, err = tail.stop()
    assert code == 130 and err == "" and tail.lines.empty()


def test_follow_rides_out_a_feed_restart_without_repeating_or_losing_events(box, outbox_path):
    feed = FeedServer(outbox_path, port=0, poll_s=0.05).start()
    port = feed.port
    sale(box)
    tail = TailProcess("--url", feed.url, "--format", "jsonl", "-f", "--after", "0")
    try:
        assert len(tail.take(4)) == 4
        feed.stop()
        box.append([(PRINTER, "printer.line", {"text": "while down"}, TS + 7)])
        feed = FeedServer(outbox_path, port=port, poll_s=0.05).start()
        assert json.loads(tail.take(1, timeout=20)[0])["data"] == {"text": "while down"}
    finally:
        code, err = tail.stop()
        feed.stop()
    assert code == 130 and tail.lines.empty()
    assert "retrying" in err and "is back" in err and "Traceback" not in err


def test_follow_notices_a_new_outbox_behind_its_cursor(box, outbox_path, tmp_path):
    feed = FeedServer(outbox_path, port=0, poll_s=0.05).start()
    port = feed.port
    sale(box)
    tail = TailProcess("--url", feed.url, "--format", "jsonl", "-f", "--after", "0")
    fresh = Outbox.open(tmp_path / "moved-aside-and-recreated.db")
    try:
        assert len(tail.take(4)) == 4
        feed.stop()
        fresh.append([(PRINTER, "printer.line", {"text": "first in the new outbox"}, TS + 20)])
        feed = FeedServer(fresh.path, port=port, poll_s=0.05).start()
        assert json.loads(tail.take(1, timeout=20)[0])["data"] == {"text": "first in the new outbox"}
    finally:
        code, err = tail.stop()
        feed.stop()
        fresh.close()
    assert code == 130 and "new outbox" in err and "Traceback" not in err


def test_follow_against_no_feed_fails_at_once(tmp_path):
    tail = TailProcess("--url", f"http://127.0.0.1:{free_port()}", "-f")
    code = tail.proc.wait(timeout=TIMEOUT)
    _, err = tail.stop()
    assert code == 1 and "cannot reach the feed" in err and err.count("\n") == 1

"""Disk full and outbox full: the till's bytes still flow through the tap, the bridge says what it could not
store, nothing committed is lost, and capture resumes by itself when space returns."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading

import pytest

from bridge.config import load
from bridge.service import Bridge
from bridge_helpers import PREFIX, free_port, rows, wait_for, wait_port, write_config

PRINTER = PREFIX + "printer"
MiB = 1024 * 1024


class Upstream:
    """The real printer behind the tap: accepts connections and keeps every byte it receives."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    with self.lock:
                        self.received += data

    def got(self) -> bytes:
        with self.lock:
            return bytes(self.received)

    def close(self):
        self.sock.close()


def printed(outbox):
    return [env["data"]["text"] for _, s, _, env in rows(outbox) if s == PRINTER and env["type"] == "printer.line"]


def alerts(outbox):
    return [(env["data"]["kind"], env["data"]["active"]) for _, _, _, env in rows(outbox)
            if env["type"] == "bridge.alert"]


@pytest.fixture
def tapped(tmp_path):
    """A bridge (in this process) tapping a till ⇄ printer TCP link; yields (make_bridge, upstream, tap port)."""
    upstream = Upstream()
    port = free_port()
    bridges = []

    def make(**bridge_keys):
        cfg = write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                       "transport": f"tap+tcp://127.0.0.1:{port}?upstream=127.0.0.1:{upstream.port}"}],
                           **bridge_keys)
        logged: list[str] = []
        lines = []

        def stored(bodies, keys):
            lines.extend(d["text"] for _, kind, d, _ in bodies if kind == "printer.line")

        bridge = Bridge(load(cfg), log=logged.append, on_stored=stored)
        bridge.stored_lines = lines
        bridge.start()
        bridges.append(bridge)
        wait_port(port)
        return bridge, logged

    yield make, upstream, port
    for b in bridges:
        b.close()
    upstream.close()


def test_disk_full_then_space_returns(tmp_path, tapped):
    make, upstream, port = tapped
    free_mb = shutil.disk_usage(tmp_path).free // MiB
    # Storing stops when free space falls under min_free_mb: set it 200 MiB under what is free now, then take
    # 400 MiB away with a ballast file — a real full disk as far as the bridge's guard is concerned.
    bridge, logged = make(min_free_mb=free_mb - 200)
    outbox = tmp_path / "outbox.sqlite"
    with socket.create_connection(("127.0.0.1", port)) as till:
        till.sendall(b"\x1b@before\n")
        wait_for(lambda: printed(outbox) == ["before"], what="the first line stored")
        ballast = tmp_path / "ballast"
        with open(ballast, "wb") as fh:
            os.posix_fallocate(fh.fileno(), 0, 400 * MiB)
        try:
            wait_for(lambda: "disk_full" in bridge.alerts, what="the disk_full alert")
            sent = b"".join(b"during %d\n" % i for i in range(200))
            till.sendall(sent)
            # The till's bytes reach the printer while nothing can be stored.
            wait_for(lambda: upstream.got().endswith(sent), what="the printer to get every byte")
            assert upstream.got() == b"\x1b@before\n" + sent
            wait_for(lambda: len(bridge._pending) >= 200, what="the lines held in memory")
            assert printed(outbox) == ["before"]
            assert any("below bridge.min_free_mb" in line or "held in memory" in line for line in logged)
        finally:
            ballast.unlink()
        wait_for(lambda: len(printed(outbox)) == 201, timeout=15, what="capture to resume")
    assert printed(outbox) == ["before"] + [f"during {i}" for i in range(200)]
    assert ("disk_full", True) in alerts(outbox) and ("disk_full", False) in alerts(outbox)
    assert bridge.totals.dropped_events == 0


def test_outbox_size_limit_then_rows_leave(tmp_path, tapped):
    make, upstream, port = tapped
    bridge, logged = make(outbox_max_mb=1, retention_hours=24)
    outbox = tmp_path / "outbox.sqlite"
    line = b"x" * 300
    with socket.create_connection(("127.0.0.1", port)) as till:
        total = 0
        while "outbox_blocked" not in bridge.alerts:  # fill it (a 1 MiB outbox holds a few thousand lines)
            till.sendall(b"".join(b"%06d " % n + line + b"\n" for n in range(total, total + 100)))
            total += 100
            wait_for(lambda: len(bridge.stored_lines) == total or "outbox_blocked" in bridge.alerts, timeout=15,
                     what="the lines to be stored or refused")
            assert total < 20000, "the outbox never filled up"
        assert any("the outbox is full" in m and "the till's traffic still flows" in m for m in logged)
        wait_for(lambda: "outbox_nearly_full" in bridge.alerts, what="the size alert")
        assert upstream.got().count(b"\n") == total  # nothing held back on the wire
        # Space returns: the rows the (future) sinks acknowledged are deleted, as prune would.
        db = sqlite3.connect(outbox, timeout=10)
        db.execute("DELETE FROM events WHERE rowid IN (SELECT rowid FROM events ORDER BY rowid LIMIT 1000)")
        db.commit()
        db.close()
        wait_for(lambda: "outbox_blocked" not in bridge.alerts, timeout=15, what="the outbox to store again")
    numbers = [int(t.split()[0]) for t in printed(outbox)]
    assert numbers == sorted(numbers) and numbers[-1] == total - 1  # the held lines arrived, in order
    seqs = [q for _, s, q, _ in rows(outbox) if s == PRINTER]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert ("outbox_blocked", False) in alerts(outbox)
    assert ("outbox_nearly_full", True) in alerts(outbox)  # the early warning (alert_percent, 80 % by default)


def test_copies_a_transport_could_not_hold_become_an_alert(tmp_path):
    port = free_port()
    cfg = write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                   "transport": f"tcp-listen://127.0.0.1:{port}"}])
    logged: list[str] = []
    bridge = Bridge(load(cfg), log=logged.append)
    bridge.start()
    try:
        # What tcp-listen/tap+tcp report when a later connection's copies overflowed their hold (transports.md §5).
        bridge.queue.status(1, "printer", "closed", transport=f"tcp-listen://127.0.0.1:{port}",
                            peer="127.0.0.1:40000", reason="the till closed the connection",
                            dropped_bytes=5000, dropped_chunks=3)
        wait_for(lambda: ("capture_overflow", False) in alerts(tmp_path / "outbox.sqlite"), what="the alert")
    finally:
        bridge.close()
    alert = next(env["data"] for _, _, _, env in rows(tmp_path / "outbox.sqlite") if env["type"] == "bridge.alert")
    assert (alert["device"], alert["chunks"], alert["bytes"]) == ("printer", 3, 5000)
    assert bridge.totals.queue_dropped_bytes == 5000
    assert any("5000 bytes in 3 chunks were forwarded but not captured" in m for m in logged)


def test_a_recording_that_fails_stops_alone_and_capture_goes_on(tmp_path):
    """The disk under the recording fills (ENOSPC from the writer): the recording stops with an alert in the
    outbox, and every event is still captured."""
    import errno

    port = free_port()
    cfg = write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                   "transport": f"tcp-listen://127.0.0.1:{port}"}])
    bridge = Bridge(load(cfg), log=lambda m: None, record=str(tmp_path / "till.tws"))
    bridge.start()
    try:
        wait_port(port)

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        bridge.recorder.chunk = full
        with socket.create_connection(("127.0.0.1", port)) as till:
            till.sendall(b"\x1b@still captured\n")
            wait_for(lambda: "still captured" in printed(tmp_path / "outbox.sqlite"), what="the line stored")
        wait_for(lambda: ("recording_failed", True) in alerts(tmp_path / "outbox.sqlite"), what="the alert")
    finally:
        bridge.close()
    assert bridge.recorder is None and bridge.fatal is None
    message = next(env["data"]["message"] for _, _, _, env in rows(tmp_path / "outbox.sqlite")
                   if env["type"] == "bridge.alert")
    assert "No space left on device" in message and "capture into the outbox goes on" in message

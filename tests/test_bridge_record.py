"""Recording through the running bridge: a ZVT card sale through a TCP tap is recorded with the card number
masked, and replaying the recording gives the same events the bridge stored live; a cut-off recording still
replays up to its last whole block."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading

import msgpack

from bridge.recording import tws
from bridge_helpers import PREFIX, ROOT, free_port, rows, start_bridge, stop, wait_for, wait_port, write_config

SALE = ROOT / "sessions/payment/zvt-card-sale.tcp"
TILL_SIDE = (SALE.parent / (SALE.name + ".bin")).read_bytes()
TERMINAL_SIDE = (SALE.parent / (SALE.name + ".from_device.bin")).read_bytes()
PAN_BCD = bytes.fromhex("4761739001010010")  # the test card in the terminal's status information (BMP 22)


class Terminal:
    """The payment terminal behind the tap: once the till has sent its side, it answers with its own."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got = bytearray()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:  # the tap may probe the terminal before the till connects
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                got = bytearray()
                while len(got) < len(TILL_SIDE):
                    data = conn.recv(65536)
                    if not data:
                        break
                    got += data
                if len(got) < len(TILL_SIDE):
                    continue
                self.got = got
                conn.sendall(TERMINAL_SIDE)
                conn.recv(1)  # until the till hangs up
                return


def replay(path, *extra) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "bridge.cli", "replay", "--format", "msgpack",
                          "--src-prefix", PREFIX, *extra, str(path)], cwd=ROOT, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    return list(msgpack.Unpacker(__import__("io").BytesIO(out.stdout), raw=False, strict_map_key=False))


def test_record_while_running_then_replay_gives_the_live_events(tmp_path):
    terminal = Terminal()
    port = free_port()
    cfg = write_config(tmp_path, [{"name": "terminal", "protocol": "zvt-tcp",
                                   "transport": f"tap+tcp://127.0.0.1:{port}?upstream=127.0.0.1:{terminal.port}"}])
    recording = tmp_path / "till.tws"
    proc = start_bridge(cfg, "--quiet", "--record", str(recording))
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as till:
            till.sendall(TILL_SIDE)
            got = bytearray()
            while len(got) < len(TERMINAL_SIDE):
                data = till.recv(65536)
                assert data, "the tap closed before the terminal's answer arrived"
                got += data
        assert bytes(terminal.got) == TILL_SIDE and bytes(got) == TERMINAL_SIDE  # the tap changed nothing
        live_types = lambda: [env["type"] for _, _, _, env in rows(tmp_path / "outbox.sqlite")]  # noqa: E731
        wait_for(lambda: live_types().count("payment.result") >= 1, what="the payment result stored")
        code, _, err = stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
        terminal.sock.close()
    assert code == 0, err

    data = recording.read_bytes()
    assert PAN_BCD not in data and b"4761739001010010" not in data  # the recorder masked the card number
    reader = tws.Reader(recording)
    assert not reader.truncated
    assert reader.header["site"] == "test-store" and reader.header["till"] == "till-1"
    assert [d.name for d in reader.devices] == ["terminal"]
    chunks = [r for r in reader.records() if isinstance(r, tws.ChunkRecord)]
    assert sum(len(c.data) for c in chunks if c.direction == "to_device") == len(TILL_SIDE)
    assert sum(len(c.data) for c in chunks if c.direction == "from_device") == len(TERMINAL_SIDE)

    live = [(env["src"], env["type"], env["data"]) for _, _, _, env in rows(tmp_path / "outbox.sqlite")
            if env["type"] != "device.status"]
    replayed = [(e["src"], e["type"], e["data"]) for e in replay(recording)]
    assert replayed == live
    result = next(d for _, t, d in live if t == "payment.result")
    assert result["pan"] == "476173******0010" and result["approved"] is True

    # A recording cut short (the bridge killed mid-write) replays up to its last whole block.
    cut = tmp_path / "cut.tws"
    cut.write_bytes(data[: len(data) * 2 // 3])
    partial = replay(cut)
    assert [(e["src"], e["type"], e["data"]) for e in partial] == replayed[: len(partial)]
    json.dumps([e["type"] for e in partial])


def test_a_recording_never_overwrites_a_file(tmp_path):
    """Neither the outbox, nor a recording being replayed, nor any existing file: one line, exit 2, untouched."""
    replayed = ROOT / "sessions/till/grocery-sale.tws"
    cfg = write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                   "transport": f"replay://{replayed}?speed=max"}])
    (tmp_path / "outbox.sqlite").write_bytes(b"")
    existing = tmp_path / "yesterday.tws"
    existing.write_bytes(b"keep me")
    before = replayed.read_bytes()
    for target, phrase in ((tmp_path / "outbox.sqlite", "would overwrite the outbox"),
                           (replayed, "replays"), (existing, "exists")):
        proc = subprocess.run([sys.executable, "-m", "bridge.cli", "run", "--config", str(cfg), "--record",
                               str(target)], cwd=ROOT, capture_output=True, timeout=60)
        err = proc.stderr.decode()
        assert proc.returncode == 2, err
        assert err.count("\n") == 1 and phrase in err and "Traceback" not in err
    assert replayed.read_bytes() == before and existing.read_bytes() == b"keep me"


def test_start_in_the_record_path_becomes_the_start_time(tmp_path):
    cfg = write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                   "transport": f"replay://{ROOT / 'sessions/till/grocery-sale.tws'}?speed=max"}],
                       stop_after_replay=True)
    proc = subprocess.run([sys.executable, "-m", "bridge.cli", "run", "--config", str(cfg), "--quiet", "--record",
                           str(tmp_path / "till-{start}.tws")], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    made = list(tmp_path.glob("till-2*.tws"))
    assert len(made) == 1 and tws.Reader(made[0]).devices[0].name == "printer"


def test_tillwire_record_captures_a_live_device(tmp_path):
    """`tillwire record` (no outbox, no feed): a till prints to a listening device; SIGTERM ends the recording
    with its index; the recording holds exactly the bytes sent and decodes to the receipt."""
    port = free_port()
    cfg = write_config(tmp_path, [{"name": "printer", "protocol": "escpos",
                                   "transport": f"tcp-listen://127.0.0.1:{port}"}])
    out = tmp_path / "live.tws"
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "record", "--config", str(cfg), "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    receipt = (ROOT / "sessions/escpos/grocery-card.bin").read_bytes()
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as till:
            till.sendall(receipt)
        wait_for(lambda: out.exists() and out.stat().st_size > len(receipt) // 2, what="the recording to grow")
        code, _, err = stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    reader = tws.Reader(out)
    assert not reader.truncated
    sent = b"".join(r.data for r in reader.records() if isinstance(r, tws.ChunkRecord))
    assert sent == receipt
    assert not (tmp_path / "outbox.sqlite").exists()
    types = [e["type"] for e in replay(out)]
    assert "printer.line" in types and "printer.cut" in types

"""``replay://PATH.tws``: a recorded session played as if it were live, through the same ``CaptureQueue`` the
bridge reads (docs/bridge/recording.md section 7)."""

from __future__ import annotations

import threading
import time

import pytest

from bridge.capture import CLOSED, OPEN, CaptureQueue, Chunk, Status
from bridge.recording import tws
from bridge.transports import TransportConfigError, open_transport
from bridge.transports.replay import END_REASON, ReplayTransport

T0 = 1_600_000_000_000_000_000
GAP_NS = 50_000_000  # 50 ms between chunks: 9 gaps, a 450 ms recorded span
N = 10


def make_recording(path) -> list[tws.ChunkRecord]:
    written = []
    with tws.Writer.create(path, devices=[tws.DeviceInfo("printer", "escpos"), tws.DeviceInfo("scale", "scale-nci")],
                           redact=False) as w:
        for i in range(N):
            t = T0 + i * GAP_NS
            w.chunk(t, "printer", "to_device", b"line %d\n" % i)
            written.append(tws.ChunkRecord(t, "printer", "to_device", b"line %d\n" % i))
            w.chunk(t + 1, "scale", "from_device", b"\x0a0.500KG\x0d")
        w.control(T0 + N * GAP_NS, "printer", "close", reason="end")
    return written


def play(url: str, device: str = "printer", timeout: float = 10.0) -> tuple[list, float]:
    transport = open_transport(device, url)
    assert isinstance(transport, ReplayTransport)
    queue, stop = CaptureQueue(), threading.Event()
    thread = threading.Thread(target=transport.run, args=(queue, stop), daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout)
    elapsed = time.monotonic() - started
    alive = thread.is_alive()
    stop.set()
    thread.join(5)
    assert not alive, "the replay did not end"
    assert transport.finished
    items = []
    while batch := queue.get_batch(timeout=0):
        items += batch
    return items, elapsed


def test_at_max_speed_it_plays_the_device_chunks_in_order_between_open_and_closed(tmp_path):
    path = tmp_path / "s.tws"
    written = make_recording(path)
    before = time.time_ns()
    items, _ = play(f"replay://{path}?speed=max")
    assert isinstance(items[0], Status) and items[0].state == OPEN
    assert isinstance(items[-1], Status) and items[-1].state == CLOSED and items[-1].detail["reason"] == END_REASON
    chunks = [it for it in items if isinstance(it, Chunk)]
    assert [c.data for c in chunks] == [w.data for w in written]  # only this device's, in order
    assert {c.device for c in chunks} == {"printer"} and {c.direction for c in chunks} == {"to_device"}
    # clock=now: re-based to when it plays, the recorded gaps kept (speed max: no pacing, but the same spacing)
    assert chunks[0].t_ns >= before
    assert [c.t_ns - chunks[0].t_ns for c in chunks] == [w.t_ns - written[0].t_ns for w in written]


def test_clock_recorded_keeps_the_recorded_times_and_device_picks_another_device(tmp_path):
    path = tmp_path / "s.tws"
    written = make_recording(path)
    items, _ = play(f"replay://{path}?speed=0&clock=recorded")
    assert [c.t_ns for c in items if isinstance(c, Chunk)] == [w.t_ns for w in written]
    items, _ = play(f"replay://{path}?speed=max&device=scale", device="scale-2")
    chunks = [c for c in items if isinstance(c, Chunk)]
    assert len(chunks) == N and {c.device for c in chunks} == {"scale-2"}
    assert {c.direction for c in chunks} == {"from_device"}


def test_at_a_finite_speed_the_recorded_gaps_are_kept_scaled(tmp_path):
    path = tmp_path / "s.tws"
    make_recording(path)
    span_s = (N - 1) * GAP_NS / 1e9
    items, elapsed = play(f"replay://{path}?speed=3")
    chunks = [c for c in items if isinstance(c, Chunk)]
    assert len(chunks) == N
    assert elapsed >= span_s / 3
    assert elapsed < span_s / 3 + 3.0  # loose: a loaded 2-core machine
    stamps = [c.t_ns for c in chunks]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] == pytest.approx((N - 1) * GAP_NS / 3, rel=0.01)


def test_stop_ends_a_slow_replay_promptly(tmp_path):
    path = tmp_path / "s.tws"
    make_recording(path)
    transport = open_transport("printer", f"replay://{path}?speed=0.01")  # 45 s of recording
    queue, stop = CaptureQueue(), threading.Event()
    thread = threading.Thread(target=transport.run, args=(queue, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not queue.queued_bytes and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    transport.stop()
    thread.join(5)
    assert not thread.is_alive()
    last = queue.get_batch(timeout=0)[-1]
    assert last.state == CLOSED and last.detail["reason"] == "stopped"


def test_a_truncated_recording_plays_to_its_last_whole_block_and_says_so(tmp_path):
    path = tmp_path / "s.tws"
    w = tws.Writer.create(path, devices=[tws.DeviceInfo("printer", "escpos")], redact=False)
    w.chunk(T0, "printer", "to_device", b"first\n")
    w.flush()
    w.chunk(T0 + 1, "printer", "to_device", b"second\n")
    w.flush()
    data = path.read_bytes()
    path.write_bytes(data[:-5])  # the crash cut the last block
    items, _ = play(f"replay://{path}?speed=max")
    assert [c.data for c in items if isinstance(c, Chunk)] == [b"first\n"]
    assert "cut short" in items[-1].detail["reason"] and items[-1].detail["reason"].startswith(END_REASON)


def test_a_relative_path_is_relative_to_the_current_directory(tmp_path, monkeypatch):
    make_recording(tmp_path / "s.tws")
    monkeypatch.chdir(tmp_path)
    items, _ = play("replay://s.tws?speed=max")
    assert len([c for c in items if isinstance(c, Chunk)]) == N


@pytest.mark.parametrize("query, message", [
    ("", "does not exist"),
    ("?device=drawer", "has no device 'drawer'; its devices: printer, scale"),
    ("?speed=fast", "speed='fast' must be a positive number, 0 or max"),
    ("?speed=-1", "must be a positive number"),
    ("?clock=gps", "clock='gps' must be now or recorded"),
    ("?sped=2", "unknown replay parameter(s) sped"),
])
def test_configuration_mistakes_are_one_line_errors_at_construction(tmp_path, query, message):
    path = tmp_path / "s.tws"
    if message != "does not exist":
        make_recording(path)
    with pytest.raises(TransportConfigError) as info:
        open_transport("printer", f"replay://{path}{query}")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_file_that_is_not_a_recording_is_a_config_error(tmp_path):
    path = tmp_path / "notes.tws"
    path.write_text("not a recording\n")
    with pytest.raises(TransportConfigError, match="not a .tws recording"):
        open_transport("printer", f"replay://{path}")

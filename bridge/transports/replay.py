"""``replay://PATH?device=NAME&speed=N&clock=now|recorded&max_gap=S``: plays one device of a ``.tws`` recording as
if it were live (docs/bridge/recording.md section 7).

``PATH`` is relative to the current directory unless absolute; ``device`` defaults to the transport's device name;
``speed`` (default 1) divides the recorded gaps, ``0`` or ``max`` plays as fast as possible; ``clock=now`` (default)
re-bases the chunks' t_ns so the recording's first chunk plays at the time it is played, ``recorded`` keeps them;
``max_gap`` (seconds of recorded time) shortens every quiet spell of the whole recording longer than that to that
length, so a day's sessions hours apart play back to back. Times are measured from the recording's first chunk of
*any* device and gaps from the whole recording, so several devices replayed from one file by several transports
stay in step with each other. The transport
reports ``device.status`` open, the chunks of that device (both directions, in file order), then closed with reason
``end of recording`` (``… (file cut short: played up to its last whole block)`` for a truncated file) and sets
``finished``.
"""

from __future__ import annotations

import os
import threading
import time

from bridge.capture import CaptureSink
from bridge.recording import tws
from bridge.transports.base import Transport, TransportConfigError, split_query

END_REASON = "end of recording"


class ReplayTransport(Transport):
    scheme = "replay"

    def __init__(self, device: str, url: str, **options):
        super().__init__(device, url)
        parts, query = split_query(url)
        path = (parts.netloc + parts.path) if parts.netloc not in ("", "localhost") else parts.path
        if not path:
            raise TransportConfigError(f"device {device!r}: {url!r} names no file (replay://PATH.tws)")
        unknown = sorted(set(query) - {"device", "speed", "clock", "max_gap"})
        if unknown:
            raise TransportConfigError(f"device {device!r}: unknown replay parameter(s) {', '.join(unknown)}; "
                                       "known: device, speed, clock, max_gap")
        self.max_gap_ns: int | None = None
        if "max_gap" in query:
            try:
                max_gap = float(query["max_gap"])
            except ValueError:
                max_gap = -1.0
            if not 0 <= max_gap < float("inf"):
                raise TransportConfigError(f"device {device!r}: replay max_gap={query['max_gap']!r} must be a "
                                           "number of seconds (0 or more)")
            self.max_gap_ns = int(max_gap * 1e9)
        self.path = os.path.abspath(path)
        speed = query.get("speed", "1").strip().lower()
        if speed in ("0", "max"):
            self.speed = 0.0
        else:
            try:
                self.speed = float(speed)
            except ValueError:
                self.speed = -1.0
            if not self.speed > 0 or self.speed == float("inf"):
                raise TransportConfigError(f"device {device!r}: replay speed={speed!r} must be a positive number, "
                                           "0 or max")
        self.clock = query.get("clock", "now").strip().lower()
        if self.clock not in ("now", "recorded"):
            raise TransportConfigError(f"device {device!r}: replay clock={self.clock!r} must be now or recorded")
        if not os.path.isfile(self.path):
            raise TransportConfigError(f"device {device!r}: recording {path} does not exist (replay://PATH.tws)")
        try:
            reader = tws.Reader(self.path)
        except tws.TwsError as exc:
            raise TransportConfigError(f"device {device!r}: {exc}") from None
        names = [d.name for d in reader.devices]
        reader.close()
        self.source = query.get("device") or device
        if self.source not in names:
            raise TransportConfigError(f"device {device!r}: recording {path} has no device {self.source!r}; "
                                       f"its devices: {', '.join(names) or '(none)'}")
        self._reader: tws.Reader | None = None

    def open(self) -> None:
        try:
            self._reader = tws.Reader(self.path)
        except tws.TwsError as exc:
            raise OSError(str(exc)) from None

    def pump(self, sink: CaptureSink, stop: threading.Event) -> str | None:
        reader = self._reader
        assert reader is not None
        start_wall = time.time_ns()
        start_mono = time.monotonic()
        origin: int | None = None  # the recording's first chunk, whichever device it belongs to
        latest = 0  # the latest chunk time seen so far (gaps are measured on the whole recording)
        cut = 0  # recorded ns removed by max_gap so far
        for rec in reader.records():
            if stop.is_set():
                return "stopped"
            if type(rec) is not tws.ChunkRecord:
                continue
            if origin is None:
                origin = latest = rec.t_ns
            elif rec.t_ns > latest:
                gap = rec.t_ns - latest
                if self.max_gap_ns is not None and gap > self.max_gap_ns:
                    cut += gap - self.max_gap_ns
                latest = rec.t_ns
            if rec.device != self.source:
                continue
            offset_ns = max(0, rec.t_ns - origin - cut)
            if self.speed:
                due = start_mono + offset_ns / 1e9 / self.speed
                delay = due - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return "stopped"
            t_ns = rec.t_ns if self.clock == "recorded" else start_wall + int(offset_ns / (self.speed or 1.0))
            sink.chunk(t_ns, self.device, rec.direction, rec.data)
        self.finished = True
        if reader.truncated:
            return f"{END_REASON} (file cut short: played up to its last whole block)"
        return END_REASON

    def release(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def interrupt(self) -> None:
        pass  # pump waits on the stop event itself, which the caller has set

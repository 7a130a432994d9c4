"""The file sink: rotating JSON-lines or msgpack files, fsynced before the cursor moves (docs/bridge/sinks.md §6).

```toml
[[sinks]]
name = "archive"
kind = "file"
dir = "/var/lib/tillwire/events"   # relative to the config file
format = "jsonl"                   # or "msgpack"
prefix = "events"                  # file names: events-20261123T081502Z-000001.jsonl
rotate_mb = 64                     # start a new file past this size...
rotate_s = 3600                    # ...or when the open one is this old (0: size only)
keep_files = 0                     # delete the oldest past this many (0: keep all)
```

Each record is one CloudEvent in structured mode (``cloudevents.structured_json`` plus a newline, or
``cloudevents.structured_msgpack``): the CloudEvent's ``data`` is the tillwire envelope. A batch is written,
flushed and ``fsync``ed before ``send`` returns it as done; a new file's directory entry is fsynced too.

After a crash between the fsync and the runner's ack, the last batch is written again: readers de-duplicate on
``(source, id)`` like every consumer (``bridge.consumer``). A crash in the middle of a write can leave a torn
last record in the newest file; ``connect`` cuts it off (to the last complete line or msgpack object) before
anything else is written, and every start opens a new file, so old files are never appended to.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack

from bridge.sinks import cloudevents
from bridge.sinks.base import Outcome, Outgoing, Retry, Sink, SinkUnavailable

SUFFIX = {"jsonl": ".jsonl", "msgpack": ".msgpack"}


@dataclass(frozen=True)
class FileOptions:
    dir: Path
    format: str
    prefix: str
    rotate_bytes: int
    rotate_s: float
    keep_files: int


class FileSink(Sink):
    kind = "file"
    default_max_batch = 1024

    @classmethod
    def parse_options(cls, t, base, env) -> FileOptions:
        directory = t.get("dir", str, required=True)
        fmt = t.get("format", str, "jsonl")
        if fmt not in SUFFIX:
            t.fail(f"must be 'jsonl' or 'msgpack', not {fmt!r}", "format")
        prefix = t.get("prefix", str, "events")
        if not prefix or "/" in prefix or prefix.startswith("."):
            t.fail(f"must be a plain file name prefix, not {prefix!r}", "prefix")
        rotate_mb = t.number("rotate_mb", 64, 0.001, 1 << 20)
        rotate_s = t.number("rotate_s", 0, 0, 86_400 * 366)
        keep = int(t.number("keep_files", 0, 0, 1_000_000))
        return FileOptions(Path(os.path.normpath(Path(base) / directory)), fmt, prefix,
                           int(rotate_mb * 1024 * 1024), float(rotate_s), keep)

    def __init__(self, name, settings: FileOptions, context):
        super().__init__(name, settings, context)
        self._fh = None
        self._path: Path | None = None
        self._opened = 0.0
        self._size = 0
        self._counter = 0

    def describe(self) -> str:
        return f"file {self.settings.dir}/{self.settings.prefix}-*{SUFFIX[self.settings.format]}"

    # ---------------------------------------------------------------- files

    def _files(self) -> list[Path]:
        suffix = SUFFIX[self.settings.format]
        return sorted(p for p in self.settings.dir.glob(f"{self.settings.prefix}-*{suffix}") if p.is_file())

    def connect(self, timeout_s: float) -> None:
        opts = self.settings
        try:
            opts.dir.mkdir(parents=True, exist_ok=True)
            files = self._files()
            if files:
                _cut_torn_tail(files[-1], opts.format)
                self._counter = _counter_of(files[-1])
            self._open_new()
        except OSError as exc:
            raise SinkUnavailable(f"cannot write in {opts.dir}: {exc.strerror or type(exc).__name__}") from None

    def _open_new(self) -> None:
        self._close_file()
        self._counter += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.settings.dir / f"{self.settings.prefix}-{stamp}-{self._counter:06d}{SUFFIX[self.settings.format]}"
        self._fh = open(path, "xb")
        _fsync_dir(self.settings.dir)
        self._path, self._opened, self._size = path, time.monotonic(), 0
        self._prune_old()

    def _prune_old(self) -> None:
        keep = self.settings.keep_files
        if keep:
            files = self._files()
            for old in files[:max(0, len(files) - keep)]:
                if old != self._path:
                    old.unlink(missing_ok=True)

    def _close_file(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None

    # ---------------------------------------------------------------- sending

    def send(self, batch: list[Outgoing]) -> Outcome:
        opts = self.settings
        if self._fh is None:
            raise SinkUnavailable("no file open")
        if self._size >= opts.rotate_bytes or (opts.rotate_s and time.monotonic() - self._opened >= opts.rotate_s):
            try:
                self._open_new()
            except OSError as exc:
                return Outcome(0, retry=Retry(f"cannot start a new file in {opts.dir}: "
                                              f"{exc.strerror or type(exc).__name__}", reconnect=True))
        if opts.format == "jsonl":
            blob = b"".join(cloudevents.structured_json(ev) + b"\n" for ev in batch)
        else:
            blob = b"".join(cloudevents.structured_msgpack(ev) for ev in batch)
        try:
            self._fh.write(blob)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            # a partial write leaves a torn record: the reconnect cuts it off and starts a new file
            return Outcome(0, retry=Retry(f"cannot write {self._path}: {exc.strerror or type(exc).__name__}",
                                          reconnect=True))
        self._size += len(blob)
        return Outcome(len(batch))

    def close(self) -> None:
        self._close_file()


def _counter_of(path: Path) -> int:
    stem = path.name.rsplit(".", 1)[0]
    try:
        return int(stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def _cut_torn_tail(path: Path, fmt: str) -> None:
    """Truncate a record that a crash left half written at the end of ``path``."""
    data = path.read_bytes()
    if fmt == "jsonl":
        good = data.rfind(b"\n") + 1
    else:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        unpacker.feed(data)
        good = 0
        try:
            for _ in unpacker:
                good = unpacker.tell()
        except (ValueError, msgpack.UnpackException):
            pass
    if good < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good)
            fh.flush()
            os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SINK = FileSink

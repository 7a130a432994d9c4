"""Session recordings: the ``.tws`` file format (``docs/bridge/recording.md``), a writer and a reader.

A recording is a preamble (signature + format version), then CRC-checked blocks of msgpack records: one header
block (the header map with the device table), record blocks (chunks and control records, each block ended by
``flush()``), and, when the writer closed cleanly, a trailer block (index + redaction counts) and a fixed-size
footer pointing at it. A file cut short by a crash reads up to its last whole block (``Reader.truncated``).

Chunks are redacted as they are written (``protocols.redact``): PANs and track data are masked in place, so the
bytes of a recording have the same offsets as the bytes on the wire.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, NamedTuple

import msgpack

from collections import deque

from protocols.redact import POLICY, StreamRedactor, masks_whole, redactor_for

# ------------------------------------------------------------------------------------------------ layout
SIGNATURE = b"\x89TWS\r\n\x1a\n"  # PNG-style: a non-text byte first, CR LF and ^Z catch text-mode mangling
VERSION = 1                       # the major version; a reader refuses any other (docs/bridge/recording.md)
MINOR = 0                         # added fields only; readers ignore what they do not know
PREAMBLE = struct.Struct("<8sHH")  # signature, version, minor

BLOCK_SYNC = b"TWBK"
# sync, kind, flags, reserved, payload length, record count, first t_ns, crc32 (over the 24 bytes before it + payload)
BLOCK_HEADER = struct.Struct("<4sBBHIIqI")
KIND_HEADER, KIND_RECORDS, KIND_TRAILER = 1, 2, 3

FOOTER_MAGIC = b"TWSE"
FOOTER = struct.Struct("<QI4s")    # trailer block offset, crc32 of those 8 bytes, magic

# A block's payload may not exceed this: a reader rejects a larger one (a corrupt length must not make it
# allocate gigabytes). 4 MiB is 64 times the writer's target below, so no writer-made block comes near it.
MAX_BLOCK_PAYLOAD = 4 * 1024 * 1024
# The writer ends a block once its payload reaches this (a block is also ended by every flush()). 64 KiB keeps the
# loss to one block's worth of data at most ~1 s of a busy till, and a seek lands within 64 KiB of its target.
BLOCK_TARGET = 64 * 1024
# A chunk larger than this is stored as several chunk records (same t_ns), so every record fits a block.
MAX_CHUNK_RECORD = 1024 * 1024

# A redactor holds a frame, a track or a PAN still arriving until it completes (docs/bridge/recording.md section
# 5): flush() does not cut it. Bytes held longer than this, in recorded time (the t_ns of later chunks and control
# records, or flush(now_ns=…)), are released as at a cut: their data masked whole. 5 s: a 250-byte ZVT frame at
# 9600 baud takes 0.26 s, a 64 KiB one at 115200 baud 5.7 s … the largest frames may be cut, a stalled one is not
# held for ever.
HOLD_BOUND_NS = 5_000_000_000
# device.status states (and the older "close") that end a device's streams: what is held is released whole and
# the next bytes start fresh streams, as the pipeline's decoders do.
CLOSING_KINDS = frozenset({"close", "closed"})

REC_CHUNK, REC_CONTROL = 0, 1
_DIRECTIONS = ("to_device", "from_device")
_DIR_CODE = {d: i for i, d in enumerate(_DIRECTIONS)}


class TwsError(ValueError):
    """The file is not a recording this reader can read; the message is one line for the user."""


@dataclass
class DeviceInfo:
    name: str
    protocol: str
    transport: str = ""
    options: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def to_map(self) -> dict:
        return {"name": self.name, "protocol": self.protocol, "transport": self.transport,
                "options": dict(self.options), "settings": dict(self.settings)}

    @classmethod
    def from_map(cls, m: dict) -> DeviceInfo:
        return cls(name=str(m.get("name", "")), protocol=str(m.get("protocol", "")),
                   transport=str(m.get("transport", "")), options=dict(m.get("options") or {}),
                   settings=dict(m.get("settings") or {}))


class ChunkRecord(NamedTuple):
    t_ns: int
    device: str
    direction: str
    data: bytes


class ControlRecord(NamedTuple):
    t_ns: int
    device: str
    kind: str
    fields: dict


class _Stream:
    """One device direction: its redactor, the latest t_ns fed, and where each chunk still (partly) held began."""

    __slots__ = ("redactor", "t_ns", "fed", "base", "marks", "counts")

    def __init__(self, redactor: StreamRedactor | None) -> None:
        self.redactor = redactor
        self.t_ns = 0
        self.fed = 0                     # bytes fed so far (the stream offset of the next byte)
        self.base = 0                    # stream offset where the current redactor began (after a close)
        self.marks: deque = deque()      # (stream offset, t_ns) of each chunk whose bytes may still be held
        self.counts: dict[str, int] = {}  # counts of the redactors replaced at a close

    def held_since(self) -> int | None:
        """The t_ns of the oldest held byte's chunk, or None when nothing is held."""
        held = self.redactor.held if self.redactor is not None else 0
        if not held:
            self.marks.clear()
            return None
        first = self.fed - held
        while len(self.marks) > 1 and self.marks[1][0] <= first:
            self.marks.popleft()
        return self.marks[0][1] if self.marks else None


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _block(kind: int, payload: bytes, count: int, first_t_ns: int) -> bytes:
    head = BLOCK_HEADER.pack(BLOCK_SYNC, kind, 0, 0, len(payload), count, first_t_ns, 0)[:-4]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


# ------------------------------------------------------------------------------------------------ writer

class Writer:
    """Writes a recording. Not thread-safe: one thread (the bridge's recorder) owns it."""

    def __init__(self, fh: BinaryIO, path: str, devices: list[DeviceInfo], header: dict, redact: bool):
        self._fh = fh
        self.path = path
        self.devices = list(devices)
        self._dev_index = {d.name: i for i, d in enumerate(self.devices)}
        self.header = header
        self.redact = redact
        self._offset = 0
        self._buf: list[bytes] = []
        self._buf_len = 0
        self._buf_count = 0
        self._buf_first = 0
        self._index: list[list[int]] = []     # [offset, first t_ns, records] per record block
        self._records = 0
        self._last_t_ns = 0
        self._closed = False
        # per (device, direction)
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._counts_written: dict = {}

    @classmethod
    def create(cls, path: str | os.PathLike, *, devices: list[DeviceInfo], site: str = "", till: str = "",
               redact: bool = True, created_ns: int | None = None) -> Writer:
        names = [d.name for d in devices]
        if len(set(names)) != len(names):
            raise ValueError(f"device names must be unique in a recording: {names}")
        if redact:  # a device whose options its redactor cannot use fails here, not at its first chunk
            for d in devices:
                try:
                    redactor_for(d.protocol, "to_device", d.options)
                except ValueError as exc:
                    raise ValueError(f"device {d.name!r}: {exc}") from None
        created = time.time_ns() if created_ns is None else int(created_ns)
        protocols = sorted({d.protocol for d in devices})
        whole = [d.name for d in devices if masks_whole(d.protocol, d.options)] if redact else []
        header = {
            "format": "tws", "version": VERSION, "minor": MINOR,
            "created_ns": created,
            # clock anchor: the wall clock and the monotonic clock read together, so a reader can tell wall-clock
            # steps (NTP) from real gaps; chunk t_ns are wall clock (time.time_ns()), like the live bridge's.
            # The clock anchor: the wall clock against the monotonic one when recording live; a recording written
            # with a given created_ns (a generated session) has no live clock, and is byte-for-byte reproducible.
            "clock": ({"wall_ns": time.time_ns(), "monotonic_ns": time.monotonic_ns(), "source": "time.time_ns"}
                      if created_ns is None else {"wall_ns": created, "monotonic_ns": 0, "source": "created_ns"}),
            "site": site, "till": till,
            "redaction": {"policy": POLICY if redact else "none", "protocols": protocols if redact else []},
            "devices": [d.to_map() for d in devices],
        }
        if whole:
            # devices whose bytes are all recorded as zero bytes (lengths kept): ISO 8583 without length framing,
            # whose messages cannot be delimited safely in a stream
            header["redaction"]["masked_whole"] = whole
        path = os.fspath(path)
        fh = open(path, "wb")  # noqa: SIM115 - owned by the writer, closed by close()
        w = cls(fh, path, devices, header, redact)
        w._write(PREAMBLE.pack(SIGNATURE, VERSION, MINOR))
        w._write(_block(KIND_HEADER, _pack(header), 1, created))
        w._sync()
        return w

    # ------------------------------------------------------------------ records

    def chunk(self, t_ns: int, device: str, direction: str, data: bytes) -> None:
        self._check_open()
        if device not in self._dev_index:
            raise ValueError(f"chunk for unknown device {device!r}; the recording's devices are: "
                             f"{', '.join(self._dev_index) or '(none)'}")
        if direction not in _DIR_CODE:
            raise ValueError(f"direction must be to_device or from_device, not {direction!r}")
        data = bytes(data)
        if not data:
            return
        stream = self._stream(device, direction)
        # Held bytes leave with the time of the chunk that released them: the same or later than when they came.
        stream.t_ns = max(stream.t_ns, int(t_ns))
        if stream.redactor is None:
            self._emit(stream, device, direction, data, [])
            return
        stream.marks.append((stream.fed, int(t_ns)))
        stream.fed += len(data)
        out, notes = stream.redactor.feed(data)
        self._emit(stream, device, direction, out, notes)
        self._release_stale(int(t_ns))

    def control(self, t_ns: int, device: str, kind: str, **fields) -> None:
        """A control record. ``kind`` ``closed`` (the bridge's device.status state) or ``close`` ends the device's
        streams: what they hold is released (a frame cut there masked whole) before the record, and the next bytes
        start fresh streams. Other kinds leave frames in progress held."""
        self._check_open()
        if device and device not in self._dev_index:
            raise ValueError(f"control record for unknown device {device!r}")
        if device and kind in CLOSING_KINDS:
            self._release_held(end=True, device=device)
        self._add(int(t_ns), [REC_CONTROL, int(t_ns), self._dev_index.get(device, -1), str(kind), fields])
        self._release_stale(int(t_ns))

    def flush(self, now_ns: int | None = None) -> None:
        """End the current block and make what has been released durable (fsync). Frames, tracks and PANs still
        arriving stay held (a flush does not cut them), unless held longer than ``HOLD_BOUND_NS`` by ``now_ns``
        (the bridge's ``time.time_ns()``, optional) or by the latest record's t_ns."""
        self._check_open()
        self._release_stale(self._last_t_ns if now_ns is None else max(int(now_ns), self._last_t_ns))
        self._flush(end=None)

    @property
    def held(self) -> int:
        """Bytes held by the redactors now (not yet in the file)."""
        return sum(s.redactor.held for s in self._streams.values() if s.redactor is not None)

    def _flush(self, end: bool | None) -> None:
        self._check_open()
        if end is not None:
            self._release_held(end)
        counts = self.redactions
        if counts != self._counts_written:
            self._add(self._last_t_ns, [REC_CONTROL, self._last_t_ns, -1, "redactions", {"counts": counts}])
            self._counts_written = counts
        self._end_block()
        self._sync()

    def close(self) -> None:
        if self._closed:
            return
        self._flush(end=True)
        trailer = {"index": self._index, "redactions": self.redactions, "records": self._records,
                   "last_t_ns": self._last_t_ns}
        at = self._offset
        self._write(_block(KIND_TRAILER, _pack(trailer), 0, self._last_t_ns))
        off = struct.pack("<Q", at)
        self._write(FOOTER.pack(at, zlib.crc32(off), FOOTER_MAGIC))
        self._sync()
        self._fh.close()
        self._closed = True

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def redactions(self) -> dict:
        """``{device: {kind: ranges masked}}`` so far, both directions together."""
        out: dict = {}
        for (device, _), stream in self._streams.items():
            if stream.redactor is None:
                continue
            for counts in (stream.counts, stream.redactor.counts):
                for kind, n in counts.items():
                    if n:
                        d = out.setdefault(device, {})
                        d[kind] = d.get(kind, 0) + n
        return out

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("recording is closed")

    def _new_redactor(self, device: str, direction: str) -> StreamRedactor | None:
        if not self.redact:
            return None
        info = self.devices[self._dev_index[device]]
        return redactor_for(info.protocol, direction, info.options)

    def _stream(self, device: str, direction: str) -> _Stream:
        key = (device, direction)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(self._new_redactor(device, direction))
        return stream

    def _release_held(self, end: bool, device: str | None = None) -> None:
        """Release what the streams (of ``device``, or all) hold. ``end``: the streams end here; the next bytes of
        the device start with fresh redactors (their counts carried on)."""
        for (dev, direction), stream in self._streams.items():
            if device is not None and dev != device or stream.redactor is None:
                continue
            red = stream.redactor
            if red.held:
                out, notes = red.flush(end=end)
                self._emit(stream, dev, direction, out, notes)
            stream.marks.clear()
            if end:
                for kind, n in red.counts.items():
                    stream.counts[kind] = stream.counts.get(kind, 0) + n
                stream.redactor = self._new_redactor(dev, direction)
                stream.base = stream.fed

    def _release_stale(self, now_ns: int) -> None:
        """Cut what a stream has held longer than ``HOLD_BOUND_NS`` by ``now_ns`` (masked whole, as at a cut)."""
        for (dev, direction), stream in self._streams.items():
            since = stream.held_since()
            if since is not None and now_ns - since > HOLD_BOUND_NS:
                stream.t_ns = max(stream.t_ns, now_ns)
                out, notes = stream.redactor.flush(end=False)
                notes = [dict(n, reason=n.get("reason", "") + f" (held over {HOLD_BOUND_NS // 1_000_000_000} s)")
                         for n in notes]
                self._emit(stream, dev, direction, out, notes)
                stream.marks.clear()

    def _emit(self, stream: _Stream, device: str, direction: str, data: bytes, notes: list) -> None:
        t_ns = stream.t_ns
        idx, code = self._dev_index[device], _DIR_CODE[direction]
        for i in range(0, len(data), MAX_CHUNK_RECORD):
            self._add(t_ns, [REC_CHUNK, t_ns, idx, code, data[i:i + MAX_CHUNK_RECORD]])
        for note in notes:
            if stream.base and "offset" in note:
                note = dict(note, offset=note["offset"] + stream.base)
            self._add(t_ns, [REC_CONTROL, t_ns, idx, "redaction", dict(note, direction=direction)])

    def _add(self, t_ns: int, record: list) -> None:
        packed = _pack(record)
        if self._buf_count == 0:
            self._buf_first = t_ns
        self._buf.append(packed)
        self._buf_len += len(packed)
        self._buf_count += 1
        self._records += 1
        self._last_t_ns = max(self._last_t_ns, t_ns)
        if self._buf_len >= BLOCK_TARGET:
            self._end_block()

    def _end_block(self) -> None:
        if not self._buf_count:
            return
        self._index.append([self._offset, self._buf_first, self._buf_count])
        self._write(_block(KIND_RECORDS, b"".join(self._buf), self._buf_count, self._buf_first))
        self._buf, self._buf_len, self._buf_count = [], 0, 0

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        self._offset += len(data)

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())


# ------------------------------------------------------------------------------------------------ reader

class Reader:
    """Reads a recording. ``header``, ``devices``, ``redactions`` and ``truncated`` are known after construction
    (a file without its trailer is scanned once to learn them); ``records()`` iterates the records.

    A file that is not a recording, or of another major version, raises ``TwsError`` (one line). A file cut short or
    damaged never raises: it reads up to the last whole block before the damage and sets ``truncated``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.header: dict = {}
        self.devices: list[DeviceInfo] = []
        self.truncated = False
        self.redactions: dict = {}
        self.index: list[list[int]] = []
        self.version = VERSION
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except IsADirectoryError:
            raise TwsError(f"{self.path} is a directory, not a .tws recording") from None
        self._size = os.fstat(self._fh.fileno()).st_size
        try:
            self._open()
        except BaseException:
            self._fh.close()
            raise

    def _open(self) -> None:
        pre = self._fh.read(PREAMBLE.size)
        if pre != SIGNATURE[:len(pre)] and pre[:len(SIGNATURE)] != SIGNATURE:
            raise TwsError(f"{self.path} is not a .tws recording (no TWS signature)")
        if len(pre) < PREAMBLE.size:
            self.truncated = True
            self._records_at = None
            return
        _, version, _minor = PREAMBLE.unpack(pre)
        if version != VERSION:
            raise TwsError(f"{self.path} is a .tws recording of format version {version}; this tillwire reads "
                           f"version {VERSION} only (upgrade tillwire)")
        block = self._read_block(PREAMBLE.size)
        if block is None or block[0] != KIND_HEADER:
            self.truncated = True
            self._records_at = None
            return
        try:
            header = msgpack.unpackb(block[1], raw=False, strict_map_key=False)
        except Exception:  # noqa: BLE001 - a CRC-valid but undecodable header: a writer bug or another format
            raise TwsError(f"{self.path}: the header block does not decode") from None
        self.header = {k: v for k, v in header.items() if k != "devices"}
        self.devices = [DeviceInfo.from_map(m) for m in header.get("devices", [])]
        self._records_at = block[3]
        trailer = self._read_trailer()
        if trailer is not None:
            self.index = trailer.get("index", [])
            self.redactions = trailer.get("redactions", {})
            self._end = trailer["_at"]
        else:
            self.truncated = True
            self._end = self._size
            for rec in self.records():  # learn the redaction counts and where the damage is
                if type(rec) is ControlRecord and rec.kind == "redactions" and not rec.device:
                    self.redactions = rec.fields.get("counts", {})

    def _read_trailer(self) -> dict | None:
        if self._size < FOOTER.size:
            return None
        self._fh.seek(self._size - FOOTER.size)
        at, crc, magic = FOOTER.unpack(self._fh.read(FOOTER.size))
        if magic != FOOTER_MAGIC or zlib.crc32(struct.pack("<Q", at)) != crc or at >= self._size:
            return None
        block = self._read_block(at)
        if block is None or block[0] != KIND_TRAILER or block[3] != self._size - FOOTER.size:
            return None
        try:
            trailer = msgpack.unpackb(block[1], raw=False, strict_map_key=False)
        except Exception:  # noqa: BLE001
            return None
        trailer["_at"] = at
        return trailer

    def _read_block(self, offset: int) -> tuple[int, bytes, int, int] | None:
        """(kind, payload, count, next offset), or None when the block is incomplete, oversized or damaged."""
        self._fh.seek(offset)
        head = self._fh.read(BLOCK_HEADER.size)
        if len(head) < BLOCK_HEADER.size:
            return None
        sync, kind, _flags, _res, length, count, _first, crc = BLOCK_HEADER.unpack(head)
        if sync != BLOCK_SYNC or length > MAX_BLOCK_PAYLOAD:
            return None
        payload = self._fh.read(length)
        if len(payload) < length or zlib.crc32(payload, zlib.crc32(head[:-4])) != crc:
            return None
        return kind, payload, count, offset + BLOCK_HEADER.size + length

    def records(self, start_ns: int | None = None) -> Iterator[ChunkRecord | ControlRecord]:
        """Every record in file order; with ``start_ns``, from the block the index says holds that time (records
        before it in that block are skipped)."""
        if self._records_at is None:
            return
        offset = self._records_at
        if start_ns is not None:
            for off, first, _n in self.index:
                if first <= start_ns:
                    offset = off
        names = [d.name for d in self.devices]
        end = getattr(self, "_end", self._size)
        while offset < end:
            block = self._read_block(offset)
            if block is None:
                self.truncated = True
                return
            kind, payload, _count, offset = block
            if kind != KIND_RECORDS:
                continue  # a block kind this version does not know: skipped (docs: versioning)
            try:
                unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
                unpacker.feed(payload)
                items = list(unpacker)
            except Exception:  # noqa: BLE001 - CRC-valid but not msgpack: stop as at a damaged block
                self.truncated = True
                return
            for item in items:
                rec = _record(item, names)
                if rec is None:
                    continue
                if start_ns is not None and rec.t_ns < start_ns:
                    continue
                yield rec

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()


def _record(item: Any, names: list[str]) -> ChunkRecord | ControlRecord | None:
    if not isinstance(item, list) or len(item) < 5:
        return None
    tag, t_ns, idx, a, b = item[:5]
    device = names[idx] if isinstance(idx, int) and 0 <= idx < len(names) else ""
    if tag == REC_CHUNK and isinstance(b, bytes) and a in (0, 1):
        return ChunkRecord(t_ns, device, _DIRECTIONS[a], b)
    if tag == REC_CONTROL and isinstance(a, str):
        return ControlRecord(t_ns, device, a, b if isinstance(b, dict) else {})
    return None  # a record type this version does not know: skipped


def read(path: str | os.PathLike) -> Reader:
    return Reader(path)


__all__ = ["ChunkRecord", "ControlRecord", "DeviceInfo", "Reader", "TwsError", "Writer", "read",
           "MAX_BLOCK_PAYLOAD", "BLOCK_TARGET", "VERSION"]

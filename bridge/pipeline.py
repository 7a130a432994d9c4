"""Chunks and device status in, event bodies for the outbox out: one decoder per device and direction.

No threads and no I/O here (the service runs it in its capture thread), so it is tested directly. Each chunk's
events get ``ts`` = the chunk's ``t_ns`` (the chunk that completed them) and ``src`` = prefix + device. A status
request the till sends (``printer.status_request``) is passed to the same device's reply decoder, so a reply is
read against the request it answers, as ``tillwire decode --requests`` does for files.

When a device or a till connection closes (``device.status`` closed), the device's streams end: the decoders are
closed (flushing what they hold) and fresh ones take the next bytes.

A decoder that raises (a bug: bad *input* never raises) is replaced by a fresh one, and the failure becomes a
``protocol.error`` with code ``decoder_failed`` on that stream, so the loss is visible and the rest goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bridge.capture import CLOSED, DIRECTIONS, TO_DEVICE, Chunk, Status
from protocols import Decoder
from protocols.events import iter_bodies

Body = tuple[str, str, dict, int]  # (src, type, data, ts): what Outbox.append takes


@dataclass
class DeviceCounters:
    chunks: int = 0
    bytes: int = 0
    events: int = 0
    errors: int = 0  # protocol.error events
    by_type: dict[str, int] = field(default_factory=dict)


class Pipeline:
    def __init__(self, devices: Iterable, src: Callable[[str], str], backend: str | None = None):
        self._src = src
        self._backend = backend
        self._specs = {d.name: d for d in devices}
        self._decoders: dict[tuple[str, str], Decoder] = {}
        self._takes_requests: dict[str, bool] = {}
        self.counters: dict[str, DeviceCounters] = {}
        for name in self._specs:
            for direction in DIRECTIONS:
                self._decoders[(name, direction)] = self._new_decoder(name, direction)
            self.counters[name] = DeviceCounters()

    def _new_decoder(self, name: str, direction: str) -> Decoder:
        spec = self._specs[name]
        return Decoder(spec.protocol, direction=direction, backend=self._backend, **spec.options)

    # ---------------------------------------------------------------- the hot path

    def process(self, items: Iterable[Chunk | Status]) -> list[Body]:
        out: list[Body] = []
        for item in items:
            if type(item) is Chunk:
                self._chunk(item, out)
            else:
                if item.state == CLOSED and item.device in self._specs:
                    self._restart(item.device, item.t_ns, out)
                data = {"state": item.state}
                data.update(item.detail)
                out.append((self._src(item.device), "device.status", data, item.t_ns))
        return out

    def _restart(self, device: str, t_ns: int, out: list[Body]) -> None:
        """A device or a till connection went away: its streams end here. What the decoders hold is flushed (a
        frame cut off becomes ``protocol.error truncated``) and the next bytes start a fresh stream, so half a
        receipt from a dropped connection never runs into the next one."""
        for direction in DIRECTIONS:
            key = (device, direction)
            try:
                blob = self._decoders[key].close()
            except Exception as exc:  # noqa: BLE001 - as in _chunk: a decoder bug must not stop capture
                out.append(self._failed(Chunk(t_ns, device, direction, b""), exc))
                blob = b""
            if blob:
                self._bodies(device, direction, blob, t_ns, out)
            self._decoders[key] = self._new_decoder(device, direction)
        self._takes_requests.pop(device, None)

    def _chunk(self, chunk: Chunk, out: list[Body]) -> None:
        key = (chunk.device, chunk.direction)
        dec = self._decoders.get(key)
        if dec is None:
            raise KeyError(f"chunk for unknown device/direction {key}")  # a transport bug, not bad input
        counters = self.counters[chunk.device]
        counters.chunks += 1
        counters.bytes += len(chunk.data)
        try:
            blob = dec.feed(chunk.data)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop capture
            self._decoders[key] = self._new_decoder(*key)
            out.append(self._failed(chunk, exc))
            counters.errors += 1
            return
        if blob:
            self._bodies(chunk.device, chunk.direction, blob, chunk.t_ns, out)

    def _bodies(self, device: str, direction: str, blob: bytes, ts: int, out: list[Body]) -> None:
        src = self._src(device)
        counters = self.counters[device]
        by_type = counters.by_type
        for body in iter_bodies(blob):
            kind = body["type"]
            out.append((src, kind, body["data"], ts))
            by_type[kind] = by_type.get(kind, 0) + 1
            counters.events += 1
            if kind == "protocol.error":
                counters.errors += 1
            elif direction == TO_DEVICE and kind.endswith(".status_request"):
                self._note_request(device, body["data"])

    def _note_request(self, device: str, data: dict) -> None:
        if self._takes_requests.get(device) is False:
            return
        try:
            self._decoders[(device, "from_device")].note_request(data["kind"], data["n"])
            self._takes_requests[device] = True
        except (TypeError, KeyError):
            self._takes_requests[device] = False

    def _failed(self, chunk: Chunk, exc: Exception) -> Body:
        data = {"code": "decoder_failed", "reason": f"the {self._specs[chunk.device].protocol} decoder failed "
                f"({type(exc).__name__}) and was restarted; this chunk was not decoded",
                "offset": 0, "raw": b""}
        return (self._src(chunk.device), "protocol.error", data, chunk.t_ns)

    # ---------------------------------------------------------------- time and the end

    def tick(self, now_ns: int) -> list[Body]:
        out: list[Body] = []
        for (device, direction), dec in self._decoders.items():
            blob = dec.tick(now_ns)
            if blob:
                self._bodies(device, direction, blob, now_ns, out)
        return out

    def close(self, now_ns: int, last_ns: dict[tuple[str, str], int] | None = None) -> list[Body]:
        """End of every stream: flush what the decoders hold (a truncated frame becomes protocol.error). The flushed
        events get ``ts`` = ``now_ns``, or with ``last_ns`` the time of their stream's last chunk (a recording)."""
        out: list[Body] = []
        for key, dec in self._decoders.items():
            blob = dec.close()
            if blob:
                self._bodies(*key, blob, (last_ns or {}).get(key, now_ns), out)
        self._decoders.clear()
        return out

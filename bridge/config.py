"""The bridge's configuration: one TOML file, checked completely before anything starts.

Every mistake is a ``ConfigError`` whose message is one line naming the file, the key and what is expected
(``docs/bridge/config.md``). Unknown keys are errors too: a typo must not silently fall back to a default.
Relative paths are relative to the directory of the config file, so a config works from any working directory.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.feed.config import FeedConfigError, FeedSettings, feed_settings

MAX_MB = 1 << 30  # a petabyte: bounds every size so no later arithmetic overflows
DEVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MiB = 1024 * 1024


class ConfigError(ValueError):
    """A configuration mistake; ``str()`` is one line for the user."""


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    protocol: str
    transport: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BridgeConfig:
    path: Path  # the config file
    source_prefix: str
    site: str
    till: str
    outbox: Path
    outbox_max_bytes: int | None
    retention_s: float
    min_free_bytes: int
    alert_percent: int
    pending_max_bytes: int
    stop_after_replay: bool
    devices: tuple[DeviceConfig, ...]
    feed: FeedSettings
    record: Path | None
    sinks: tuple = ()            # bridge.sinks.settings.SinkSettings, in config order
    delivery: Any = None         # bridge.sinks.classes.DeliveryClasses ([delivery] over the defaults)
    sink_drain_s: float = 5.0    # at stop: how long sinks may go on delivering what is pending
    sink_alert_s: float = 60.0   # a sink failing this long without delivering raises a sink_down alert

    def src(self, device: str) -> str:
        return self.source_prefix + device

    @property
    def bridge_src(self) -> str:
        """The source of the bridge's own events (alerts)."""
        return self.source_prefix + "bridge"


# ---------------------------------------------------------------- reading typed keys

class _Table:
    """One TOML table, read key by key; ``done()`` rejects the keys nobody read."""

    def __init__(self, file: Path, where: str, data: Any):
        self.file, self.where = file, where
        if not isinstance(data, dict):
            self.fail(f"must be a table, not {_kind(data)}")
        self.data = data
        self.read: set[str] = set()

    def fail(self, message: str, key: str | None = None):
        name = f"{self.where}.{key}" if self.where and key else (key or self.where or "top level")
        raise ConfigError(f"{self.file}: {name}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        self.read.add(key)
        if key not in self.data:
            if required:
                self.fail("is required", key)
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(f"must be {_names(kinds)}, not a boolean", key)
        if not isinstance(value, kinds):
            self.fail(f"must be {_names(kinds)}, not {_kind(value)}", key)
        return value

    def number(self, key: str, default: float | None, minimum: float, maximum: float | None = None) -> float | None:
        value = self.get(key, (int, float), default)
        if value is None:
            return None
        if not math.isfinite(value):
            self.fail(f"must be a finite number, not {value}", key)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.fail(f"must be {bound}, not {value}", key)
        return value

    def table(self, key: str) -> "_Table":
        self.read.add(key)
        where = f"{self.where}.{key}" if self.where else key
        return _Table(self.file, where, self.data.get(key, {}))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            known = ", ".join(sorted(self.read))
            self.fail(f"unknown key {unknown[0]!r} (known keys here: {known})")


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(_kind(k()) if k is not Path else "a path" for k in kinds)


# ---------------------------------------------------------------- the file

def load(path: str | os.PathLike, *, check_devices: bool = True, check_sinks: bool = True) -> BridgeConfig:
    """Read and check a config file. ``check_devices`` also builds each decoder and transport once (no I/O);
    ``check_sinks`` reads each sink's own keys, credentials and TLS files (without it: names and kinds only)."""
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file (see examples/demo.toml for one that works)") from None
    except IsADirectoryError:
        raise ConfigError(f"{file}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    base = file.resolve().parent
    top = _Table(file, "", doc)

    b = top.table("bridge")
    prefix = b.get("source_prefix", str, required=True)
    if not re.match(r"^[a-z][a-z0-9+.-]*://", prefix):
        b.fail(f"must be a URI prefix such as 'pos://store-1/till-3/', not {prefix!r}", "source_prefix")
    if not prefix.endswith("/"):
        prefix += "/"
    parts = [p for p in prefix.split("://", 1)[1].split("/") if p]
    site = b.get("site", str, parts[0] if parts else "")
    till = b.get("till", str, parts[1] if len(parts) > 1 else "")
    outbox = Path(os.path.normpath(base / b.get("outbox", str, "tillwire-outbox.sqlite")))
    max_mb = b.number("outbox_max_mb", None, 1, MAX_MB)
    retention_h = b.number("retention_hours", 168, 0, 24 * 365 * 10)  # ten years: "keep" without overflowing
    min_free_mb = b.number("min_free_mb", 64, 0, MAX_MB)
    alert_percent = int(b.number("alert_percent", 80, 1, 99))
    pending_mb = b.number("pending_max_mb", 32, 1, 64 * 1024)
    stop_after_replay = b.get("stop_after_replay", bool, False)
    sink_drain_s = b.number("sink_drain_s", 5, 0, 3600)
    sink_alert_s = b.number("sink_alert_s", 60, 0, 86_400)
    b.done()

    top.read.add("feed")
    try:
        feed = feed_settings(top.data.get("feed"), os.environ)
    except FeedConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None

    r = top.table("record")
    rec = r.get("path", str, None)
    r.done()

    devices_raw = top.get("devices", list, [])
    devices = []
    names: set[str] = set()
    for i, raw in enumerate(devices_raw):
        d = _Table(file, f"devices[{i}]", raw)
        name = d.get("name", str, required=True)
        if not DEVICE_NAME.match(name):
            d.fail(f"must be lowercase letters, digits, '.', '_' or '-' (up to 64), not {name!r}", "name")
        if name in names:
            d.fail(f"device name {name!r} is used twice", "name")
        if name == "bridge":
            d.fail("'bridge' is the name of the bridge's own source; choose another", "name")
        names.add(name)
        protocol = d.get("protocol", str, required=True)
        transport = d.get("transport", str, required=True)
        options = d.get("options", dict, {})
        d.done()
        if transport.startswith("replay://") and "://" in transport:
            transport = _rebase_replay(transport, base)
        dev = DeviceConfig(name, protocol, transport, dict(options))
        if check_devices:
            _check_device(d, dev)
        devices.append(dev)
    if not devices:
        top.fail("no [[devices]] configured; add at least one (see examples/demo.toml)")

    from bridge.sinks.settings import parse_delivery, parse_sink

    dt = top.table("delivery")
    delivery = parse_delivery(dt)
    dt.done()
    sinks = []
    for i, raw in enumerate(top.get("sinks", list, [])):
        st = _Table(file, f"sinks[{i}]", raw)
        sink = parse_sink(st, base, os.environ, options=check_sinks)
        st.done()
        if any(s.name == sink.name for s in sinks):
            st.fail(f"sink name {sink.name!r} is used twice", "name")
        sinks.append(sink)
    top.done()

    return BridgeConfig(
        path=file, source_prefix=prefix, site=site, till=till, outbox=outbox,
        outbox_max_bytes=int(max_mb * MiB) if max_mb is not None else None,
        retention_s=float(retention_h) * 3600.0, min_free_bytes=int(min_free_mb * MiB),
        alert_percent=alert_percent, pending_max_bytes=int(pending_mb * MiB),
        stop_after_replay=stop_after_replay, devices=tuple(devices), feed=feed,
        record=Path(os.path.normpath(base / rec)) if rec else None,
        sinks=tuple(sinks), delivery=delivery, sink_drain_s=float(sink_drain_s),
        sink_alert_s=float(sink_alert_s),
    )


def _rebase_replay(url: str, base: Path) -> str:
    """``replay://sessions/x.tws``: a relative recording path is relative to the config file."""
    rest = url[len("replay://"):]
    path, sep, query = rest.partition("?")
    if path and not os.path.isabs(path):
        path = os.path.normpath(base / path)
    return f"replay://{path}{sep}{query}"


def _check_device(table: _Table, dev: DeviceConfig) -> None:
    """Build the decoders (both directions) and the transport once: bad options fail now, not at 8 am."""
    from protocols import Decoder, available_protocols
    from bridge.transports import TransportConfigError, open_transport

    if dev.protocol not in available_protocols():
        table.fail(f"unknown protocol {dev.protocol!r}; known protocols: {', '.join(available_protocols())}",
                   "protocol")
    for direction in ("to_device", "from_device"):
        try:
            Decoder(dev.protocol, direction=direction, **dev.options).close()
        except (ValueError, TypeError) as exc:
            table.fail(str(exc).splitlines()[0], "options")
    try:
        open_transport(dev.name, dev.transport)
    except (TransportConfigError, ValueError) as exc:  # ValueError: urlsplit's "Invalid IPv6 URL" and the like
        table.fail(str(exc).splitlines()[0], "transport")
    except ImportError as exc:
        table.fail(f"needs a module that is not installed ({exc.name}); run `make run` or "
                   f"`pip install -e .` to install tillwire's dependencies", "transport")

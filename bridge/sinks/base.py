"""What every sink is: the contract between the delivery runner and one kind of destination.

A sink is driven by one ``SinkRunner`` thread (``bridge/sinks/runner.py``), which owns the sink's cursor in the
outbox, its retry state and its statistics. The sink itself only knows how to reach its destination:

- ``connect(timeout_s)`` opens whatever connection it needs, or raises ``SinkUnavailable``;
- ``send(batch)`` hands a batch of events over, **in order**, and returns an ``Outcome`` saying how many of
  them, from the first, the destination acknowledged (and which of those it refused for good, which the runner
  parks as dead letters); on a failure that a retry may cure it returns the count that did get through and a
  ``Retry``, or raises ``SinkUnavailable`` (the runner then closes and reconnects);
- ``close()`` releases everything; ``interrupt()`` may be called from another thread to cut a blocking wait
  short when the bridge stops.

Rules every sink keeps (``docs/bridge/sinks.md``):

1. **Acknowledged means acknowledged by the destination**: a JetStream PubAck, an MQTT PUBACK, a 2xx response,
   an fsync. Never "written to a socket".
2. **In order**: ``done`` counts a prefix. If event *k* fails, no event after *k* counts as done, even if the
   destination took it (it will be sent again; consumers de-duplicate on ``(src, seq)``).
3. **No secrets in messages**: error texts reach logs, ``tillwire outbox`` and metrics. A sink never puts a
   password, token, key or the content of a credentials file into an exception or a reason. The runner also
   masks every configured secret value in any text it shows, as a second line of defence.
4. **Bounded waits**: every network wait has a timeout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

REALTIME = "realtime"
BATCH = "batch"
CLASSES = (REALTIME, BATCH)


class SinkError(Exception):
    """Base class of sink errors; ``str()`` is one line and never holds a credential."""


class SinkConfigError(SinkError):
    """A sink's settings are wrong (raised while the config is checked, before anything starts)."""


class SinkUnavailable(SinkError):
    """The destination cannot be reached or refused the connection; the runner backs off and reconnects."""


@dataclass(frozen=True)
class Outgoing:
    """One event on its way to a sink: the stored envelope plus what the runner read out of it."""

    rowid: int       # the outbox row (0 for a re-driven dead letter, which has no row any more)
    src: str
    seq: int
    type: str
    ts: int          # the event's time, ns since the epoch
    envelope: bytes  # the packed msgpack envelope as stored (docs/EVENTS.md), ready to send as it is
    cls: str         # REALTIME or BATCH (bridge/sinks/classes.py)

    @property
    def key(self) -> str:
        """The idempotency key: ``<src>:<seq>`` (``Nats-Msg-Id``, ``Idempotency-Key``)."""
        return f"{self.src}:{self.seq}"

    def event(self) -> dict:
        """The envelope as a dict (``src``, ``seq``, ``ts``, ``type``, ``data``)."""
        return msgpack.unpackb(self.envelope, raw=False, strict_map_key=False)


@dataclass(frozen=True)
class Parked:
    """An event the destination refused for good (a webhook's 4xx other than 408/409/429)."""

    index: int              # position in the batch (< Outcome.done)
    status: int | None      # the HTTP status, when there is one
    reason: str             # one line, e.g. "HTTP 422 Unprocessable Entity"
    response: bytes = b""   # the start of the response body (the runner stores at most 4 KiB)


@dataclass(frozen=True)
class Retry:
    """Why the rest of a batch did not get through, and when to try again."""

    reason: str                   # one line, for stats and logs: "HTTP 503", "publish timed out", ...
    after_s: float | None = None  # the destination said when (Retry-After); None: the runner's backoff decides
    reconnect: bool = False       # close and connect again before the next attempt


@dataclass(frozen=True)
class Outcome:
    """The result of ``send``: ``batch[:done]`` is delivered or parked; the rest needs ``retry``."""

    done: int
    duplicates: int = 0                    # of the done events, how many the destination said it already had
    parked: tuple[Parked, ...] = ()
    retry: Retry | None = None

    def __post_init__(self):
        if self.retry is None and self.done < 0:
            raise ValueError("done must not be negative")
        for p in self.parked:
            if not 0 <= p.index < self.done:
                raise ValueError("a parked event must be among the done ones")


@dataclass(frozen=True)
class SinkContext:
    """What a sink may want to know about the bridge it serves."""

    site: str                   # [bridge] site, e.g. "store-1"
    till: str                   # [bridge] till, e.g. "till-3"
    source_prefix: str          # e.g. "pos://store-1/till-3/"
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values to mask in any text shown


class Sink(ABC):
    """One destination, built by the bridge as ``sink_class(kind)(name, options, context)`` where ``options`` is
    what ``parse_options`` returned; used by one runner thread only."""

    kind: ClassVar[str]
    default_max_batch: ClassVar[int] = 256  # events per send unless the config says max_batch

    def __init__(self, name: str, settings: Any, context: SinkContext):
        self.name = name
        self.settings = settings
        self.context = context

    @classmethod
    @abstractmethod
    def parse_options(cls, t: Any, base: Any, env: Any) -> Any:
        """Read this kind's own keys from its ``[[sinks]]`` table (``bridge.sinks.settings.Table``) and return a
        frozen dataclass (``Sink.settings``). ``base`` is the config file's directory (a ``Path``) for relative
        paths, ``env`` the environment (a mapping). Fail with ``t.fail(message, key)``; check files, URLs and TLS
        here, so a mistake stops the bridge before it starts. Secrets come from ``settings.read_secret``."""

    @abstractmethod
    def describe(self) -> str:
        """Where events go, for logs and ``tillwire outbox``: e.g. ``nats://10.0.0.2:4222 stream TILLWIRE``.
        Never a credential."""

    @abstractmethod
    def connect(self, timeout_s: float) -> None:
        """Open the connection(s); raise ``SinkUnavailable`` with a one-line reason when that fails."""

    @abstractmethod
    def send(self, batch: list[Outgoing]) -> Outcome:
        """Deliver ``batch`` in order; see the module docstring. ``batch`` is never empty."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s); never raises."""

    def interrupt(self) -> None:
        """Called from another thread when the bridge stops: cut a blocking wait short. Optional."""

"""The transport contract: one object per configured device, run in its own thread by the bridge.

``Transport.run(sink, stop)`` opens the device, reads (and, for a tap, forwards) until the device goes away,
reports ``device.status`` on every change, and reopens with exponential backoff until ``stop`` is set. A device
error never raises out of ``run``; a *configuration* error (a bad URL) raises ``TransportConfigError`` from the
constructor, before anything starts, with one line naming the device and what to fix.

Subclasses implement ``open()`` (raise ``OSError`` when the device is not there; any other exception is a bug,
reported as ``internal error …`` in ``device.status`` and retried like a missing device), ``pump(sink, stop)`` (read
until the device is gone or ``stop`` is set; return ``None``, or a reason string), ``release()`` (close what
``open`` opened; idempotent) and, when ``pump`` can block, ``interrupt()`` (make a blocked ``pump`` return soon;
called from another thread after ``stop`` is set). A transport whose source ends for good (a replay at the end
of its file) sets ``self.finished = True`` and ``run`` returns instead of reopening.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from bridge.backoff import Backoff
from bridge.capture import CLOSED, OPEN, CaptureSink


class TransportConfigError(ValueError):
    """A transport URL or option that cannot work; the message is one line for the user."""


def split_query(url: str) -> tuple[object, dict[str, str]]:
    """``urlsplit`` plus the query as a dict; a key given twice is a config error."""
    parts = urlsplit(url)
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in query:
            raise TransportConfigError(f"{url}: query parameter {key!r} is given twice")
        query[key] = value
    return parts, query


def redact_url(url: str) -> str:
    """The URL without user:password (what may appear in events and logs)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class Transport(ABC):
    scheme: ClassVar[str] = ""

    def __init__(self, device: str, url: str):
        self.device = device
        self.url = url
        self.finished = False
        self.backoff = Backoff()

    def describe(self) -> str:
        return redact_url(self.url)

    # ---------------------------------------------------------------- subclass hooks

    @abstractmethod
    def open(self) -> None:
        """Open the device; raise ``OSError`` when it is not there."""

    @abstractmethod
    def pump(self, sink: CaptureSink, stop: threading.Event) -> str | None:
        """Read (and forward) until the device is gone or ``stop`` is set; return a reason, or None."""

    def release(self) -> None:
        pass

    def interrupt(self) -> None:
        pass

    # ---------------------------------------------------------------- the loop

    def run(self, sink: CaptureSink, stop: threading.Event) -> None:
        last_reason: str | None = None
        while not stop.is_set():
            try:
                self.open()
            except Exception as exc:  # noqa: BLE001 - OSError is the device; anything else a bug: retry, say so
                reason = _reason(exc)
                delay = self.backoff.next()
                if reason != last_reason:  # one status per change, not one per retry
                    sink.status(time.time_ns(), self.device, CLOSED, transport=self.describe(), reason=reason,
                                retry_s=round(delay, 3))
                    last_reason = reason
                self.release()
                stop.wait(delay)
                continue
            self.backoff.reset()
            sink.status(time.time_ns(), self.device, OPEN, transport=self.describe())
            reason = "stopped"
            try:
                reason = self.pump(sink, stop) or ("stopped" if stop.is_set() else "device closed the connection")
            except Exception as exc:  # noqa: BLE001 - as above: the transport reopens, never dies silently
                reason = _reason(exc)
            finally:
                self.release()
            if stop.is_set() or self.finished:
                sink.status(time.time_ns(), self.device, CLOSED, transport=self.describe(), reason=reason)
                return
            delay = self.backoff.next()
            sink.status(time.time_ns(), self.device, CLOSED, transport=self.describe(), reason=reason,
                        retry_s=round(delay, 3))
            last_reason = reason
            stop.wait(delay)

    def stop(self) -> None:
        """Make a running ``run`` return soon (the caller has set its ``stop`` event)."""
        self.interrupt()


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
    else:  # not the device's doing: name the error so it can be reported
        text = f"internal error {type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__

"""Delivery of captured events from the outbox to the integration bus (docs/bridge/sinks.md).

One ``SinkRunner`` thread per configured sink reads the outbox after the sink's cursor, sends in order, and
moves the cursor only when the destination acknowledged. The kinds are a table: name → module; each module
defines one ``Sink`` subclass named ``SINK``.
"""

from __future__ import annotations

import importlib

from bridge.sinks.base import (BATCH, REALTIME, Outcome, Outgoing, Parked, Retry, Sink, SinkConfigError,
                               SinkContext, SinkError, SinkUnavailable)

KINDS = {
    "nats": "bridge.sinks.nats",
    "mqtt": "bridge.sinks.mqtt",
    "webhook": "bridge.sinks.webhook",
    "file": "bridge.sinks.file",
}


def sink_class(kind: str) -> type[Sink]:
    return importlib.import_module(KINDS[kind]).SINK


def sink_classes() -> dict[str, type[Sink]]:
    return {kind: sink_class(kind) for kind in KINDS}


__all__ = ["BATCH", "KINDS", "REALTIME", "Outcome", "Outgoing", "Parked", "Retry", "Sink", "SinkConfigError",
           "SinkContext", "SinkError", "SinkUnavailable", "sink_class", "sink_classes"]

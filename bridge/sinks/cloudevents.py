"""How a tillwire event is dressed as a CloudEvent (CloudEvents 1.0) on every bus (docs/bridge/sinks.md §2).

One rule everywhere: **the CloudEvent's data is the whole tillwire envelope** (``src``, ``seq``, ``ts``,
``type``, ``data``), so a consumer can always de-duplicate from the body alone; the attributes repeat what a
router needs without decoding it.

- ``id`` is the event's ``seq`` as a decimal string and ``source`` its ``src``: ``(source, id)`` is unique, as
  CloudEvents requires, and equals the idempotency key ``(src, seq)``.
- ``type`` is the catalogue type as it is (``payment.result``); ``time`` is RFC 3339 in UTC with nanoseconds.
- ``seq`` is an extension attribute (an integer) for consumers that read attributes only.

Binary content mode (NATS headers, MQTT 5 user properties, HTTP ``ce-`` headers): ``attributes()`` gives the
attributes, the body is the msgpack envelope as stored, ``datacontenttype`` ``application/msgpack``.
Structured content mode (MQTT 3.1.1, JSON webhooks, JSON-lines files): ``structured_json()`` gives one JSON
object with the attributes and ``data`` the JSON view of the envelope (bytes as lowercase hex).
CloudEvents defines no msgpack event format; ``structured_msgpack()`` is this project's mapping: the JSON
format's object as a msgpack map, with ``data`` the envelope map itself (bytes stay bytes).
"""

from __future__ import annotations

import json
import time

import msgpack

from protocols.events import to_json_view

from bridge.sinks.base import Outgoing

SPECVERSION = "1.0"
MSGPACK = "application/msgpack"
JSON = "application/json"
CE_JSON = "application/cloudevents+json"
CE_JSON_BATCH = "application/cloudevents-batch+json"
CE_MSGPACK = "application/cloudevents+msgpack"        # project mapping, see above
CE_MSGPACK_BATCH = "application/cloudevents-batch+msgpack"


def rfc3339(ts_ns: int) -> str:
    """``2026-11-23T08:15:02.123456789Z`` from ns since the epoch (UTC, always nine fraction digits)."""
    seconds, nanos = divmod(int(ts_ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def attributes(ev: Outgoing, datacontenttype: str = MSGPACK) -> dict[str, str]:
    """The context attributes as strings, for binary content mode."""
    return {
        "specversion": SPECVERSION,
        "id": str(ev.seq),
        "source": ev.src,
        "type": ev.type,
        "time": rfc3339(ev.ts),
        "datacontenttype": datacontenttype,
        "seq": str(ev.seq),
    }


def headers(ev: Outgoing, prefix: str = "ce-") -> dict[str, str]:
    """Binary-mode headers (``ce-id``, ``ce-source``, ...) plus ``content-type`` for the msgpack body."""
    out = {prefix + k: v for k, v in attributes(ev).items() if k != "datacontenttype"}
    out["content-type"] = MSGPACK
    return out


def _structured(ev: Outgoing, data, datacontenttype: str) -> dict:
    """The attributes (``seq`` as an integer here) plus ``data``: one event in a structured format."""
    out: dict = dict(attributes(ev, datacontenttype))
    out["seq"] = ev.seq
    out["data"] = data
    return out


def structured_json_obj(ev: Outgoing) -> dict:
    return _structured(ev, to_json_view(ev.event()), JSON)


def structured_json(ev: Outgoing) -> bytes:
    """One CloudEvent in the JSON event format (compact, UTF-8, no newline)."""
    return json.dumps(structured_json_obj(ev), ensure_ascii=False, separators=(",", ":")).encode()


def batch_json(batch: list[Outgoing]) -> bytes:
    """A JSON batch (``application/cloudevents-batch+json``): an array of structured events."""
    return json.dumps([structured_json_obj(ev) for ev in batch], ensure_ascii=False,
                      separators=(",", ":")).encode()


def structured_msgpack_obj(ev: Outgoing) -> dict:
    return _structured(ev, ev.event(), MSGPACK)


def structured_msgpack(ev: Outgoing) -> bytes:
    return msgpack.packb(structured_msgpack_obj(ev), use_bin_type=True)


def batch_msgpack(batch: list[Outgoing]) -> bytes:
    return msgpack.packb([structured_msgpack_obj(ev) for ev in batch], use_bin_type=True)

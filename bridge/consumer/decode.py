"""From what a transport delivered back to the tillwire envelope (``src``, ``seq``, ``ts``, ``type``, ``data``).

Every sink sends the whole envelope (bridge/sinks/cloudevents.py): in binary content mode the body *is* the
msgpack envelope and the CloudEvents attributes travel beside it (NATS headers, MQTT 5 user properties, HTTP
``ce-`` headers); in structured mode the CloudEvent's ``data`` is the envelope (its JSON view in JSON, where bytes
are lowercase hex strings; the map itself in the msgpack mapping). The functions here accept both, check that the
attributes beside the body agree with it, and return envelopes as dicts. A body that is neither raises
``NotAnEvent`` (one line, never the body itself: it may be large).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import msgpack

ENVELOPE_KEYS = ("src", "seq", "ts", "type", "data")


class NotAnEvent(ValueError):
    """What arrived is not a tillwire event (or its attributes contradict its body)."""


def key(envelope: Mapping[str, Any]) -> tuple[str, int]:
    """The idempotency key ``(src, seq)``."""
    return envelope["src"], envelope["seq"]


def _check_envelope(obj: Any, where: str) -> dict:
    if not isinstance(obj, dict) or not isinstance(obj.get("src"), str) or not isinstance(obj.get("seq"), int) \
            or isinstance(obj.get("seq"), bool) or obj["seq"] < 1 or not isinstance(obj.get("type"), str):
        raise NotAnEvent(f"{where}: not a tillwire envelope (needs src, seq, ts, type, data)")
    return obj


def _check_attributes(env: dict, attrs: Mapping[str, str], where: str) -> dict:
    """Attributes beside a body must agree with it: ``source`` = src, ``id`` = seq, ``type`` = type."""
    for attr, value in (("source", env["src"]), ("id", str(env["seq"])), ("type", env["type"])):
        got = attrs.get(attr)
        if got is not None and got != value:
            raise NotAnEvent(f"{where}: attribute {attr}={got!r} does not match the envelope's {value!r}")
    return env


def from_msgpack(body: bytes, where: str = "msgpack body") -> dict:
    """A packed envelope (binary content mode)."""
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise NotAnEvent(f"{where}: not msgpack ({type(exc).__name__})") from None
    return _check_envelope(obj, where)


def from_structured(obj: Any, where: str = "structured event") -> dict:
    """A structured CloudEvent (a dict from JSON or msgpack) → its envelope (the ``data``)."""
    if not isinstance(obj, dict) or "specversion" not in obj or "data" not in obj:
        raise NotAnEvent(f"{where}: not a structured CloudEvent")
    env = _check_envelope(obj["data"], where)
    return _check_attributes(env, {k: str(obj[k]) for k in ("source", "id", "type") if k in obj}, where)


def _event_or_envelope(obj: Any, where: str) -> dict:
    if isinstance(obj, dict) and "specversion" in obj:
        return from_structured(obj, where)
    return _check_envelope(obj, where)


def from_json(body: bytes | str, where: str = "JSON body") -> list[dict]:
    """A structured JSON event, a JSON batch (an array), or a bare envelope's JSON view → envelopes."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotAnEvent(f"{where}: not JSON ({type(exc).__name__})") from None
    items = obj if isinstance(obj, list) else [obj]
    return [_event_or_envelope(item, f"{where}[{i}]") for i, item in enumerate(items)]


# ---------------------------------------------------------------------------------------------- per transport

def from_nats(headers: Mapping[str, str] | None, data: bytes) -> dict:
    """A JetStream message (``msg.headers``, ``msg.data``): msgpack envelope, ``ce-*`` headers and
    ``Nats-Msg-Id: <src>:<seq>`` beside it."""
    env = from_msgpack(data, "NATS message")
    headers = headers or {}
    attrs = {k[3:]: v for k, v in headers.items() if k.lower().startswith("ce-")}
    msg_id = headers.get("Nats-Msg-Id")
    if msg_id is not None and msg_id != f"{env['src']}:{env['seq']}":
        raise NotAnEvent(f"NATS message: Nats-Msg-Id {msg_id!r} does not match the envelope")
    return _check_attributes(env, attrs, "NATS message")


def from_mqtt(payload: bytes, user_properties: Iterable[tuple[str, str]] | Mapping[str, str] | None = None
              ) -> dict:
    """An MQTT message: MQTT 5 binary mode (msgpack payload, attributes as user properties, with or without a
    ``ce-`` prefix) or MQTT 3.1.1 structured mode (a JSON CloudEvent). paho gives user properties as
    ``msg.properties.UserProperty`` (a list of pairs)."""
    if payload[:1] == b"{":
        return from_json(payload, "MQTT message")[0]
    pairs = user_properties.items() if isinstance(user_properties, Mapping) else (user_properties or ())
    attrs = {(k[3:] if k.lower().startswith("ce-") else k): v for k, v in pairs}
    return _check_attributes(from_msgpack(payload, "MQTT message"), attrs, "MQTT message")


def from_webhook(body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> list[dict]:
    """A webhook request's body by its ``Content-Type`` → the envelopes it carries, in order:

    ``application/msgpack`` (binary mode, ``ce-*`` headers), ``application/cloudevents+json``,
    ``application/cloudevents-batch+json``, ``application/json`` (either), ``application/cloudevents+msgpack``,
    ``application/cloudevents-batch+msgpack``."""
    media = content_type.split(";")[0].strip().lower()
    if media in ("application/json", "application/cloudevents+json", "application/cloudevents-batch+json"):
        return from_json(body, "webhook body")
    if media in ("application/cloudevents+msgpack", "application/cloudevents-batch+msgpack"):
        try:
            obj = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise NotAnEvent(f"webhook body: not msgpack ({type(exc).__name__})") from None
        items = obj if isinstance(obj, list) else [obj]
        return [_event_or_envelope(item, f"webhook body[{i}]") for i, item in enumerate(items)]
    if media == "application/msgpack":
        env = from_msgpack(body, "webhook body")
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        key_header = lowered.get("idempotency-key")
        if key_header is not None and key_header != f"{env['src']}:{env['seq']}":
            raise NotAnEvent("webhook body: Idempotency-Key does not match the envelope")
        return [_check_attributes(env, {k[3:]: v for k, v in lowered.items() if k.startswith("ce-")},
                                  "webhook body")]
    raise NotAnEvent(f"webhook body: unknown content type {media!r}")


def from_file_line(line: bytes | str) -> dict:
    """One line of a JSON-lines file sink: a structured JSON CloudEvent or a bare envelope's JSON view."""
    return from_json(line, "file line")[0]


def iter_jsonl(stream: Iterable[bytes | str]) -> Iterator[dict]:
    """Envelopes from a JSON-lines file (skips blank lines; a torn last line raises ``NotAnEvent``)."""
    for n, line in enumerate(stream, 1):
        if line.strip():
            yield from_json(line, f"line {n}")[0]


def iter_msgpack_file(stream: BinaryIO) -> Iterator[dict]:
    """Envelopes from a msgpack file sink: a sequence of packed envelopes or structured msgpack events."""
    unpacker = msgpack.Unpacker(stream, raw=False, strict_map_key=False)
    for n, obj in enumerate(unpacker, 1):
        yield _event_or_envelope(obj, f"msgpack item {n}")

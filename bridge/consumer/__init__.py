"""The consumer library: what an integrator needs to read tillwire events exactly once in effect.

tillwire delivers every event at least once, in ``seq`` order per source, with the idempotency key
``(src, seq)`` in every message (docs/bridge/consumers.md):

- ``Ledger``: the de-duplication ledger keyed by ``(src, seq)``, with gap detection, durable in SQLite;
- ``decode``: from a NATS message, an MQTT message, a webhook request or a file line back to the envelope;
- ``Accounting``: produced vs delivered, lost, duplicates, out of order, time to recover (for tests);
- ``verify_signature``: checks a webhook request's ``Tillwire-Signature`` (docs/bridge/sinks-webhook.md §4).
"""

from bridge.consumer.accounting import Accounting, Report
from bridge.consumer.decode import (NotAnEvent, from_file_line, from_json, from_mqtt, from_msgpack, from_nats,
                                    from_structured, from_webhook, iter_jsonl, iter_msgpack_file, key)
from bridge.consumer.ledger import Gap, Ledger, Verdict
from bridge.sinks.webhook import verify_signature

__all__ = ["Accounting", "Gap", "Ledger", "NotAnEvent", "Report", "Verdict", "from_file_line", "from_json",
           "from_mqtt", "from_msgpack", "from_nats", "from_structured", "from_webhook", "iter_jsonl",
           "iter_msgpack_file", "key", "verify_signature"]

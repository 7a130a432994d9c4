"""Delivery classes: which event types go out at once (real time) and which may wait for a batch.

Real time is for what a customer or a clerk feels within seconds: a payment's status and result, a scanned item,
a weight, a completed sale (stock, loyalty), an alert. Batch is for what the back office needs by tonight: the
terminal's end-of-day totals, the printer's line-by-line stream (``receipt.completed`` carries the receipt in
real time), link-level chatter. A type not in the table is real time: nothing unknown is ever held back.

The table is data; ``[delivery]`` in the config file overrides it with patterns (an exact type, or a prefix
ending in ``.*``); the most specific pattern wins (an exact type over ``printer.*`` over ``*``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bridge.sinks.base import BATCH, REALTIME

DEFAULT_CLASSES: Mapping[str, str] = {
    # payment terminals: the terminal is the source of truth for payment status
    "payment.request": REALTIME,
    "payment.status": REALTIME,
    "payment.result": REALTIME,
    "payment.receipt_line": BATCH,
    "payment.eod": BATCH,          # end-of-day totals
    "zvt.apdu": BATCH,
    "ecr.frame": BATCH,
    "link.*": BATCH,
    # peripherals: scans and weights move stock and prices
    "scanner.data": REALTIME,
    "scale.weight": REALTIME,
    "scale.status": REALTIME,
    "scale.request": BATCH,
    "msr.swipe": REALTIME,
    "drawer.kick": REALTIME,
    "drawer.status": REALTIME,
    "display.*": BATCH,
    # the receipt printer: the line stream is bulk; status matters now (paper out)
    "printer.*": BATCH,
    "printer.status": REALTIME,
    "printer.asb": REALTIME,
    # business layer and the bridge itself
    "receipt.completed": REALTIME,
    "sale.completed": REALTIME,
    "sale.reconciled": REALTIME,
    "reconciliation.mismatch": REALTIME,
    "bridge.alert": REALTIME,
    "device.status": REALTIME,
    "protocol.error": REALTIME,
}


def valid_pattern(pattern: str) -> bool:
    if pattern == "*":
        return True
    stem = pattern[:-2] if pattern.endswith(".*") else pattern
    return bool(stem) and all(part and all(c.isalnum() or c == "_" for c in part) for part in stem.split("."))


def _specificity(pattern: str) -> tuple[int, int]:
    if pattern == "*":
        return (0, 0)
    if pattern.endswith(".*"):
        return (1, len(pattern))
    return (2, len(pattern))


class TypeMatcher:
    """Does a type match any of a list of patterns (exact, ``prefix.*``, ``*``)?"""

    def __init__(self, patterns: Iterable[str]):
        self.patterns = tuple(patterns)
        self._exact = {p for p in self.patterns if not p.endswith("*")}
        self._prefixes = tuple(p[:-1] for p in self.patterns if p.endswith(".*"))
        self._all = "*" in self.patterns
        self._cache: dict[str, bool] = {}

    def __call__(self, type_: str) -> bool:
        hit = self._cache.get(type_)
        if hit is None:
            hit = self._all or type_ in self._exact or type_.startswith(self._prefixes)
            if len(self._cache) < 4096:
                self._cache[type_] = hit
        return hit


class DeliveryClasses:
    """Maps an event type to REALTIME or BATCH: the defaults, overridden by ``[delivery]``."""

    def __init__(self, overrides: Mapping[str, str] | None = None):
        table = dict(DEFAULT_CLASSES)
        table.update(overrides or {})
        for pattern, cls in table.items():
            if cls not in (REALTIME, BATCH) or not valid_pattern(pattern):
                raise ValueError(f"bad delivery class entry {pattern!r} = {cls!r}")
        self._ordered = sorted(table.items(), key=lambda kv: _specificity(kv[0]), reverse=True)
        self._cache: dict[str, str] = {}

    def __call__(self, type_: str) -> str:
        cls = self._cache.get(type_)
        if cls is None:
            cls = REALTIME
            for pattern, c in self._ordered:
                if pattern == "*" or pattern == type_ or (pattern.endswith(".*") and type_.startswith(pattern[:-1])):
                    cls = c
                    break
            if len(self._cache) < 4096:
                self._cache[type_] = cls
        return cls

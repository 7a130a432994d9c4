"""Accounting of a delivery run, Jepsen-style: what was produced, what arrived, and how (docs/bridge/consumers.md).

Feed it every arrival in order (``observe``), tell it what was produced (``produced``), and ``report()`` says:

- ``produced``: events the bridge captured (every ``(src, seq)`` with ``seq`` 1..last_seq);
- ``delivered``: distinct produced events that arrived at least once;
- ``lost``: produced events that never arrived;
- ``raw_duplicates``: arrivals of an event that had arrived before (re-sends the transport let through);
- ``duplicates``: events the consumer's ledger let through more than once (must be 0: that is the ledger's job);
- ``out_of_order``: first arrivals of a seq lower than the highest already delivered for its source;
- ``unknown``: arrivals of an event that was never produced (must be 0);
- ``recover_s``: from ``recovered_from`` (the moment a fault ended) until the backlog of that moment had arrived:
  the first arrival of the last of the events produced by then (``backlog``, ``{src: last_seq}`` read when the
  fault ended; all produced events when not given). ``None`` without a fault time, or when events were lost.

A correct run has ``lost == duplicates == out_of_order == unknown == 0``: ``Report.ok``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bridge.consumer.ledger import Ledger, Verdict


@dataclass(frozen=True)
class Report:
    produced: int
    delivered: int
    lost: int
    raw_duplicates: int
    duplicates: int
    out_of_order: int
    unknown: int
    recover_s: float | None
    lost_examples: tuple[tuple[str, int], ...] = ()

    @property
    def ok(self) -> bool:
        return self.lost == self.duplicates == self.out_of_order == self.unknown == 0

    def line(self, name: str = "") -> str:
        recover = "-" if self.recover_s is None else f"{self.recover_s:.2f}s"
        head = f"{name}: " if name else ""
        return (f"{head}produced={self.produced} delivered={self.delivered} lost={self.lost} "
                f"dup_after_dedup={self.duplicates} out_of_order={self.out_of_order} unknown={self.unknown} "
                f"raw_resends={self.raw_duplicates} recover={recover}")


class Accounting:
    """Observes one consumer's arrivals; the ledger given (or an in-memory one) decides what is a duplicate."""

    def __init__(self, ledger: Ledger | None = None, clock=time.monotonic):
        self.ledger = ledger if ledger is not None else Ledger.memory()
        self._clock = clock
        self._first_at: dict[tuple[str, int], float] = {}   # first arrival time per event
        self._passed: dict[tuple[str, int], int] = {}       # how often the ledger said "new"
        self._highest: dict[str, int] = {}
        self._arrivals = 0
        self._out_of_order = 0
        self._produced: set[tuple[str, int]] | None = None

    def observe(self, src: str, seq: int, at: float | None = None) -> Verdict:
        """One arrival, in arrival order; returns the ledger's verdict (process the event when ``new``)."""
        at = self._clock() if at is None else at
        key = (src, seq)
        self._arrivals += 1
        if key not in self._first_at:
            self._first_at[key] = at
            if seq < self._highest.get(src, 0):
                self._out_of_order += 1
            if seq > self._highest.get(src, 0):
                self._highest[src] = seq
        verdict = self.ledger.accept(src, seq)
        if verdict.new:
            self._passed[key] = self._passed.get(key, 0) + 1
        return verdict

    def produced(self, events: Mapping[str, int] | Iterable[tuple[str, int]]) -> None:
        """What was produced: ``{src: last_seq}`` (every seq 1..last_seq) or the ``(src, seq)`` keys."""
        if isinstance(events, Mapping):
            self._produced = {(src, seq) for src, last in events.items() for seq in range(1, last + 1)}
        else:
            self._produced = set(events)

    def missing(self) -> list[tuple[str, int]]:
        """Produced events that have not arrived yet, sorted."""
        return sorted((self._produced or set()) - self._first_at.keys())

    def complete(self) -> bool:
        return self._produced is not None and not (self._produced - self._first_at.keys())

    def report(self, recovered_from: float | None = None, backlog: Mapping[str, int] | None = None) -> Report:
        produced = self._produced if self._produced is not None else set(self._first_at)
        arrived = self._first_at.keys()
        delivered = produced & arrived
        lost = sorted(produced - arrived)
        recover = None
        if recovered_from is not None and not lost:
            due = [k for k in delivered if backlog is None or k[1] <= backlog.get(k[0], 0)]
            recover = max(0.0, max((self._first_at[k] for k in due), default=recovered_from) - recovered_from)
        return Report(
            produced=len(produced),
            delivered=len(delivered),
            lost=len(lost),
            raw_duplicates=self._arrivals - len(arrived),
            duplicates=sum(n - 1 for n in self._passed.values() if n > 1),
            out_of_order=self._out_of_order,
            unknown=len(arrived - produced),
            recover_s=recover,
            lost_examples=tuple(lost[:5]),
        )

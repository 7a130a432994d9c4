"""Exponential backoff with full jitter, shared by transports (reopening a device) and sinks (re-sending)."""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with full jitter (AWS, "Exponential Backoff and Jitter"): sleep U(0, min(cap, base·2^n)),
    but never less than ``floor`` so a missing device or broker is not polled in a busy loop."""

    def __init__(self, base: float = 0.25, cap: float = 30.0, floor: float = 0.05, rng: random.Random | None = None):
        self.base, self.cap, self.floor = base, cap, floor
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return max(self.floor, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempt = 0

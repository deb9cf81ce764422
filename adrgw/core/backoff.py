"""The one retry backoff: registration, polling, EiOpt and report delivery, BACnet write-through.

Capped exponential growth with +-20 % jitter, so a fleet of gateways that lost the same VTN does not
retry in lockstep. The jitter never takes a wait above the cap (``[ven] retry_max`` is a promise to
the operator: "at most this long apart").
"""

from __future__ import annotations

import random
from typing import Callable

JITTER = 0.2  # each wait is the nominal delay times a factor drawn in [1 - JITTER, 1 + JITTER]


class Backoff:
    """Capped exponential backoff with +-20 % jitter, never above ``cap``."""

    def __init__(self, initial: float, cap: float, uniform: Callable[[float, float], float] = random.uniform,
                 jitter: float = JITTER) -> None:
        """``uniform``: the jitter's random source (``random.uniform``; tests pass their own)."""
        self.initial, self.cap = initial, cap
        self.attempt = 0
        self._uniform = uniform
        self._jitter = jitter

    def next(self) -> float:
        """The wait before the next attempt (seconds); each call counts one more failure."""
        delay = min(self.cap, self.initial * (2.0 ** self.attempt))
        self.attempt += 1
        return min(self.cap, delay * self._uniform(1.0 - self._jitter, 1.0 + self._jitter))

    def reset(self) -> None:
        """The operation succeeded: the next failure waits ``initial`` again."""
        self.attempt = 0


__all__ = ["Backoff", "JITTER"]

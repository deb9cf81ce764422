"""The one retry backoff: registration, polling, EiOpt and report delivery, BACnet write-through,
supervised task restarts.

Capped exponential growth with up to +-20 % jitter, so a fleet of gateways that lost the same VTN
does not retry in lockstep. The jitter never takes a wait above the cap (``[ven] retry_max`` is a
promise to the operator: "at most this long apart").
"""

from __future__ import annotations

import random
from typing import Callable

JITTER = 0.2  # each wait is drawn from [nominal * (1 - JITTER), min(nominal * (1 + JITTER), cap)]
# Delays stop doubling after this many attempts: 2 ** 64 times any sane first delay is far beyond any
# cap, and a float power of 2 overflows after 1024 (about 3.5 days of 300 s retries).
MAX_DOUBLINGS = 64

Uniform = Callable[[float, float], float]


def backoff_delay(attempt: int, initial: float, cap: float, jitter: float = JITTER,
                  uniform: Uniform = random.uniform) -> float:
    """The wait before retry number ``attempt`` (0-based): ``initial`` doubled per attempt up to
    ``cap``, jittered, never longer than ``cap``.

    Why the jitter range is cut at the cap instead of the jittered value being clamped: a clamp would
    put every draw above the cap on exactly ``cap``, half a fleet retrying in lockstep again (what
    the jitter is for). Drawing from [nominal * (1 - jitter), min(nominal * (1 + jitter), cap)]
    keeps a spread of ``jitter * cap`` below the cap. The final ``min`` only absorbs the rounding of
    ``random.uniform``'s upper end.
    """
    nominal = min(cap, initial * 2.0 ** min(max(attempt, 0), MAX_DOUBLINGS))
    low, high = nominal * (1 - jitter), min(nominal * (1 + jitter), cap)
    return min(cap, uniform(low, high))


class Backoff:
    """Capped exponential backoff with jitter (``backoff_delay``): never longer than ``cap``."""

    def __init__(self, initial: float, cap: float, uniform: Uniform = random.uniform,
                 jitter: float = JITTER) -> None:
        """``uniform``: draws the wait between its two bounds (``random.uniform``; tests pass their own)."""
        self.initial, self.cap = initial, cap
        self.attempt = 0
        self._uniform = uniform
        self._jitter = jitter

    def next(self) -> float:
        """The wait before the next attempt (seconds); each call counts one more failure."""
        delay = backoff_delay(self.attempt, self.initial, self.cap, self._jitter, self._uniform)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """The operation succeeded: the next failure waits ``initial`` again."""
        self.attempt = 0


__all__ = ["Backoff", "JITTER", "MAX_DOUBLINGS", "backoff_delay"]

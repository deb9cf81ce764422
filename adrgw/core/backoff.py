"""Capped exponential backoff with jitter: how long to wait before retrying something that failed."""

from __future__ import annotations

import random


class Backoff:
    """Capped exponential backoff with +-20 % jitter, so a fleet does not retry in lockstep."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial, self.cap = initial, cap
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * (2 ** self.attempt))
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0

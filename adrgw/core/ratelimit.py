"""At most one log line per kind of problem per interval, so a misbehaving client cannot flood the journal.

A BACnet client's bad request (a refused write, an unknown service, a malformed packet) is the
client's problem, not the gateway's: the operator wants to know it happens, not a line per packet.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

# One line per kind of problem per minute; the next line says how many were not logged.
DEFAULT_INTERVAL = 60.0


class RateLimitedLog:
    """``info(key, msg, *args)`` logs at INFO unless a line with the same key was logged less than
    ``interval`` seconds ago; suppressed lines are counted and reported with the next one."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def info(self, key: str, msg: str, *args: Any) -> bool:
        """Log (True) or count (False)."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += f" ({suppressed} more like it in the last {self.interval:g} s not logged)"
        self.logger.info(msg, *args)
        return True

"""Wall-clock step detection: the gateway waits on the monotonic clock and stamps with the wall clock.

An NTP correction (or an operator's ``date -s``) moves the wall clock but not the monotonic one, so
timers armed for a wall-clock boundary (the event schedule, the sampling cadence) would fire on the
old timeline: a level left at 0 inside a running event, samples stamped in the future. This watch
compares ``wall - monotonic`` every second and tells its listeners when it moved.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Optional, Sequence

log = logging.getLogger("adrgw.clockwatch")

# How often the offset is compared, and the change that counts as a step. NTP slews small errors
# (at most 0.5 ms/s), so 1 s within one period is never a slew.
CHECK_SECONDS = 1.0
STEP_TOLERANCE = 1.0


def clock_step(previous_offset: float, offset: float, tolerance: float = STEP_TOLERANCE) -> Optional[float]:
    """The step (seconds, + forward) between two ``wall - monotonic`` offsets, or None if within tolerance."""
    step = offset - previous_offset
    return step if abs(step) > tolerance else None


class ClockWatch:
    def __init__(self, listeners: Sequence[Callable[[], None]], wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, period: float = CHECK_SECONDS) -> None:
        self._listeners = tuple(listeners)
        self._wall, self._monotonic, self._period = wall, monotonic, period
        self.steps = 0

    def _offset(self) -> float:
        return self._wall() - self._monotonic()

    async def run(self) -> None:
        offset = self._offset()
        while True:
            await asyncio.sleep(self._period)
            current = self._offset()
            step = clock_step(offset, current)
            offset = current
            if step is None:
                continue
            self.steps += 1
            log.warning("wall clock stepped %+.1f s: re-arming the event schedule and the sampler", step)
            for listener in self._listeners:
                listener()

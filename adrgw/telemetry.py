"""Meter sampling on a fixed cadence, and the queue of samples waiting for the VTN's acknowledgement.

Data flows one way: meter -> Sampler -> SampleQueue -> VtnLink (reports). A sample leaves the queue
only when the VTN acknowledged the report that carried it, so delivery can be retried and batched
after an outage. A failed read produces no sample at all: never 0, never the previous value.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable, Deque, Optional

log = logging.getLogger("adrgw.telemetry")


@dataclass(frozen=True)
class Sample:
    timestamp: datetime  # the cadence instant the sample belongs to (UTC), not the read's end
    value: float


class SampleQueue:
    """Samples not yet acknowledged by the VTN, oldest first, bounded to ``max_samples``.

    When full, the oldest samples are dropped and counted (a warning says how many), so a
    week-long VTN outage cannot exhaust memory.
    """

    def __init__(self, max_samples: int) -> None:
        self._items: Deque[Sample] = collections.deque()
        self._max = max(1, max_samples)
        self._nonempty = asyncio.Event()
        self.dropped = 0
        self.delivered = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, sample: Sample) -> None:
        self._items.append(sample)
        while len(self._items) > self._max:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("telemetry backlog full (%d samples): dropped %d oldest sample(s) so far",
                            self._max, self.dropped)
        self._nonempty.set()

    def peek(self, limit: int) -> list[Sample]:
        return [self._items[i] for i in range(min(limit, len(self._items)))]

    def ack(self, batch: list[Sample]) -> None:
        """Remove ``batch`` (a prefix previously returned by peek) after the VTN acknowledged it."""
        for sample in batch:
            if self._items and self._items[0] == sample:
                self._items.popleft()
                self.delivered += 1
        if not self._items:
            self._nonempty.clear()

    async def wait(self) -> None:
        await self._nonempty.wait()


ReadFn = Callable[[], Awaitable[float]]


def next_tick(now: float, interval: float) -> float:
    """The next multiple of ``interval`` (epoch seconds) strictly after ``now``: wall-clock aligned,
    so samples land on :00, :10, :20... whatever the start time or the read duration."""
    return (math.floor(now / interval) + 1) * interval


class Sampler:
    """Reads the meter every ``interval`` seconds on the wall-clock cadence and queues the value."""

    def __init__(self, read: ReadFn, queue: SampleQueue, interval: float, scale: float,
                 describe: str, on_sample: Optional[Callable[[Sample], None]] = None) -> None:
        self._read = read
        self._queue = queue
        self._interval = interval
        self._scale = scale
        self._describe = describe
        self._on_sample = on_sample
        self.failures = 0  # consecutive
        self.samples = 0
        self.read_errors = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = next_tick(time.time(), self._interval)
        while True:
            # Sleep on the monotonic clock toward the wall-clock tick; recomputed each round, so a
            # slow read never shifts the cadence and a missed tick is skipped, not bunched.
            delay = tick - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            started = loop.time()
            await self.sample_once(datetime.fromtimestamp(tick, timezone.utc))
            log.debug("read took %.1f ms", (loop.time() - started) * 1000)
            tick = next_tick(max(time.time(), tick), self._interval)

    async def sample_once(self, stamp: datetime) -> Optional[Sample]:
        from .bacnet import MeterReadError

        try:
            raw = await self._read()
        except MeterReadError as exc:
            self.failures += 1
            self.read_errors += 1
            if self.failures == 1:
                log.warning("meter read failed (%s): %s; no value for %s", self._describe, exc,
                            stamp.isoformat())
            elif self.failures in (10, 100) or self.failures % 1000 == 0:
                log.warning("meter still failing: %d reads in a row (%s)", self.failures, exc)
            return None
        if self.failures:
            log.warning("meter answers again after %d failed read(s)", self.failures)
            self.failures = 0
        value = raw * self._scale
        sample = Sample(stamp, value)
        log.info("Adding %s, %s to report", stamp.isoformat(), value)
        self._queue.put(sample)
        self.samples += 1
        if self._on_sample is not None:
            self._on_sample(sample)
        return sample

"""Meter sampling on a fixed cadence: the pure cadence rule (``plan``) and the Sampler that follows it.

Data flows one way: meter -> Sampler -> SampleSink (the durable queue, adrgw/persist/samples.py) ->
a protocol adapter's reports. A sample leaves the queue only when the VTN acknowledged the report
that carried it, so delivery can be retried and batched after an outage. A failed read produces no
sample at all: never 0, never the previous value.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Optional, Protocol

from adrgw.core.model import Sample

log = logging.getLogger("adrgw.telemetry")


class SampleSink(Protocol):
    """Where the sampler puts readings: durably, before it returns (persist/samples.SampleQueue).

    ``put``: False when a sample for that instant is already stored; ``put_many``: one cadence
    instant's samples of several streams at once, how many were new. A storage fault raises."""

    async def put(self, sample: Sample) -> bool: ...

    async def put_many(self, items: list[tuple[str, Sample]]) -> int: ...


ReadFn = Callable[[], Awaitable[float]]


def next_tick(now: float, interval: float) -> float:
    """The next multiple of ``interval`` (epoch seconds) strictly after ``now``: wall-clock aligned,
    so samples land on :00, :10, :20... whatever the start time or the read duration."""
    return (math.floor(now / interval) + 1) * interval


# A read may start this much after its instant and still be filed under it: the event loop's wake-up
# jitter on a loaded 2-core machine (measured p99 well under 50 ms), on top of the read timeout.
WAKE_SLACK = 0.25


@dataclass(frozen=True)
class Step:
    """What the sampler does next: ``sleep`` (for ``wait`` seconds), ``sample`` (at ``tick``),
    ``missed`` (``tick`` passed too long ago: skip to ``next``), ``stepped_back`` (the wall clock went
    back: re-arm on ``next``)."""

    action: str
    tick: float
    next: float
    wait: float = 0.0


def plan(now: float, tick: float, interval: float, late_limit: float) -> Step:
    """Pure cadence rule, with the wall-clock time passed in.

    A sample is taken at ``tick`` only if ``tick <= now <= tick + late_limit``: never stamped in the
    future, never filed under an instant long gone (a stall, SIGSTOP, a forward clock step). A tick more
    than one interval ahead means the wall clock stepped back: re-arm on the new timeline. Sleeps are
    at most one interval, so a step is noticed within one interval even without a clock watch.
    """
    if tick - now > interval:
        return Step("stepped_back", tick, next_tick(now, interval))
    if now < tick:
        return Step("sleep", tick, tick, wait=min(tick - now, interval))
    if now - tick > late_limit:
        return Step("missed", tick, next_tick(now, interval))
    return Step("sample", tick, next_tick(now, interval))


class Sampler:
    """Reads the meter every ``interval`` seconds on the wall-clock cadence and queues the value.

    Waits run on the monotonic clock (asyncio), stamps come from the wall clock (``wall``), and the
    two are reconciled by ``plan`` before every read. ``rearm()`` (the clock watch calls it on a wall
    clock step) makes the sampler re-evaluate at once.
    """

    def __init__(self, read: ReadFn, queue: SampleSink, interval: float, scale: float,
                 describe: str, read_errors: tuple[type[BaseException], ...],
                 on_sample: Optional[Callable[[Sample], None]] = None,
                 on_failure: Optional[Callable[[str], None]] = None,
                 extra_read: Optional[Callable[[], Awaitable[dict[str, Any]]]] = None,
                 extra_scales: Optional[dict[str, float]] = None, timeout: float = 3.0,
                 wall: Callable[[], float] = time.time) -> None:
        self._read = read
        self._read_errors = read_errors  # what ``read`` raises when the meter does not answer
        self._queue = queue
        self._interval = interval
        self._scale = scale
        self._describe = describe
        self._on_sample = on_sample
        self._on_failure = on_failure
        self._extra_read = extra_read  # [report.NAME] points, read together on the same cadence
        self._extra_scales = extra_scales or {}
        self._extra_failing: set[str] = set()
        self._late_limit = timeout + WAKE_SLACK
        self._wall = wall
        self._rearm = asyncio.Event()
        self.failures = 0  # consecutive
        self.samples = 0
        self.last_sample: Optional[Sample] = None  # the last good reading (for --status)
        self.last_error: Optional[str] = None  # why the last read failed, None once it answers
        self.read_errors = 0
        self.reads_ok = 0  # meter reads that returned a value (stored or not), for /metrics
        self.missed = 0  # cadence instants skipped: the process was stalled or the clock jumped
        self.late_reads = 0  # reads that finished too long after their instant: discarded
        self.unstored = 0  # samples that could not be stored (storage fault)

    def rearm(self) -> None:
        """Re-evaluate the cadence now (the wall clock was stepped)."""
        self._rearm.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = next_tick(self._wall(), self._interval)
        while True:
            step = plan(self._wall(), tick, self._interval, self._late_limit)
            if step.action == "sleep":
                self._rearm.clear()
                try:
                    await asyncio.wait_for(self._rearm.wait(), step.wait)
                except asyncio.TimeoutError:
                    pass
                continue
            if step.action == "stepped_back":
                log.warning("wall clock stepped back %.1f s: sampling re-armed on the new timeline",
                            tick - self._interval - self._wall())
            elif step.action == "missed":
                skipped = int(round((step.next - step.tick) / self._interval))
                self.missed += skipped
                log.warning("no sample for %d instant(s) from %s (the process was stalled or the wall clock "
                            "jumped ahead): none is filed late", skipped,
                            datetime.fromtimestamp(step.tick, timezone.utc).isoformat())
            else:
                started = loop.time()
                await self.sample_once(datetime.fromtimestamp(tick, timezone.utc))
                log.debug("read took %.1f ms", (loop.time() - started) * 1000)
            tick = step.next

    async def sample_once(self, stamp: datetime) -> Optional[Sample]:
        if self._extra_read is None:
            return await self._sample_meter(stamp)
        meter: Optional[Sample]
        extra: dict[str, Any]
        meter, extra = await asyncio.gather(self._sample_meter(stamp), self._extra_read())
        await self._store_extra(stamp, extra)
        return meter

    async def _store_extra(self, stamp: datetime, values: dict[str, Any]) -> None:
        items: list[tuple[str, Sample]] = []
        if self._wall() - stamp.timestamp() > self._late_limit:
            self.late_reads += 1
            log.warning("discarded %d report point reading(s) for %s: finished too long after the instant",
                        len(values), stamp.isoformat())
            return
        for stream, value in values.items():
            if isinstance(value, self._read_errors):
                if stream not in self._extra_failing:
                    self._extra_failing.add(stream)
                    log.warning("report point %s: read failed (%s); no value until it answers", stream, value)
                continue
            if stream in self._extra_failing:
                self._extra_failing.discard(stream)
                log.warning("report point %s answers again", stream)
            scaled = value * self._extra_scales.get(stream, 1.0)
            items.append((stream, Sample(stamp, scaled)))
            log.debug("Adding %s, %s to report (%s)", stamp.isoformat(), scaled, stream)
        try:
            await self._queue.put_many(items)
        except Exception as exc:  # noqa: BLE001 - a broken disk must not stop the gateway
            log.error("could not store %d report point sample(s) for %s (%s)", len(items), stamp.isoformat(), exc)

    async def _sample_meter(self, stamp: datetime) -> Optional[Sample]:
        try:
            raw = await self._read()
        except self._read_errors as exc:
            self.failures += 1
            self.read_errors += 1
            if self.failures == 1:
                log.warning("meter read failed (%s): %s; no value for %s", self._describe, exc,
                            stamp.isoformat())
            elif self.failures in (10, 100) or self.failures % 1000 == 0:
                log.warning("meter still failing: %d reads in a row (%s)", self.failures, exc)
            self.last_error = str(exc)
            if self._on_failure is not None:
                self._on_failure(str(exc))
            return None
        self.reads_ok += 1
        if self.failures:
            log.warning("meter answers again after %d failed read(s)", self.failures)
            self.failures = 0
        late = self._wall() - stamp.timestamp()
        if late > self._late_limit:
            # The process stalled (or the clock jumped) during the read: the value belongs to now,
            # not to the instant; filing it there would invent a sample.
            self.late_reads += 1
            log.warning("discarded the reading for %s: it finished %.1f s after its instant (more than the "
                        "read timeout)", stamp.isoformat(), late)
            return None
        value = raw * self._scale
        sample = Sample(stamp, value)
        try:
            if not await self._queue.put(sample):  # durable before anything else happens to it
                return None
        except Exception as exc:  # noqa: BLE001 - a broken disk must not stop the gateway
            self.unstored += 1
            log.warning("could not store the sample for %s, %s (%s: %s): not delivered, counted (%d so far)",
                        stamp.isoformat(), value, type(exc).__name__, exc, self.unstored)
            if self._on_sample is not None:
                self._on_sample(sample)  # the BACnet mirror still shows the reading
            return None
        log.info("Adding %s, %s to report", stamp.isoformat(), value)
        self.samples += 1
        self.last_sample, self.last_error = sample, None
        if self._on_sample is not None:
            self._on_sample(sample)
        return sample

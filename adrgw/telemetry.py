"""Meter sampling on a fixed cadence, and the queue of samples waiting for the VTN's acknowledgement.

Data flows one way: meter -> Sampler -> SampleQueue -> VtnLink (reports). A sample leaves the queue
only when the VTN acknowledged the report that carried it, so delivery can be retried and batched
after an outage. A failed read produces no sample at all: never 0, never the previous value.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from .store import OWED_FROM_SQL

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("adrgw.telemetry")


@dataclass(frozen=True)
class Sample:
    timestamp: datetime  # the cadence instant the sample belongs to (UTC), not the read's end
    value: float


class SampleQueue:
    """Samples, durable in the Store (sqlite), each stored once whatever reports use it.

    A sample is "undelivered" while some report still owes it to the VTN (store.OWED_FROM_SQL);
    ``len()`` counts those. Undelivered samples are bounded to ``max_samples``: when full, the oldest
    are dropped and counted, with at most one warning per hour saying how many, so a long VTN outage
    cannot fill the disk. Delivered samples stay for [state] history_hours (HISTORY_USAGE), then
    ``prune`` removes them. Nothing per sample is kept in memory: only the count.

    Storage faults: a sample that cannot be stored is counted in ``unstored`` (the caller logs its
    instant). Acknowledgements are the report service's cursors (report_service.py), which hold
    delivery back while the store is failing and keep an uncommitted cursor in memory.
    """

    WARN_EVERY = 3600.0  # seconds between "dropped" warnings

    def __init__(self, store: "Store", max_samples: int) -> None:
        self._store = store
        self._max = max(1, max_samples)
        self._count = 0
        self.dropped = 0
        self.delivered = 0
        self.stored = 0  # samples inserted (all streams), for /metrics
        self.unstored = 0  # samples that could not be stored (storage fault): lost, counted
        self._dropped_unreported = 0
        self._last_warning: Optional[float] = None
        # Called when the number of undelivered samples changes (the status snapshot follows).
        self.on_change: Callable[[], None] = lambda: None

    def _set_count(self, count: int) -> None:
        if count != self._count:
            self._count = count
            self.on_change()

    async def open(self) -> None:
        self._count = await self._store.call(_count_owed)
        if self._count:
            log.info("%d undelivered sample(s) from before the restart are queued for the VTN", self._count)

    def __len__(self) -> int:
        return self._count

    async def put(self, sample: Sample, stream: str = "") -> bool:
        """Store ``sample`` durably; False if a sample for that instant is already queued."""
        return await self.put_many([(stream, sample)]) == 1

    async def put_many(self, items: list[tuple[str, Sample]]) -> int:
        """Store samples of one cadence instant in one transaction; how many were new."""
        limit = self._max
        rows = [(stream, sample.timestamp.timestamp(), sample.value) for stream, sample in items]

        def _put(db: Any) -> tuple[int, int, int]:
            with db:  # one transaction: insert and trim
                cur = db.executemany("INSERT OR IGNORE INTO samples (stream, ts, value) VALUES (?, ?, ?)", rows)
                count = _count_owed(db)
                dropped = 0
                if count > limit:
                    dropped = count - limit
                    db.execute(f"DELETE FROM samples WHERE id IN (SELECT id FROM samples WHERE ts >= ({OWED_FROM_SQL}) "
                               "ORDER BY ts, id LIMIT ?)", (dropped,))
                    count = limit
                return cur.rowcount, count, dropped

        if not rows:
            return 0
        from .store import StoreFault

        try:
            inserted, count, dropped = await self._store.call(_put)
        except StoreFault:
            self.unstored += len(rows)
            raise
        self._set_count(count)
        self.stored += max(0, inserted)
        if dropped:
            self._note_dropped(dropped)
        return inserted

    def _note_dropped(self, dropped: int) -> None:
        self.dropped += dropped
        self._dropped_unreported += dropped
        now = time.monotonic()
        if self._last_warning is None or now - self._last_warning >= self.WARN_EVERY:
            log.warning("telemetry backlog full (%d samples, [state] max_backlog_hours): dropped the %d "
                        "oldest undelivered sample(s)%s", self._max, self._dropped_unreported,
                        "" if self._last_warning is None else " in the last hour")
            self._dropped_unreported = 0
            self._last_warning = now

    async def peek(self, limit: int) -> list[tuple[int, Sample]]:
        """The oldest undelivered samples of the [meter] stream (see peek_streams for all)."""
        return [(row_id, sample) for row_id, stream, sample in await self.peek_streams(limit) if stream == ""]

    async def peek_streams(self, limit: int) -> list[tuple[int, str, Sample]]:
        """The oldest undelivered samples of every stream (what some report still owes the VTN)."""

        def _peek(db: Any) -> list[tuple[int, str, float, float]]:
            return db.execute(f"SELECT id, stream, ts, value FROM samples WHERE ts >= ({OWED_FROM_SQL}) "
                              "ORDER BY ts, id LIMIT ?", (limit,)).fetchall()

        return [(row_id, stream, Sample(datetime.fromtimestamp(ts, timezone.utc), value))
                for row_id, stream, ts, value in await self._store.call(_peek)]

    async def oldest_owed(self) -> Optional[datetime]:
        """The cadence instant of the oldest sample not yet delivered (None when none waits)."""
        ts = await self._store.call(lambda db: db.execute(
            f"SELECT MIN(ts) FROM samples WHERE ts >= ({OWED_FROM_SQL})").fetchone()[0])
        return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)

    # -- reads and upkeep for the report service (adrgw/report_service.py) ------------------------

    async def window(self, streams: list[str], lo: float, hi: float, limit: int,
                     granularity: float) -> dict[str, dict[float, float]]:
        """Samples of ``streams`` at instants on the ``granularity`` grid (multiples from the epoch,
        to the millisecond) in [lo, hi), at most ``limit`` per stream, by stream and instant (rounded
        as reports.instants rounds)."""
        step_ms = max(1, round(granularity * 1000))

        def _window(db: Any) -> list[tuple[str, float, float]]:
            out: list[tuple[str, float, float]] = []
            for stream in streams:
                out += db.execute("SELECT stream, ts, value FROM samples WHERE stream = ? AND ts >= ? AND ts < ? "
                                  "AND CAST(round(ts * 1000) AS INTEGER) % ? = 0 ORDER BY ts LIMIT ?",
                                  (stream, lo, hi, step_ms, limit)).fetchall()
            return out

        if not streams:
            return {}
        result: dict[str, dict[float, float]] = {s: {} for s in streams}
        for stream, ts, value in await self._store.call(_window):
            result[stream][round(ts, 6)] = value
        return result

    async def oldest(self, streams: list[str]) -> Optional[float]:
        """The instant of the oldest kept sample of ``streams`` (None: none kept)."""
        marks = ",".join("?" * len(streams))
        return await self._store.call(lambda db: db.execute(
            f"SELECT MIN(ts) FROM samples WHERE stream IN ({marks})", streams).fetchone()[0]) if streams else None

    @property
    def store(self) -> "Store":
        return self._store

    async def recount(self) -> None:
        """Count undelivered samples again (a report cursor moved); what left the count was delivered."""
        before = self._count
        self._set_count(await self._store.call(_count_owed))
        self.delivered += max(0, before - self._count)


def _count_owed(db: Any) -> int:
    return int(db.execute(f"SELECT COUNT(*) FROM samples WHERE ts >= ({OWED_FROM_SQL})").fetchone()[0])


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

    def __init__(self, read: ReadFn, queue: SampleQueue, interval: float, scale: float,
                 describe: str, on_sample: Optional[Callable[[Sample], None]] = None,
                 on_failure: Optional[Callable[[str], None]] = None,
                 extra_read: Optional[Callable[[], Awaitable[dict[str, Any]]]] = None,
                 extra_scales: Optional[dict[str, float]] = None, timeout: float = 3.0,
                 wall: Callable[[], float] = time.time) -> None:
        self._read = read
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
        meter, extra = await asyncio.gather(self._sample_meter(stamp), self._extra_read())
        await self._store_extra(stamp, extra)
        return meter

    async def _store_extra(self, stamp: datetime, values: dict[str, Any]) -> None:
        from .bacnet import MeterReadError

        items: list[tuple[str, Sample]] = []
        if self._wall() - stamp.timestamp() > self._late_limit:
            self.late_reads += 1
            log.warning("discarded %d report point reading(s) for %s: finished too long after the instant",
                        len(values), stamp.isoformat())
            return
        for stream, value in values.items():
            if isinstance(value, MeterReadError):
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

"""The queue of samples waiting for the VTN's acknowledgement, durable in the state store.

Moved out of the core (it was telemetry.SampleQueue): it is sqlite, and which samples are still owed
is the protocol adapter's bookkeeping (its ``Ledger``: for 2.0b the report cursors of
adrgw/openadr/report_store.py). It implements the core's SampleSink (the sampler puts here) and
Readings (the adapter's reports read here) ports.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from adrgw.core.model import Sample
from adrgw.core.ratelog import Summary
from adrgw.persist.store import Store, StoreFault

log = logging.getLogger("adrgw.telemetry")  # the backlog lines keep their logger name


@dataclass(frozen=True)
class Ledger:
    """How a protocol adapter records which samples the VTN acknowledged.

    ``schema``: the DDL of its tables (CREATE ... IF NOT EXISTS; run when the queue opens);
    ``owed_from_sql``: a scalar SELECT giving the oldest instant (epoch seconds) still owed to the VTN,
    -1e300 when everything is. Samples from there on are "undelivered": counted, bounded, never pruned.
    ``tables``: the tables ``owed_from_sql`` reads (a state file from before them owes every sample:
    ``--status`` reads such files too).
    """

    schema: str
    owed_from_sql: str
    tables: tuple[str, ...] = ()


# No acknowledgement bookkeeping: every sample is owed (tools and tests that only store samples).
EVERYTHING_OWED = Ledger("", "SELECT -1e300")


class SampleQueue:
    """Samples, durable in the Store (sqlite), each stored once whatever reports use it.

    A sample is "undelivered" while some report still owes it to the VTN (the adapter's ``Ledger``);
    ``len()`` counts those. Undelivered samples are bounded to ``max_samples``: when full, the oldest
    are dropped and counted, with at most one warning per hour saying how many, so a long VTN outage
    cannot fill the disk. Delivered samples stay for [state] history_hours (HISTORY_USAGE), then
    ``prune`` removes them. Nothing per sample is kept in memory: only the count.

    Storage faults: a sample that cannot be stored is counted in ``unstored`` (the caller logs its
    instant). Acknowledgements are the report service's cursors (report_service.py), which hold
    delivery back while the store is failing and keep an uncommitted cursor in memory.
    """

    WARN_EVERY = 3600.0  # seconds between "dropped" warnings

    def __init__(self, store: Store, max_samples: int, ledger: Ledger,
                 on_change: Callable[[], None] = lambda: None) -> None:
        """``ledger``: how the protocol adapter records what the VTN acknowledged (2.0b:
        adrgw/openadr/report_store.LEDGER); ``on_change``: called when the number of undelivered
        samples changes (the status snapshot follows)."""
        self._store = store
        self._ledger = ledger
        self._max = max(1, max_samples)
        self._count = 0
        self.dropped = 0
        self.delivered = 0
        self.stored = 0  # samples inserted (all streams), for /metrics
        self.unstored = 0  # samples that could not be stored (storage fault): lost, counted
        self._drop_log = Summary(self.WARN_EVERY)
        self.on_change = on_change

    def _set_count(self, count: int) -> None:
        if count != self._count:
            self._count = count
            self.on_change()

    async def open(self) -> None:
        if self._ledger.schema:
            await self._store.call(lambda db: db.executescript(self._ledger.schema))
        self._count = await self._store.call(_count_owed, self._ledger.owed_from_sql)
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
        owed = self._ledger.owed_from_sql
        rows = [(stream, sample.timestamp.timestamp(), sample.value) for stream, sample in items]

        def _put(db: Any) -> tuple[int, int, int]:
            with db:  # one transaction: insert and trim
                cur = db.executemany("INSERT OR IGNORE INTO samples (stream, ts, value) VALUES (?, ?, ?)", rows)
                count = _count_owed(db, owed)
                dropped = 0
                if count > limit:
                    dropped = count - limit
                    db.execute(f"DELETE FROM samples WHERE id IN (SELECT id FROM samples WHERE ts >= ({owed}) "
                               "ORDER BY ts, id LIMIT ?)", (dropped,))
                    count = limit
                return cur.rowcount, count, dropped

        if not rows:
            return 0
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
        covered = self._drop_log.hit(time.monotonic(), count=dropped)
        if covered is not None:
            log.warning("telemetry backlog full (%d samples, [state] max_backlog_hours): dropped the %d "
                        "oldest undelivered sample(s)%s", self._max, covered,
                        "" if covered == self._drop_log.total else " in the last hour")

    async def peek(self, limit: int) -> list[tuple[int, Sample]]:
        """The oldest undelivered samples of the [meter] stream (see peek_streams for all)."""
        return [(row_id, sample) for row_id, stream, sample in await self.peek_streams(limit) if stream == ""]

    async def peek_streams(self, limit: int) -> list[tuple[int, str, Sample]]:
        """The oldest undelivered samples of every stream (what some report still owes the VTN)."""
        owed = self._ledger.owed_from_sql

        def _peek(db: Any) -> list[tuple[int, str, float, float]]:
            return db.execute(f"SELECT id, stream, ts, value FROM samples WHERE ts >= ({owed}) "
                              "ORDER BY ts, id LIMIT ?", (limit,)).fetchall()

        return [(row_id, stream, Sample(datetime.fromtimestamp(ts, timezone.utc), value))
                for row_id, stream, ts, value in await self._store.call(_peek)]

    async def oldest_owed(self) -> Optional[datetime]:
        """The cadence instant of the oldest sample not yet delivered (None when none waits)."""
        owed = self._ledger.owed_from_sql
        ts = await self._store.call(lambda db: db.execute(
            f"SELECT MIN(ts) FROM samples WHERE ts >= ({owed})").fetchone()[0])
        return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)

    # -- reads and upkeep for the adapter's reports (core.ports.Readings) -------------------------

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
    def store(self) -> Store:
        return self._store

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    async def recount(self) -> None:
        """Count undelivered samples again (a report cursor moved); what left the count was delivered."""
        before = self._count
        self._set_count(await self._store.call(_count_owed, self._ledger.owed_from_sql))
        self.delivered += max(0, before - self._count)


def _count_owed(db: Any, owed: str) -> int:
    return int(db.execute(f"SELECT COUNT(*) FROM samples WHERE ts >= ({owed})").fetchone()[0])

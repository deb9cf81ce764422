"""What the status page looks back on: 24 h of meter samples and of events, kept in the state store.

Why it is kept apart from the report queue: a sample leaves the queue once the VTN acknowledged it
and the EventController forgets an event the VTN stops listing, but "did we shed during yesterday's
event, and did the utility get our readings?" needs both afterwards. Both histories live in the same
sqlite file as the rest of the state (so they survive a restart), are written and queried on the
Store's worker thread (the event loop never waits on the disk), and are trimmed to RETENTION.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Optional

from adrgw.core.clock import utc_now as _utc_now
from adrgw.core.schedule import CANCELLED, COMPLETED, Event, event_from_dict, event_to_dict
from adrgw.core.model import Sample
from adrgw.persist.samples import Ledger

log = logging.getLogger("adrgw.history")

# Kept a little longer than the 24 h the page shows, so the window's left edge is never empty.
RETENTION = timedelta(hours=25)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meter_history (ts REAL PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS event_history (event_id TEXT PRIMARY KEY, data TEXT NOT NULL);
"""

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class EventRecord:
    """One event as the gateway knew it: its latest version and what happened to it."""

    event: Event
    first_seen: datetime
    modifications: tuple[tuple[str, datetime], ...] = ()  # (revision label, when received)
    removed_at: Optional[datetime] = None  # the VTN stopped listing it (implied cancellation)
    cancelled_at: Optional[datetime] = None  # when the gateway received the cancellation

    @property
    def end(self) -> Optional[datetime]:
        """When the event stopped (or will stop) driving the points: its last interval's end, cut by
        a cancellation (at its randomized end if it has one, else when it was received) or by the
        VTN no longer listing it."""
        e = self.event
        end = e.end
        cut = None
        if e.cancelled:
            cut = e.cancel_at or self.cancelled_at
        if self.removed_at is not None:
            cut = self.removed_at if cut is None else min(cut, self.removed_at)
        if cut is not None and (end is None or cut < end):
            return cut
        return end


class MeterHistory:
    """Every stored [meter] sample of the last RETENTION, for the chart."""

    def __init__(self, store: Any, ledger: Ledger) -> None:
        """``ledger``: which samples the VTN still owes (the sample queue's, SampleQueue.ledger)."""
        self._store = store
        self._ledger = ledger
        self._pending: set[asyncio.Task[None]] = set()
        self._failing = False
        self.version = 0  # bumped with each stored sample: the page reuses its chart until it changes

    async def open(self) -> None:
        await self._store.call(lambda db: db.executescript(_SCHEMA))

    def record(self, sample: Sample) -> None:
        """Remember ``sample`` (called from the Sampler's on_sample hook; returns at once)."""
        task = asyncio.get_running_loop().create_task(self._insert(sample.timestamp.timestamp(), sample.value))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _insert(self, ts: float, value: float) -> None:
        cutoff = ts - RETENTION.total_seconds()

        def _put(db: Any) -> None:
            with db:
                db.execute("INSERT OR REPLACE INTO meter_history (ts, value) VALUES (?, ?)", (ts, value))
                db.execute("DELETE FROM meter_history WHERE ts < ?", (cutoff,))

        try:
            await self._store.call(_put)
        except Exception as exc:  # noqa: BLE001 - the chart is not worth stopping the sampler for
            if not self._failing:
                log.warning("could not keep the sample for the status page chart: %s", exc)
            self._failing = True
        else:
            self._failing = False
            self.version += 1

    async def flush(self) -> None:
        """Wait for the inserts already scheduled (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def window(self, t0: float, t1: float) -> tuple[list[tuple[float, float]], list[float]]:
        """(samples, queued instants) of [t0, t1], time-ordered, in one call on the store thread."""

        owed = self._ledger.owed_from_sql

        def _query(db: Any) -> tuple[list[tuple[float, float]], list[float]]:
            samples = db.execute("SELECT ts, value FROM meter_history WHERE ts >= ? AND ts <= ? ORDER BY ts",
                                 (t0, t1)).fetchall()
            queued = [row[0] for row in db.execute(
                f"SELECT ts FROM samples WHERE stream = '' AND ts >= ? AND ts <= ? AND ts >= ({owed}) "
                "ORDER BY ts", (t0, t1))]
            return samples, queued

        return await self._store.call(_query)


class EventHistory:
    """Every event the gateway held in the last RETENTION, with its modifications and its end."""

    def __init__(self, store: Any, clock: Clock = _utc_now) -> None:
        self._store = store
        self._clock = clock
        self.records: dict[str, EventRecord] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.version = 0  # bumped with each change of the records

    async def open(self) -> None:
        def _load(db: Any) -> list[tuple[str, str]]:
            db.executescript(_SCHEMA)
            return db.execute("SELECT event_id, data FROM event_history").fetchall()

        for event_id, text in await self._store.call(_load):
            try:
                data = json.loads(text)
                self.records[event_id] = EventRecord(
                    event=event_from_dict(data["event"]),
                    first_seen=datetime.fromtimestamp(data["first_seen"], timezone.utc),
                    modifications=tuple((str(n), datetime.fromtimestamp(t, timezone.utc))
                                        for n, t in data["modifications"]),
                    removed_at=datetime.fromtimestamp(data["removed_at"], timezone.utc)
                    if data.get("removed_at") is not None else None,
                    cancelled_at=datetime.fromtimestamp(data["cancelled_at"], timezone.utc)
                    if data.get("cancelled_at") is not None else None)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("damaged event history record %s (%s): dropped", event_id, exc)

    def observe(self, events: Mapping[str, Event]) -> None:
        """Called with the controller's events after each change (cheap when nothing changed)."""
        now = self._clock()
        changed: list[EventRecord] = []
        for event_id, event in events.items():
            record = self.records.get(event_id)
            if record is not None and record.event == event and record.removed_at is None:
                continue
            if record is None:
                record = EventRecord(event=event, first_seen=now, modifications=((event.revision.label, now),),
                                     cancelled_at=now if event.cancelled else None)
            else:
                mods = record.modifications
                if not mods or mods[-1][0] != event.revision.label:
                    mods = mods + ((event.revision.label, now),)
                cancelled_at = record.cancelled_at
                if event.cancelled and not record.event.cancelled:
                    cancelled_at = now
                record = replace(record, event=event, modifications=mods, removed_at=None, cancelled_at=cancelled_at)
            self.records[event_id] = record
            changed.append(record)
        for event_id, record in list(self.records.items()):
            if event_id in events or record.removed_at is not None:
                continue
            if record.event.status(now) in (COMPLETED, CANCELLED):
                continue  # a VTN forgetting a finished or cancelled event is no (further) cancellation
            record = replace(record, removed_at=now)
            self.records[event_id] = record
            changed.append(record)
        dropped = [event_id for event_id, record in self.records.items() if self._expired(record, now)]
        for event_id in dropped:
            del self.records[event_id]
        if changed or dropped:
            self.version += 1
            self._save(changed, dropped)

    @staticmethod
    def _expired(record: EventRecord, now: datetime) -> bool:
        end = record.end
        return end is not None and end < now - RETENTION

    def _save(self, changed: list[EventRecord], dropped: list[str]) -> None:
        rows = [(r.event.event_id, json.dumps({
            "event": event_to_dict(r.event), "first_seen": r.first_seen.timestamp(),
            "modifications": [[n, t.timestamp()] for n, t in r.modifications],
            "removed_at": r.removed_at.timestamp() if r.removed_at else None,
            "cancelled_at": r.cancelled_at.timestamp() if r.cancelled_at else None})) for r in changed]

        def _write(db: Any) -> None:
            with db:
                db.executemany("INSERT OR REPLACE INTO event_history (event_id, data) VALUES (?, ?)", rows)
                db.executemany("DELETE FROM event_history WHERE event_id = ?", [(d,) for d in dropped])

        async def write() -> None:
            try:
                await self._store.call(_write)
            except Exception as exc:  # noqa: BLE001 - history is for the page; the points go on
                log.warning("could not keep the event history for the status page: %s", exc)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

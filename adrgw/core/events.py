"""EventController: holds the VTN's events, keeps every event point right, persists what matters.

The decisions are the pure schedule's (schedule.py); this class adds what needs a clock, randomness,
I/O or the device: choosing randomization offsets, the timer for the next boundary (plus a 1 s tick
while a countdown is visible), targeting, opt-out, persistence, and the opt changes for the VTN.
It is the core's EventSink (ports.py): a protocol adapter hands it a Distribution and maps the
outcomes it returns to its own answers; it writes through a PointSink and sends opt changes to an
OptPort, all given to its constructor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Optional, Protocol

from adrgw.core import ports as P
from adrgw.core.clock import Clock, utc_now
from adrgw.core.model import Distribution, EventOutcome, OptChange, Outcome
from adrgw.core.ports import OptPort, PointSink, Scheduler, Timer
from adrgw.core.revision import Revision
from adrgw.core.signals import SignalPoint, value_at
from adrgw.core.targeting import Identity, is_targeted
from adrgw.core.schedule import (ACTIVE, CANCELLED, COMPLETED, FAR, NEAR, STATUS_STATES, Event, evaluate,
                       event_from_dict, event_to_dict, merge, with_offset)

log = logging.getLogger("adrgw.events")

# Countdown points (start-in, remaining) are refreshed at least this often while they show something.
TICK_SECONDS = 1.0


class EventStore(Protocol):
    """The state store as the controller uses it (persist/store.Store satisfies it): ``call`` runs
    ``fn(connection, *args)`` on the store's thread; ``get``/``set`` a key. Storage faults raise."""

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    async def get(self, key: str) -> Optional[str]: ...

    async def set(self, key: str, value: str) -> None: ...


def _save_events(db: Any, rows: list[tuple[str, str]]) -> None:
    with db:  # one transaction: the stored set is always a whole distribution's result
        db.execute("CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, data TEXT NOT NULL)")
        db.execute("DELETE FROM events")
        db.executemany("INSERT INTO events (event_id, data) VALUES (?, ?)", rows)


def _load_events(db: Any) -> list[tuple[str, str]]:
    db.execute("CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, data TEXT NOT NULL)")
    rows: list[tuple[str, str]] = db.execute("SELECT event_id, data FROM events").fetchall()
    return rows


def _call_later(delay: float, callback: Callable[[], None]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, callback)


class EventController:
    def __init__(self, device: PointSink, store: Optional[EventStore] = None, event_level_name: str = "ADR-Event-Level",
                 apply_test_events: bool = False, clock: Clock = utc_now,
                 rng: Optional[random.Random] = None, signal_points: tuple[SignalPoint, ...] = (),
                 identity: Callable[[], Identity] = Identity, opts: Optional[OptPort] = None,
                 on_level: Optional[Callable[[float], None]] = None,
                 on_events: Optional[Callable[[Mapping[str, Event]], None]] = None,
                 schedule: Scheduler = _call_later, on_change: Callable[[], None] = lambda: None) -> None:
        """``signal_points``: the [signal.NAME] points to keep right; ``identity``: who this VEN is
        now (its venID is known only once registered), for target criteria (targeting.py);
        ``opts``: where the building's opt changes go (None: nowhere, e.g. a test); ``on_level``:
        called with the level whenever it changes (write-through follows the same level);
        ``on_events``: called with the events after each refresh (the status page's event history);
        ``schedule``: arms the timer for the next boundary (the loop's call_later; tests fake it);
        ``on_change``: called when what refresh() shows changed (an event received, modified, removed,
        starting or ending, the level, opt-out), not on the countdown ticks: the status snapshot follows."""
        self.device = device
        self.store = store
        self.event_level_name = event_level_name
        self.apply_test_events = apply_test_events
        self.clock = clock
        self.rng = rng or random.Random()
        self.signal_points = signal_points
        self.identity = identity
        self.events: dict[str, Event] = {}
        self.opt_out = False
        self._seq = 0
        self._schedule = schedule
        self._timer: Optional[Timer] = None
        self._statuses: dict[str, str] = {}
        self.active_event: Optional[str] = None
        self.opts = opts
        self.on_level = on_level
        self._notified_level: Optional[float] = None
        self.on_events = on_events
        self._unsaved = False  # a save failed (storage fault): persist_pending() saves again
        self.on_change = on_change
        self._shown: Optional[tuple[Any, ...]] = None

    # -- persistence ------------------------------------------------------------------------------

    async def restore(self) -> None:
        """Load events and the opt-out state stored by the previous run (VTN not needed)."""
        if self.store is None:
            return
        rows = await self.store.call(_load_events)
        for event_id, data in rows:
            try:
                self.events[event_id] = event_from_dict(json.loads(data))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("stored event %s is damaged (%s): dropped", event_id, exc)
        self._seq = max((e.seq for e in self.events.values()), default=-1) + 1
        self.opt_out = (await self.store.get("opt_out")) == "1"
        if self.events or self.opt_out:
            log.info("restored %d event(s) from the state store%s", len(self.events),
                     "; opt-out is active" if self.opt_out else "")

    async def _persist(self) -> None:
        if self.store is None:
            return
        rows = [(e.event_id, json.dumps(event_to_dict(e))) for e in self.events.values()]
        try:
            await self.store.call(_save_events, rows)
            self._unsaved = False
        except Exception as exc:  # noqa: BLE001 - the points must keep working without the disk
            self._unsaved = True
            log.error("could not save events to the state store (%s): the schedule runs from memory and is "
                      "saved when the storage works again", exc)

    async def persist_pending(self) -> None:
        """Save what a storage fault kept from being saved (events, opt-out state)."""
        if self.store is None or not self._unsaved:
            return
        try:
            await self.store.set("opt_out", "1" if self.opt_out else "0")
        except Exception:  # noqa: BLE001 - still failing: try again at the next check
            return
        await self._persist()
        if not self._unsaved:
            log.info("events saved to the state store after the storage fault")

    # -- the VTN's distributions ---------------------------------------------------------------------

    async def apply(self, distribution: Distribution) -> list[EventOutcome]:
        """Merge one distribution (every event the VTN lists for us); the outcome for each event
        (none for an event already over: nothing to opt into)."""
        now = self.clock()
        me = self.identity()
        parsed: list[Event] = []
        outcomes: list[EventOutcome] = []
        listed: set[str] = set()

        def targeted(event_id: str) -> bool:
            return is_targeted(distribution.targets.get(event_id, {}), me)

        for event in distribution.events:
            if not targeted(event.event_id):
                # Not for us: moves nothing (and a held event of that id is dropped as no longer
                # listed for us); the adapter answers it (2.0b: optOut 462) and logs it once.
                outcomes.append(EventOutcome(event.event_id, event.revision, Outcome.NOT_TARGETED))
                continue
            listed.add(event.event_id)
            event = self._prepare(event, now)
            parsed.append(event)
            if event.status(now) == COMPLETED:
                # Nothing to opt into. (openleadr's VTN forgets completed events once listed and
                # answers a late oadrCreatedEvent for one with HTTP 500.)
                continue
            outcomes.append(EventOutcome(event.event_id, event.revision,
                                         Outcome.OPTED_OUT if event.opted_out else Outcome.ACCEPTED))
        for bad in distribution.malformed:
            if bad.event_id is not None and not targeted(bad.event_id):
                outcomes.append(EventOutcome(bad.event_id, bad.revision, Outcome.NOT_TARGETED))
                continue
            log.warning("refused malformed event: %s", bad.reason)
            if bad.event_id is not None:
                listed.add(bad.event_id)  # keeps its last good version
                outcomes.append(EventOutcome(bad.event_id, bad.revision, Outcome.MALFORMED))
        before = self.events
        self.events, changes = merge(self.events, parsed, self._seq, listed)
        self._seq += len(parsed)
        for change in changes:
            self._log_change(change.kind, change.event_id, change.revision, before)
        self.refresh()  # the points first: they must not wait for the disk (slow, full or failing)
        if any(c.kind not in ("unchanged",) for c in changes):
            await self._persist()
        if self.opt_out and self.opts is not None:
            # Events arriving while ADR-Opt-Out is active get their own opt too (2.0b: oadrCreateOpt).
            await self.opts.opted_out([OptChange(e.event_id, e.revision, True) for e in parsed
                                       if e.opted_out and e.event_id in self.events])
        return outcomes

    def _prepare(self, event: Event, now: datetime) -> Event:
        """Randomization offset (chosen once per event, kept across modifications and restarts),
        randomized cancellation end, and the opt-out state."""
        held = self.events.get(event.event_id)
        if held is not None:
            offset = held.offset
        elif event.start_after > timedelta(0):
            offset = timedelta(seconds=self.rng.uniform(0, event.start_after.total_seconds()))
        else:
            offset = timedelta(0)
        event = with_offset(event, offset)
        if event.cancelled and held is not None and held.cancel_at is not None:
            event = replace(event, cancel_at=held.cancel_at)
        elif event.cancelled and offset > timedelta(0) and held is not None and not held.cancelled \
                and held.status(now) == ACTIVE:
            # A randomized event ends at its randomized point after a cancellation, not at once.
            event = replace(event, cancel_at=now + offset)
        opted_out = (held.opted_out if held is not None else False) or \
            (self.opt_out and event.status(now) not in (COMPLETED, CANCELLED))
        return replace(event, opted_out=opted_out)

    def _log_change(self, kind: str, event_id: str, revision: Revision, before: dict[str, Event]) -> None:
        mod = revision.label
        event = self.events.get(event_id)
        if kind in ("new", "modified") and event is not None:
            levels = ", ".join(f"{i.level:g}" for i in event.intervals)
            extra = []
            if event.offset:
                extra.append(f"randomized start +{event.offset.total_seconds():.1f} s")
            if event.test_event:
                extra.append("test event" + ("" if self.apply_test_events else ", not applied to the points"))
            if event.opted_out:
                extra.append("opted out")
            log.info("event %s %s (modification %s, signal %s, priority %d): %d interval(s) [%s] from %s to %s%s",
                     event_id, "received" if kind == "new" else "modified", mod, event.signal_name,
                     event.priority, len(event.intervals), levels,
                     event.start.isoformat() if event.start else "?",
                     event.end.isoformat() if event.end else "open end",
                     f" ({'; '.join(extra)})" if extra else "")
        elif kind == "cancelled":
            when = f" at its randomized end {event.cancel_at.isoformat()}" if event and event.cancel_at else ""
            log.info("event %s cancelled by the VTN (modification %s)%s", event_id, mod, when)
        elif kind == "removed":
            log.info("event %s no longer listed by the VTN: removed (implied cancellation)", event_id)
            self._statuses.pop(event_id, None)
        elif kind == "stale":
            log.warning("event %s: ignored an older modification than %s", event_id, mod)

    # -- opt-out from BACnet --------------------------------------------------------------------------

    async def set_opt_out(self, active: bool) -> None:
        """ADR-Opt-Out written: opt out of (or back in to) the active and every pending event."""
        now = self.clock()
        changed: list[OptChange] = []
        self.opt_out = active
        for event_id, event in list(self.events.items()):
            if event.status(now) in (COMPLETED, CANCELLED) or event.opted_out == active:
                continue
            self.events[event_id] = replace(event, opted_out=active)
            changed.append(OptChange(event_id, event.revision, active))
        if self.store is not None:
            try:
                await self.store.set("opt_out", "1" if active else "0")
            except Exception as exc:  # noqa: BLE001
                self._unsaved = True
                log.error("could not save the opt-out state: %s", exc)
        await self._persist()
        log.info("opt-%s: %d event(s) affected%s", "out" if active else "in", len(changed),
                 "; new events will be answered optOut" if active else "")
        self.refresh()
        if self.opts is not None:
            if changed:
                self.opts.answers_changed(changed)
            if active:
                await self.opts.opted_out(changed)
            else:
                await self.opts.opted_in()

    # -- the points ------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Set every event point for now and arm the timer for the next change (or the next tick of a
        visible countdown)."""
        now = self.clock()
        state = evaluate(self.events.values(), now, self.apply_test_events)
        for event_id, event in self.events.items():
            status = event.status(now)
            if self._statuses.get(event_id) != status:
                if event_id in self._statuses or status not in (COMPLETED,):
                    log.info("event %s is %s", event_id, status)
                self._statuses[event_id] = status
        self.active_event = state.event_id
        if self.on_events is not None:
            self.on_events(self.events)
        d = self.device
        d.set_level(state.level)
        if self.on_level is not None and state.level != self._notified_level:
            self._notified_level = state.level
            self.on_level(state.level)
        d.set_value(P.EVENT_STATUS, STATUS_STATES.index(state.status) + 1)
        d.set_value(P.EVENT_ACTIVE, state.active)
        d.set_value(P.START_IN, float(round(state.start_in)))
        d.set_value(P.REMAINING, float(round(state.remaining)))
        d.set_value(P.OPT_OUT, self.opt_out)
        shown = (state.level, state.status, state.event_id, self.opt_out,
                 tuple((e.event_id, e.revision, self._statuses.get(e.event_id), e.opted_out)
                       for e in self.events.values()))
        if shown != self._shown:
            self._shown = shown
            self.on_change()
        for point in self.signal_points:
            d.set_value(point.object_name, value_at(self.events.values(), now, point, self.apply_test_events))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wake: Optional[float] = None
        if state.next_change is not None:
            # +1 ms: the loop's clock and the wall clock may disagree by a hair; waking just after
            # the boundary guarantees evaluate() sees the new interval.
            wake = (state.next_change - now).total_seconds() + 0.001
        if state.start_in > 0 or state.remaining > 0:
            wake = TICK_SECONDS if wake is None else min(wake, TICK_SECONDS)
        if wake is not None:
            self._timer = self._schedule(max(0.0, wake), self.refresh)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


__all__ = ["EventController", "EventStore", "FAR", "NEAR", "utc_now"]

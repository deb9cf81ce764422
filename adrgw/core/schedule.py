"""Pure event-schedule logic: events + an instant -> level and the next instant anything changes.

No I/O and no clock reads: every function takes ``now``. This is what the BACnet points follow, so
it is tested exhaustively (tests/test_schedule.py) rather than trusted.

Terms follow OpenADR: an *event* has *signals*, a signal has *intervals*, each interval has a
start, a duration and a payload (the *level*). Intervals are half-open ``[start, end)``: at the
exact boundary instant the next interval's level applies. Nothing here reads a wire format: the
protocol adapters (adrgw/openadr/) build these types from their messages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence

from adrgw.core.revision import Revision

SIMPLE = "SIMPLE"
# OpenADR 2.0b: the SIMPLE signal's levels are 0 normal, 1 moderate, 2 high, 3 special.
SIMPLE_LEVELS = (0.0, 1.0, 2.0, 3.0)


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: Optional[datetime]  # None: open-ended (OpenADR duration 0, "until cancelled")
    level: float

    def contains(self, now: datetime) -> bool:
        return self.start <= now and (self.end is None or now < self.end)


@dataclass(frozen=True)
class Signal:
    """One eiEventSignal of an event: its name, type and intervals (randomization applied)."""

    name: str
    type: str
    intervals: tuple[Interval, ...]

    def interval_at(self, now: datetime) -> Optional[Interval]:
        for interval in self.intervals:
            if interval.contains(now):
                return interval
        return None


# Event status values (OpenADR eventStatus plus 'none'), and the ADR-Event-Status state numbers.
NONE, FAR, NEAR, ACTIVE, COMPLETED, CANCELLED = "none", "far", "near", "active", "completed", "cancelled"
STATUS_STATES = (NONE, FAR, NEAR, ACTIVE)  # multiStateValue presentValue 1..4


@dataclass(frozen=True)
class Event:
    event_id: str
    revision: Revision  # a higher one replaces the event (2.0b modificationNumber, 3.1 modificationDateTime)
    intervals: tuple[Interval, ...]  # of the signal that drives the level, sorted, randomization applied
    priority: int = 0  # OpenADR: lower non-zero number wins; 0 is the lowest priority
    cancelled: bool = False
    test_event: bool = False
    signal_name: str = SIMPLE
    seq: int = 0  # order of arrival/modification, breaks priority ties (most recent wins)
    start_after: timedelta = timedelta(0)  # tolerance/tolerate/startafter from the VTN
    offset: timedelta = timedelta(0)  # the random start offset chosen in [0, start_after], applied
    ramp_up: Optional[timedelta] = None
    notification: Optional[timedelta] = None
    cancel_at: Optional[datetime] = None  # a cancelled event ends here (randomized end), None: at once
    opted_out: bool = False
    # Every signal of the event (the level's one included), for [signal.NAME] points.
    signals: tuple[Signal, ...] = ()
    # False when the event has no signal for ADR-Event-Level: ``intervals`` then only give its
    # timeline (status, countdowns) and the level stays 0 for it.
    has_level: bool = True

    @property
    def start(self) -> Optional[datetime]:
        return self.intervals[0].start if self.intervals else None

    @property
    def end(self) -> Optional[datetime]:
        """When the event stops driving the points (a pending randomized cancellation included)."""
        if not self.intervals:
            return None
        end = self.intervals[-1].end
        if self.cancelled and self.cancel_at is not None:
            return self.cancel_at if end is None else min(end, self.cancel_at)
        return end

    @property
    def near_window(self) -> Optional[timedelta]:
        return self.ramp_up if self.ramp_up else self.notification

    def ended(self, now: datetime) -> bool:
        if self.cancelled and (self.cancel_at is None or now >= self.cancel_at):
            return True
        return False

    def interval_at(self, now: datetime) -> Optional[Interval]:
        if self.ended(now):
            return None
        for interval in self.intervals:
            if interval.contains(now):
                return interval if self.end is None or now < self.end else None
        return None

    def status(self, now: datetime) -> str:
        """far / near / active / completed / cancelled, from the schedule alone."""
        if self.ended(now):
            return CANCELLED
        if self.interval_at(now) is not None:
            return ACTIVE
        start = self.start
        end = self.end
        if start is None or (end is not None and now >= end):
            return COMPLETED
        if now >= start:
            return ACTIVE  # between two non-contiguous intervals: still the event's span
        window = self.near_window
        if window and now >= start - window:
            return NEAR
        return FAR


def with_offset(event: Event, offset: timedelta) -> Event:
    """``event`` with its intervals shifted by the randomization ``offset`` (start_after tolerance)."""
    if not offset:
        return replace(event, offset=timedelta(0))
    def shift(intervals: tuple[Interval, ...]) -> tuple[Interval, ...]:
        return tuple(Interval(i.start + offset, i.end + offset if i.end else None, i.level) for i in intervals)

    return replace(event, intervals=shift(event.intervals), offset=offset,
                   signals=tuple(replace(s, intervals=shift(s.intervals)) for s in event.signals))


@dataclass(frozen=True)
class State:
    """What the points should show at ``now`` and when to look again."""

    level: float
    event_id: Optional[str]
    next_change: Optional[datetime]  # next instant any point changes state (boundaries), None if none
    status: str = NONE  # none / far / near / active
    start_in: float = 0.0  # seconds until the next event starts; 0 while active or when none
    remaining: float = 0.0  # seconds left in the active event; 0 otherwise (and for open-ended events)

    @property
    def active(self) -> bool:
        return self.event_id is not None


def eligible(event: Event, apply_test_events: bool = False) -> bool:
    """Whether an event may drive the points: not opted out, and not a test event unless asked."""
    return not event.opted_out and (apply_test_events or not event.test_event)


def _rank(event: Event) -> tuple[float, int]:
    # Lowest non-zero priority first, 0 last; then the most recently received/modified.
    return (float(event.priority) if event.priority > 0 else float("inf"), -event.seq)


def active(events: Iterable[Event], now: datetime) -> Optional[tuple[Event, Interval]]:
    """The winning (event, interval) at ``now``, or None when no event interval is active."""
    best: Optional[tuple[Event, Interval]] = None
    for event in events:
        interval = event.interval_at(now)
        if interval is None:
            continue
        if best is None or _rank(event) < _rank(best[0]):
            best = (event, interval)
    return best


def next_boundary(events: Iterable[Event], now: datetime) -> Optional[datetime]:
    """The earliest instant strictly after ``now`` at which any point may change: interval starts and
    ends, the start of a near window, a randomized cancellation end."""
    soonest: Optional[datetime] = None

    def consider(instant: Optional[datetime]) -> None:
        nonlocal soonest
        if instant is not None and instant > now and (soonest is None or instant < soonest):
            soonest = instant

    for event in events:
        if event.ended(now):
            continue
        end = event.end
        for interval in event.intervals:
            if end is not None and interval.start >= end:
                continue
            consider(interval.start)
            consider(interval.end if end is None or interval.end is None else min(interval.end, end))
        for signal in event.signals:  # [signal.NAME] points change at their own boundaries
            for interval in signal.intervals:
                consider(interval.start)
                consider(interval.end)
        if event.cancel_at is not None and event.cancelled:
            consider(event.cancel_at)
        window = event.near_window
        if window and event.start is not None:
            consider(event.start - window)
    return soonest


def evaluate(events: Iterable[Event], now: datetime, apply_test_events: bool = False) -> State:
    """The points' state at ``now`` from the events that may drive them (see ``eligible``)."""
    events = [e for e in events if eligible(e, apply_test_events)]
    winner = active(events, now)
    next_change = next_boundary(events, now)
    if winner:
        event, interval = winner
        end = event.end
        remaining = (end - now).total_seconds() if end is not None else 0.0
        # The level comes from the events that carry the level's signal (an active price-only
        # event makes the status active but does not put a price on ADR-Event-Level).
        carrier = winner if event.has_level else active([e for e in events if e.has_level], now)
        level = carrier[1].level if carrier else 0.0
        return State(level=level, event_id=event.event_id, next_change=next_change, status=ACTIVE,
                     start_in=0.0, remaining=max(0.0, remaining))
    pending = [e for e in events if e.status(now) in (FAR, NEAR)]
    if not pending:
        return State(level=0.0, event_id=None, next_change=next_change)
    status = NEAR if any(e.status(now) == NEAR for e in pending) else FAR
    first = min(e.start for e in pending if e.start is not None)
    return State(level=0.0, event_id=None, next_change=next_change, status=status,
                 start_in=(first - now).total_seconds())


def is_finished(event: Event, now: datetime) -> bool:
    """True once the event can no longer affect the points (cancelled, or past its last interval)."""
    return event.status(now) in (COMPLETED, CANCELLED)


# ---------------------------------------------------------------------------------------------
# Merging what the VTN sends into what we hold


@dataclass(frozen=True)
class Change:
    """One thing a distribution did to our set of events, for logging and opt responses."""

    kind: str  # 'new' | 'modified' | 'cancelled' | 'unchanged' | 'stale' | 'removed'
    event_id: str
    revision: Revision


def merge(current: Mapping[str, Event], incoming: Sequence[Event], seq: int,
          listed: Optional[set[str]] = None) -> tuple[dict[str, Event], list[Change]]:
    """Apply one distribution (every event the VTN lists for this VEN) to ``current``.

    A higher revision replaces the event (levels and times, even mid-event); an equal or lower one
    is ignored. Implied cancellation (a distribution lists every event the VTN holds for this VEN):
    events whose id is not in ``listed`` (default: the ids of ``incoming``) are removed. Pass the ids
    of malformed events in ``listed`` too, so they keep their last good version instead of vanishing.
    """
    result = dict(current)
    changes: list[Change] = []
    for offset, event in enumerate(incoming):
        old = result.get(event.event_id)
        if old is None:
            result[event.event_id] = replace(event, seq=seq + offset)
            changes.append(Change("cancelled" if event.cancelled else "new", event.event_id, event.revision))
        elif event.revision > old.revision:
            result[event.event_id] = replace(event, seq=seq + offset)
            kind = "cancelled" if event.cancelled and not old.cancelled else "modified"
            changes.append(Change(kind, event.event_id, event.revision))
        elif event.revision == old.revision:
            changes.append(Change("unchanged", event.event_id, old.revision))
        else:
            changes.append(Change("stale", event.event_id, old.revision))
    keep = listed if listed is not None else {e.event_id for e in incoming}
    for event_id in list(result):
        if event_id not in keep:
            changes.append(Change("removed", event_id, result[event_id].revision))
            del result[event_id]
    return result, changes


# ---------------------------------------------------------------------------------------------
# Persistence form (JSON-able), so the schedule survives a restart without the VTN


def _ts(value: Optional[datetime]) -> Optional[float]:
    return value.timestamp() if value is not None else None


def _dt(value: Optional[float]) -> Optional[datetime]:
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def event_to_dict(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id, "revision": event.revision.to_json(),
        "intervals": [[_ts(i.start), _ts(i.end), i.level] for i in event.intervals],
        "priority": event.priority, "cancelled": event.cancelled, "test_event": event.test_event,
        "signal_name": event.signal_name, "seq": event.seq,
        "start_after": event.start_after.total_seconds(), "offset": event.offset.total_seconds(),
        "ramp_up": event.ramp_up.total_seconds() if event.ramp_up else None,
        "notification": event.notification.total_seconds() if event.notification else None,
        "cancel_at": _ts(event.cancel_at), "opted_out": event.opted_out,
        "signals": [[sig.name, sig.type, [[_ts(i.start), _ts(i.end), i.level] for i in sig.intervals]]
                    for sig in event.signals],
        "has_level": event.has_level,
    }


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Inverse of event_to_dict; ValueError/KeyError/TypeError on a damaged record.

    Records written before revisions existed (releases up to issue 19, OpenADR 2.0b only) carry
    ``modification_number``: a modification count, read as ``Revision.number``.
    """
    revision = (Revision.from_json(data["revision"]) if "revision" in data
                else Revision.number(int(data["modification_number"])))
    return Event(
        event_id=str(data["event_id"]), revision=revision,
        intervals=tuple(Interval(_dt(a), _dt(b), float(level)) for a, b, level in data["intervals"]),  # type: ignore[arg-type]
        priority=int(data["priority"]), cancelled=bool(data["cancelled"]), test_event=bool(data["test_event"]),
        signal_name=str(data["signal_name"]), seq=int(data["seq"]),
        start_after=timedelta(seconds=float(data["start_after"])), offset=timedelta(seconds=float(data["offset"])),
        ramp_up=timedelta(seconds=data["ramp_up"]) if data.get("ramp_up") else None,
        notification=timedelta(seconds=data["notification"]) if data.get("notification") else None,
        cancel_at=_dt(data.get("cancel_at")), opted_out=bool(data.get("opted_out", False)),
        # Records written before [signal.NAME] existed have neither (their level signal only).
        signals=tuple(Signal(str(name), str(kind), tuple(Interval(_dt(a), _dt(b), float(level))  # type: ignore[arg-type]
                                                         for a, b, level in intervals))
                      for name, kind, intervals in data.get("signals", [])),
        has_level=bool(data.get("has_level", True)),
    )

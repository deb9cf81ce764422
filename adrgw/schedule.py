"""Pure event-schedule logic: events + an instant -> level and the next instant anything changes.

No I/O and no clock reads: every function takes ``now``. This is what the BACnet points follow, so
it is tested exhaustively (tests/test_schedule.py) rather than trusted.

Terms follow OpenADR 2.0b: an *event* has *signals*, a signal has *intervals*, each interval has a
start (dtstart), a duration and a payload (the *level*). Intervals are half-open ``[start, end)``:
at the exact boundary instant the next interval's level applies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence

SIMPLE = "SIMPLE"


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: Optional[datetime]  # None: open-ended (OpenADR duration 0, "until cancelled")
    level: float

    def contains(self, now: datetime) -> bool:
        return self.start <= now and (self.end is None or now < self.end)


@dataclass(frozen=True)
class Event:
    event_id: str
    modification_number: int
    intervals: tuple[Interval, ...]  # of the signal that drives the level, sorted by start
    priority: int = 0  # OpenADR: lower non-zero number wins; 0 is the lowest priority
    cancelled: bool = False
    test_event: bool = False
    signal_name: str = SIMPLE
    seq: int = 0  # order of arrival/modification, breaks priority ties (most recent wins)

    @property
    def start(self) -> Optional[datetime]:
        return self.intervals[0].start if self.intervals else None

    @property
    def end(self) -> Optional[datetime]:
        if not self.intervals:
            return None
        return self.intervals[-1].end

    def interval_at(self, now: datetime) -> Optional[Interval]:
        if self.cancelled:
            return None
        for interval in self.intervals:
            if interval.contains(now):
                return interval
        return None


@dataclass(frozen=True)
class State:
    """What the points should show at ``now`` and when to look again."""

    level: float
    event_id: Optional[str]
    next_change: Optional[datetime]  # next interval boundary after now, None if nothing is pending


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
    """The earliest interval start or end strictly after ``now`` among events not cancelled."""
    soonest: Optional[datetime] = None
    for event in events:
        if event.cancelled:
            continue
        for interval in event.intervals:
            for instant in (interval.start, interval.end):
                if instant is not None and instant > now and (soonest is None or instant < soonest):
                    soonest = instant
    return soonest


def evaluate(events: Iterable[Event], now: datetime) -> State:
    events = list(events)
    winner = active(events, now)
    level = winner[1].level if winner else 0.0
    return State(level=level, event_id=winner[0].event_id if winner else None,
                 next_change=next_boundary(events, now))


def is_finished(event: Event, now: datetime) -> bool:
    """True once the event can no longer affect the points (cancelled, or past its last interval)."""
    if event.cancelled:
        return True
    end = event.end
    return bool(event.intervals) and end is not None and end <= now


# ---------------------------------------------------------------------------------------------
# Merging what the VTN sends into what we hold


@dataclass(frozen=True)
class Change:
    """One thing a distribution did to our set of events, for logging and opt responses."""

    kind: str  # 'new' | 'modified' | 'cancelled' | 'unchanged' | 'stale' | 'removed'
    event_id: str
    modification_number: int


def merge(current: Mapping[str, Event], incoming: Sequence[Event], seq: int,
          listed: Optional[set[str]] = None) -> tuple[dict[str, Event], list[Change]]:
    """Apply one oadrDistributeEvent to ``current``.

    A higher modificationNumber replaces the event (levels and times, even mid-event); an equal or
    lower one is ignored. Implied cancellation (OpenADR 2.0b: a distribution lists every event the
    VTN holds for this VEN): events whose id is not in ``listed`` (default: the ids of ``incoming``)
    are removed. Pass the ids of malformed events in ``listed`` too, so they keep their last good
    version instead of vanishing.
    """
    result = dict(current)
    changes: list[Change] = []
    for offset, event in enumerate(incoming):
        old = result.get(event.event_id)
        if old is None:
            result[event.event_id] = replace(event, seq=seq + offset)
            changes.append(Change("cancelled" if event.cancelled else "new", event.event_id,
                                  event.modification_number))
        elif event.modification_number > old.modification_number:
            result[event.event_id] = replace(event, seq=seq + offset)
            kind = "cancelled" if event.cancelled and not old.cancelled else "modified"
            changes.append(Change(kind, event.event_id, event.modification_number))
        elif event.modification_number == old.modification_number:
            changes.append(Change("unchanged", event.event_id, old.modification_number))
        else:
            changes.append(Change("stale", event.event_id, old.modification_number))
    keep = listed if listed is not None else {e.event_id for e in incoming}
    for event_id in list(result):
        if event_id not in keep:
            changes.append(Change("removed", event_id, result[event_id].modification_number))
            del result[event_id]
    return result, changes


# ---------------------------------------------------------------------------------------------
# From openleadr's parsed event dict (DESIGN.md section 2) to an Event


def _aware(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{what} is not a date-time: {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _duration(value: Any, what: str) -> timedelta:
    if value is None:
        return timedelta(0)
    if not isinstance(value, timedelta):
        raise ValueError(f"{what} is not a duration: {value!r}")
    if value < timedelta(0):
        raise ValueError(f"{what} is negative: {value}")
    return value


def choose_signal(signals: Sequence[Mapping[str, Any]], name: Optional[str] = None) -> Mapping[str, Any]:
    """The signal that drives the level: ``name`` if given and present, else SIMPLE, else the first."""
    if not signals:
        raise ValueError("event has no signals")
    for wanted in ([name] if name else []) + [SIMPLE]:
        for signal in signals:
            if str(signal.get("signal_name", "")).upper() == wanted.upper():
                return signal
    return signals[0]


def event_from_oadr(event: Mapping[str, Any], signal_name: Optional[str] = None) -> Event:
    """Build an Event from openleadr's event dict; ValueError names what is malformed."""
    try:
        descriptor = event["event_descriptor"]
        event_id = str(descriptor["event_id"])
    except (KeyError, TypeError):
        raise ValueError("event without event_descriptor/event_id") from None
    modification_number = descriptor.get("modification_number", 0)
    if not isinstance(modification_number, int) or modification_number < 0:
        raise ValueError(f"event {event_id}: bad modification_number {modification_number!r}")
    priority = descriptor.get("priority", 0) or 0
    if not isinstance(priority, int) or priority < 0:
        raise ValueError(f"event {event_id}: bad priority {priority!r}")
    status = str(descriptor.get("event_status", "")).lower()
    test_event = str(descriptor.get("test_event", "false")).lower() in ("true", "1")

    signals = event.get("event_signals") or []
    if isinstance(signals, Mapping):  # openleadr sometimes nests them
        signals = signals.get("event_signals", [])
    if not isinstance(signals, list):
        raise ValueError(f"event {event_id}: event_signals is not a list")
    signal = choose_signal(signals, signal_name)

    active_period = event.get("active_period") or {}
    period_start = active_period.get("dtstart")
    cursor = _aware(period_start, f"event {event_id} active_period dtstart") if period_start else None

    raw_intervals = signal.get("intervals") or []
    if not isinstance(raw_intervals, list) or not raw_intervals:
        raise ValueError(f"event {event_id}: signal has no intervals")
    intervals: list[Interval] = []
    for number, raw in enumerate(raw_intervals):
        what = f"event {event_id} interval {number}"
        start = raw.get("dtstart")
        start = _aware(start, f"{what} dtstart") if start is not None else cursor
        if start is None:
            raise ValueError(f"{what}: no start time")
        duration = _duration(raw.get("duration"), f"{what} duration")
        payload = raw.get("signal_payload")
        if isinstance(payload, bool) or not isinstance(payload, (int, float)):
            raise ValueError(f"{what}: payload {payload!r} is not a number")
        level = float(payload)
        if level != level or level in (float("inf"), float("-inf")):
            raise ValueError(f"{what}: payload {payload!r} is not finite")
        end = start + duration if duration > timedelta(0) else None
        intervals.append(Interval(start, end, level))
        cursor = end
    intervals.sort(key=lambda i: i.start)
    # An open-ended interval that is followed by another ends where the next one starts.
    intervals = [replace(i, end=intervals[n + 1].start) if i.end is None and n + 1 < len(intervals) else i
                 for n, i in enumerate(intervals)]
    return Event(event_id=event_id, modification_number=modification_number,
                 intervals=tuple(intervals), priority=priority,
                 cancelled=status == "cancelled", test_event=test_event,
                 signal_name=str(signal.get("signal_name", "")))

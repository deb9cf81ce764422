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
    modification_number: int
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


def level_signal(signals: Sequence[Mapping[str, Any]], name: Optional[str] = None) -> Optional[Mapping[str, Any]]:
    """The signal that drives ADR-Event-Level: the one named ``name`` ([points] signal_name),
    default SIMPLE; None when the event has none (no other signal is put on the level)."""
    wanted = (name or SIMPLE).upper()
    for signal in signals:
        if str(signal.get("signal_name", "")).upper() == wanted:
            return signal
    return None


def event_from_oadr(event: Mapping[str, Any], signal_name: Optional[str] = None) -> Event:
    """Build an Event from openleadr's event dict; ValueError names what is malformed.

    Anything a hostile or broken VTN can put in the structure ends as a ValueError, never as
    another exception type (fuzzed in tests/test_hostile.py).
    """
    try:
        return _event_from_oadr(event, signal_name)
    except (AttributeError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ValueError(f"malformed event structure ({type(exc).__name__}: {exc})") from None


def _event_from_oadr(event: Mapping[str, Any], signal_name: Optional[str]) -> Event:
    if not isinstance(event, Mapping):
        raise ValueError("event is not a structure")
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
    test_event = descriptor.get("test_event", False)
    test_event = test_event is True or str(test_event).strip().lower() in ("true", "1")

    signals = event.get("event_signals") or []
    if isinstance(signals, Mapping):  # openleadr sometimes nests them
        signals = signals.get("event_signals", [])
    if not isinstance(signals, list):
        raise ValueError(f"event {event_id}: event_signals is not a list")
    if not signals:
        raise ValueError(f"event {event_id}: event has no signals")
    if not all(isinstance(signal, Mapping) for signal in signals):
        raise ValueError(f"event {event_id}: event has a signal that is not a structure")

    active_period = event.get("active_period") or {}
    if not isinstance(active_period, Mapping):
        raise ValueError(f"event {event_id}: active_period is not a structure")
    tolerance = active_period.get("tolerance") or {}
    start_after = _duration((tolerance.get("tolerate") or {}).get("startafter")
                            if isinstance(tolerance, Mapping) else None, f"event {event_id} startafter")
    ramp_up = _duration(active_period.get("ramp_up"), f"event {event_id} ramp-up") or None
    notification = _duration(active_period.get("notification"), f"event {event_id} notification") or None
    period_start = active_period.get("dtstart")
    cursor = _aware(period_start, f"event {event_id} active_period dtstart") if period_start else None

    parsed = tuple(_signal(event_id, number, signal, cursor) for number, signal in enumerate(signals))
    level = level_signal(signals, signal_name)
    timeline = next(p for p, raw in zip(parsed, signals) if raw is level) if level is not None else parsed[0]
    return Event(event_id=event_id, modification_number=modification_number,
                 intervals=timeline.intervals, priority=priority,
                 cancelled=status == "cancelled", test_event=test_event,
                 signal_name=timeline.name, start_after=start_after,
                 ramp_up=ramp_up, notification=notification, signals=parsed, has_level=level is not None)


def _signal(event_id: str, number: int, signal: Mapping[str, Any], cursor: Optional[datetime]) -> Signal:
    """One eiEventSignal; ValueError when malformed, or a SIMPLE level outside 0..3."""
    name = str(signal.get("signal_name", ""))
    raw_intervals = signal.get("intervals") or []
    if not isinstance(raw_intervals, list) or not raw_intervals:
        raise ValueError(f"event {event_id}: signal {name or number} has no intervals")
    intervals: list[Interval] = []
    for index, raw in enumerate(raw_intervals):
        what = f"event {event_id} signal {name or number} interval {index}"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{what}: not a structure")
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
        if name.upper() == SIMPLE and level not in SIMPLE_LEVELS:
            raise ValueError(f"{what}: SIMPLE level {payload!r} is not one of 0, 1, 2, 3")
        end = start + duration if duration > timedelta(0) else None
        intervals.append(Interval(start, end, level))
        cursor = end
    intervals.sort(key=lambda i: i.start)
    # An open-ended interval that is followed by another ends where the next one starts.
    intervals = [replace(i, end=intervals[n + 1].start) if i.end is None and n + 1 < len(intervals) else i
                 for n, i in enumerate(intervals)]
    return Signal(name=name, type=str(signal.get("signal_type", "") or ""), intervals=tuple(intervals))


# ---------------------------------------------------------------------------------------------
# Persistence form (JSON-able), so the schedule survives a restart without the VTN


def _ts(value: Optional[datetime]) -> Optional[float]:
    return value.timestamp() if value is not None else None


def _dt(value: Optional[float]) -> Optional[datetime]:
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def event_to_dict(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id, "modification_number": event.modification_number,
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
    """Inverse of event_to_dict; ValueError/KeyError/TypeError on a damaged record."""
    return Event(
        event_id=str(data["event_id"]), modification_number=int(data["modification_number"]),
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

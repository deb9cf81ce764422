"""The OpenADR 2.0b side of events: openleadr's event dicts -> the core's Distribution, and the core's
outcomes -> oadrCreatedEvent answers (optType and response code per event).

The core (adrgw/core/) holds the schedule and decides targeting, randomization and opt state on
protocol-neutral types; everything that knows 2.0b's message shapes is here:

* ``event_from_oadr``: openleadr's parsed oadrEvent -> core Event (a modificationNumber becomes a
  ``Revision.number``); anything malformed is one ValueError naming what is wrong;
* ``target_values``: the eiTarget criteria openleadr parsed, by kind;
* ``EventAnswers``: one oadrDistributeEvent through the core's EventSink, and the answers: accepted
  -> optIn 200, opted out -> optOut 200, not targeted -> optOut 462 (Target Mismatch), malformed ->
  optOut 400.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import AbstractSet, Any, Mapping, Optional, Sequence

from adrgw.core.model import Distribution, EventOutcome, Malformed, Outcome, TargetCriteria
from adrgw.core.ports import EventSink
from adrgw.core.revision import Revision
from adrgw.core.schedule import SIMPLE, SIMPLE_LEVELS, Event, Interval, Signal
from adrgw.core.targeting import IDENTITY_KINDS

# The not-targeted line keeps the logger it always had (the log format names it).
log = logging.getLogger("adrgw.events")

# OpenADR 2.0b response codes of an oadrCreatedEvent answer.
OK = 200
EVENT_REFUSED = 400  # an event we could not understand
TARGET_MISMATCH = 462  # "Target Mismatch" (openleadr enums.STATUS_CODES.TARGET_MISMATCH)

OptResponse = tuple[str, int, str, int]  # event_id, modification_number, opt_type, response_code

# The core's outcome -> (optType, responseCode).
ANSWERS: dict[Outcome, tuple[str, int]] = {
    Outcome.ACCEPTED: ("optIn", OK),
    Outcome.OPTED_OUT: ("optOut", OK),
    Outcome.NOT_TARGETED: ("optOut", TARGET_MISMATCH),
    Outcome.MALFORMED: ("optOut", EVENT_REFUSED),
}


def modification_number(revision: Revision) -> int:
    """The 2.0b modificationNumber of a revision this adapter made (``Revision.number``)."""
    return int(revision.key[0]) if revision.key else 0


def answer(outcome: EventOutcome) -> OptResponse:
    """One core outcome as a 2.0b eventResponse (event_id, modificationNumber, optType, code)."""
    opt, code = ANSWERS[outcome.outcome]
    return (outcome.event_id, modification_number(outcome.revision), opt, code)


def distribution_from_oadr(raw_events: Sequence[Any], signal_name: Optional[str] = None) -> Distribution:
    """Every event of one oadrDistributeEvent as the core's Distribution (never raises)."""
    events: list[Event] = []
    malformed: list[Malformed] = []
    targets: dict[str, TargetCriteria] = {}
    for raw in raw_events:
        descriptor = raw.get("event_descriptor") if isinstance(raw, dict) else None
        event_id = str(descriptor.get("event_id")) if isinstance(descriptor, dict) else None
        mod = descriptor.get("modification_number", 0) if isinstance(descriptor, dict) else 0
        if event_id and isinstance(raw, dict):
            targets[event_id] = target_values(raw)
        try:
            events.append(event_from_oadr(raw, signal_name))
        except ValueError as exc:
            malformed.append(Malformed(event_id or None, Revision.number(mod if isinstance(mod, int) else 0),
                                       str(exc)))
    return Distribution(tuple(events), tuple(malformed), targets)


class EventAnswers:
    """One oadrDistributeEvent through the core: parse, ``EventSink.apply``, answer per event.

    Also logs, once while the VTN keeps listing it, an event that is not targeted at this VEN (with
    its eiTarget: the operator needs to see which VEN it was meant for)."""

    def __init__(self, sink: EventSink, signal_name: Optional[str] = None) -> None:
        """``signal_name``: [points] signal_name, the signal that drives ADR-Event-Level (default SIMPLE)."""
        self.sink = sink
        self.signal_name = signal_name
        self._not_ours_logged: set[tuple[str, str]] = set()

    async def distribute(self, raw_events: list[Any]) -> list[OptResponse]:
        """Apply one oadrDistributeEvent; the answer for each event, in the order the VTN listed them."""
        distribution = distribution_from_oadr(raw_events, self.signal_name)
        outcomes = await self.sink.apply(distribution)
        foreign: set[tuple[str, str]] = set()
        for outcome in outcomes:
            if outcome.outcome is not Outcome.NOT_TARGETED:
                continue
            key = (outcome.event_id, outcome.revision.label)
            foreign.add(key)
            if key not in self._not_ours_logged:
                self._not_ours_logged.add(key)
                log.warning("event %s (modification %s) is not targeted at this VEN (eiTarget: %s): not applied, "
                            "answered optOut (462)", outcome.event_id, outcome.revision.label,
                            describe(distribution.targets.get(outcome.event_id, {})))
        # "Logged once" while the VTN keeps listing it; forgetting the others keeps the set bounded.
        self._not_ours_logged &= foreign
        order = {_event_id(raw): n for n, raw in reversed(list(enumerate(raw_events)))}
        return [answer(o) for o in sorted(outcomes, key=lambda o: order.get(o.event_id, len(order)))]


def _event_id(raw: Any) -> Optional[str]:
    descriptor = raw.get("event_descriptor") if isinstance(raw, dict) else None
    return str(descriptor.get("event_id")) if isinstance(descriptor, dict) else None


def target_values(raw_event: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """The identity criteria of an event's eiTarget, by kind (openleadr's parsed dict).

    openleadr gives ``targets`` as a list of one-key dicts (``{'ven_id': 'v1'}``), and for some
    messages ``targets_by_type`` (kind -> list); both are read. Anything malformed counts as no
    criterion (the hostile-input rule: it cannot make us act on an event meant for others, but it
    cannot make us ignore one either; the rest of the event is still validated).
    """
    found: dict[str, set[str]] = {}

    def add(kind: Any, value: Any) -> None:
        if kind in IDENTITY_KINDS and isinstance(value, (str, int)) and str(value).strip():
            found.setdefault(kind, set()).add(str(value).strip())

    targets = raw_event.get("targets") if isinstance(raw_event, Mapping) else None
    if isinstance(targets, Mapping):
        targets = [targets]
    if isinstance(targets, list):
        for target in targets:
            if isinstance(target, Mapping):
                for kind, value in target.items():
                    for item in value if isinstance(value, list) else [value]:
                        add(kind, item)
    by_type = raw_event.get("targets_by_type") if isinstance(raw_event, Mapping) else None
    if isinstance(by_type, Mapping):
        for kind, values in by_type.items():
            for item in values if isinstance(values, list) else [values]:
                add(kind, item)
    return {kind: frozenset(values) for kind, values in found.items()}


def describe(criteria: Mapping[str, AbstractSet[str]]) -> str:
    """For the log line: ``venID ven-9, groupID north``."""
    names = {"ven_id": "venID", "resource_id": "resourceID", "group_id": "groupID", "group_name": "groupName",
             "party_id": "partyID"}
    return ", ".join(f"{names[k]} {v}" for k in IDENTITY_KINDS for v in sorted(criteria.get(k, ())))


# ---------------------------------------------------------------------------------------------
# From openleadr's parsed event dict to a core Event (openleadr gives Python types: datetimes,
# timedeltas, numbers; the XML was validated against the 2.0b schema before)


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
    return Event(event_id=event_id, revision=Revision.number(modification_number),
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

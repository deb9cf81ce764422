"""The OpenADR 3.1 side of events: the VTN's event objects -> the core's Distribution (pure).

The core (adrgw/core/) holds the schedule and decides targeting, randomization and opt state; this
module only reads 3.1 objects into its types, as adrgw/openadr/events.py does for 2.0b:

* timing: an interval's start and duration come from its own intervalPeriod, else from the event's
  (the first interval starts at the event's start, each next one where the previous ended); a start
  of 0001-01-01 ("now", User Guide) is the event's createdDateTime, so it stays put across re-reads;
  a duration of P9999Y, PT0S or none is open-ended (an open interval followed by another ends where
  that one starts);
* payloads: one core Signal per payloadType (its name; 3.1 has no signal type); the level's one
  (SIMPLE, or ``[points] signal_name``) drives ADR-Event-Level; a SIMPLE value outside 0..3, or a
  level payload that is not one number, makes the event malformed; a non-numeric or multi-valued
  payload of another type is not put on a point (a point shows one number);
* priority: 3.1 says a lower number wins and 0 is the highest; the core says a lower non-zero number
  wins and 0 is the lowest: 3.1 ``p`` is the core's ``p + 1``, none is the core's 0;
* randomizeStart of the event's intervalPeriod is the core's ``start_after``;
* revision: modificationDateTime (a newer one replaces the event);
* targets: 3.1 targets are strings. The adapter knows what the core cannot (our venName, the
  targets the VTN gave our VEN and resource objects): a match there makes the event ours; otherwise
  the strings go to the core as venID / resourceID criteria (our VEN object id, our resource names).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import AbstractSet, Any, Mapping, Optional, Sequence

from adrgw.core.model import Distribution, Malformed, TargetCriteria
from adrgw.core.revision import Revision
from adrgw.core.schedule import SIMPLE, SIMPLE_LEVELS, Event, Interval, Signal
from adrgw.openadr3 import wire
from adrgw.openadr3.wire import Invalid


def revision(raw: Mapping[str, Any]) -> Revision:
    """modificationDateTime as a Revision (0 when it cannot be read: a malformed event's)."""
    try:
        modified = wire.date_time(raw.get("modificationDateTime"), "modificationDateTime")
        created = wire.date_time(raw.get("createdDateTime"), "createdDateTime")
    except Invalid:
        return Revision((0,), "?")
    return Revision((modified.timestamp(),), wire.iso(modified), modified > created)


def timeline(raw: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], datetime, Optional[datetime]]]:
    """Every interval of a validated event with its start and end (None: open-ended), sorted by
    start, an open interval followed by another ending where that one starts. Invalid when an
    interval has no start."""
    created = wire.date_time(raw["createdDateTime"], "createdDateTime")
    period = raw.get("intervalPeriod") or {}
    cursor: Optional[datetime] = wire.date_time(period["start"], "intervalPeriod start", now=created) \
        if wire.present(period, "start") else None
    default: Optional[timedelta] = wire.duration(period["duration"], "intervalPeriod duration") \
        if wire.present(period, "duration") else None
    out: list[tuple[Mapping[str, Any], datetime, Optional[datetime]]] = []
    for n, interval in enumerate(raw.get("intervals") or []):
        own = interval.get("intervalPeriod") or {}
        start = wire.date_time(own["start"], "start", now=created) if wire.present(own, "start") else cursor
        if start is None:
            raise Invalid(f"interval {n} has no start (neither its own nor the event's intervalPeriod)")
        length = wire.duration(own["duration"], "duration") if wire.present(own, "duration") else default
        end = start + length if length else None
        out.append((interval, start, end))
        cursor = end
    out.sort(key=lambda item: item[1])
    return [(iv, start, out[n + 1][1] if end is None and n + 1 < len(out) else end)
            for n, (iv, start, end) in enumerate(out)]


def event_from_oa3(raw: Mapping[str, Any], level_signal: Optional[str] = None) -> Event:
    """A validated 3.1 event as a core Event; Invalid names what is wrong."""
    event_id = str(raw["id"])
    level_name = (level_signal or SIMPLE).upper()
    spans = timeline(raw)
    signals: dict[str, list[Interval]] = {}
    for interval, start, end in spans:
        for payload in interval.get("payloads") or []:
            kind = str(payload["type"]).upper()
            values = payload["values"]
            numeric = len(values) == 1 and isinstance(values[0], (int, float)) and not isinstance(values[0], bool)
            if kind == level_name and not numeric:
                raise Invalid(f"interval {interval['id']}: {kind} payload {str(values)[:40]} is not one number")
            if not numeric:
                continue  # a string, boolean, point or curve cannot be shown on one analogValue
            value = float(values[0])
            if kind == SIMPLE and value not in SIMPLE_LEVELS:
                raise Invalid(f"interval {interval['id']}: SIMPLE level {values[0]!r} is not one of 0, 1, 2, 3")
            signals.setdefault(kind, []).append(Interval(start, end, value))
    parsed = tuple(Signal(name, "", tuple(sorted(ivs, key=lambda i: i.start))) for name, ivs in signals.items())
    level = next((s for s in parsed if s.name == level_name), None)
    span = tuple(Interval(start, end, 0.0) for _, start, end in spans)
    period = raw.get("intervalPeriod") or {}
    randomize = wire.duration(period["randomizeStart"], "randomizeStart") if wire.present(period, "randomizeStart") \
        else None
    priority = raw.get("priority")
    return Event(event_id=event_id, revision=revision(raw),
                 intervals=level.intervals if level is not None else span,
                 priority=int(priority) + 1 if priority is not None else 0,
                 signal_name=level.name if level is not None else (parsed[0].name if parsed else level_name),
                 start_after=randomize or timedelta(0), signals=parsed, has_level=level is not None)


def criteria(raw: Mapping[str, Any], mine: AbstractSet[str]) -> TargetCriteria:
    """The event's targets for the core: none, or one we know is ours (``mine``: our venName and the
    targets of our VEN and resource objects) -> no criteria; else the strings as venID/resourceID."""
    found = frozenset(t for t in raw.get("targets") or [] if isinstance(t, str))
    if not found or found & mine:
        return {}
    return {"ven_id": found, "resource_id": found}


def distribution(raw_events: Sequence[Any], level_signal: Optional[str] = None,
                 mine: AbstractSet[str] = frozenset()) -> Distribution:
    """Every visible event of the followed programs as the core's Distribution (never raises)."""
    events: list[Event] = []
    malformed: list[Malformed] = []
    targets: dict[str, TargetCriteria] = {}
    for raw in raw_events:
        event_id = raw.get("id") if isinstance(raw, Mapping) else None
        event_id = event_id if isinstance(event_id, str) and wire.OBJECT_ID.match(event_id) else None
        try:
            checked = wire.event(raw)
            event = event_from_oa3(checked, level_signal)
        except (Invalid, KeyError, TypeError, AttributeError, OverflowError, ValueError) as exc:
            malformed.append(Malformed(event_id, revision(raw) if isinstance(raw, Mapping) else Revision(),
                                       f"event {event_id or '?'}: {exc}"))
            continue
        targets[event.event_id] = criteria(checked, mine)
        events.append(event)
    return Distribution(tuple(events), tuple(malformed), targets)


def spans(raw: Mapping[str, Any]) -> list[tuple[datetime, Optional[datetime]]]:
    """The (start, end) of each interval of a validated event, sorted (for report schedules)."""
    return [(start, end) for _, start, end in timeline(raw)]


__all__ = ["criteria", "distribution", "event_from_oa3", "revision", "spans", "timeline"]

"""The OpenADR 3.1 side of events: the VTN's event objects -> the core's Distribution (pure).

The core (adrgw/core/) holds the schedule and decides targeting, randomization and opt state; this
module only reads 3.1 objects into its types, as adrgw/openadr/events.py does for 2.0b:

* timing: an interval's start and duration come from its own intervalPeriod, else from the event's
  (the first interval starts at the event's start, each next one where the previous ended, in list
  order: the spec says an interval id is "Not a sequence number"); a start of 0001-01-01 ("now",
  User Guide) is the event's createdDateTime, so it stays put across re-reads; a duration of P9999Y,
  PT0S or none is open-ended (an open interval followed by another ends where that one starts; one
  that would follow it without a start of its own never starts: the event is malformed). The event's
  ``duration`` "May be used to loop intervals. See User Guide.": the 3.1.0 spec defines no rule for
  that (how many loops, from where, a partial last one), so intervals are neither looped nor cut;
* payloads: one core Signal per payloadType (its name; 3.1 has no signal type); the level's one
  (SIMPLE, or ``[points] signal_name``) drives ADR-Event-Level; a SIMPLE value outside 0..3, or a
  level payload that is not one number, makes the event malformed; a non-numeric or multi-valued
  payload of another type is not put on a point (a point shows one number);
* priority: 3.1 says a lower number wins and 0 is the highest; the core says a lower non-zero number
  wins and 0 is the lowest: 3.1 ``p`` is the core's ``p + 1``, none is the core's 0;
* randomizeStart of the event's intervalPeriod is the core's ``start_after``. An interval's own one
  overrides it for that interval, but the core has one random offset per event, shifting every
  interval alike (shifting one interval alone would reorder or overlap them): ``start_after`` is the
  largest randomizeStart any interval gets (its own, else the event's), and the link logs once per
  event version that a per-interval value was applied event-wide (``interval_randomize_note``);
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
    previous: Optional[Mapping[str, Any]] = None
    for n, interval in enumerate(raw.get("intervals") or []):
        own = interval.get("intervalPeriod") or {}
        start = wire.date_time(own["start"], "start", now=created) if wire.present(own, "start") else cursor
        if start is None and previous is not None:
            raise Invalid(f"interval {interval.get('id', n)} follows open-ended interval {previous.get('id')} "
                          "and has no start of its own: it never starts")
        if start is None:
            raise Invalid(f"interval {n} has no start (neither its own nor the event's intervalPeriod)")
        length = wire.duration(own["duration"], "duration") if wire.present(own, "duration") else default
        end = start + length if length else None
        out.append((interval, start, end))
        cursor, previous = end, interval
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
    randomize = max(randomize_starts(raw), default=None)
    priority = raw.get("priority")
    return Event(event_id=event_id, revision=revision(raw),
                 intervals=level.intervals if level is not None else span,
                 priority=int(priority) + 1 if priority is not None else 0,
                 signal_name=level.name if level is not None else (parsed[0].name if parsed else level_name),
                 start_after=randomize or timedelta(0), signals=parsed, has_level=level is not None)


def _randomize(period: Mapping[str, Any], what: str) -> Optional[timedelta]:
    """An intervalPeriod's randomizeStart (None: absent; P9999Y, "for ever", counts as none)."""
    if not wire.present(period, "randomizeStart"):
        return None
    return wire.duration(period["randomizeStart"], what) or timedelta(0)


def randomize_starts(raw: Mapping[str, Any]) -> list[timedelta]:
    """The randomizeStart each interval of a validated event gets: its own, else the event's, else 0."""
    default = _randomize(raw.get("intervalPeriod") or {}, "randomizeStart") or timedelta(0)
    out = []
    for interval in raw.get("intervals") or []:
        own = _randomize(interval.get("intervalPeriod") or {}, "interval randomizeStart")
        out.append(default if own is None else own)
    return out


def interval_randomize_note(raw: Mapping[str, Any]) -> Optional[str]:
    """What to log (once per event version) when intervals of a validated event have a randomizeStart
    of their own: the core applies one offset to the whole event; None when none has, or when the
    event is malformed (never raises: the link calls it on what the VTN sent)."""
    try:
        own = [str(iv.get("id")) for iv in raw.get("intervals") or []
               if wire.present(iv.get("intervalPeriod") or {}, "randomizeStart")]
        widest = max(randomize_starts(raw), default=timedelta(0)) if own else None
    except (Invalid, TypeError, AttributeError, ValueError, OverflowError):
        return None
    if widest is None:
        return None
    seconds = f"{widest.total_seconds():.3f}".rstrip("0").rstrip(".")
    return (f"event {raw.get('id')}: randomizeStart of intervals {', '.join(own)} applied event-wide (one random "
            f"start offset in [0, PT{seconds}S] shifts all its intervals)")


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


__all__ = ["criteria", "distribution", "event_from_oa3", "interval_randomize_note", "randomize_starts", "revision",
           "spans", "timeline"]

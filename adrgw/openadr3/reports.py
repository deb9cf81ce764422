"""OpenADR 3.1 USAGE reports, pure: which events ask for what, when each report is due, its body.

An event asks for a report with a reportDescriptor. This VEN answers those whose payloadType is
USAGE and whose readingType is DIRECT_READ or none, with the samples of the meter (and of each
``[report.NAME]`` point whose resource the descriptor's targets name). The descriptor's schedule, as
the 3.1.0 schema describes its fields, counted in the event's intervals:

* ``startInterval`` (default -1): the interval at whose end the first report is made; -1, or past the
  last interval, means the end of the last interval;
* ``frequency`` (default -1 = numIntervals): intervals between two reports; ``repeat`` (default 1):
  how many reports, -1 = one every ``frequency`` intervals until the event's last interval;
* ``numIntervals`` (default -1 = all): how many intervals the first report looks back over
  (``historical`` true, the default); each later report adds the intervals since the previous one;
* ``historical`` false asks for a forecast: this VEN measures, it does not forecast, so it makes no
  such report (logged once by the service).

The first report is POSTed; every later one is a PUT of the same report object carrying every sample
from the plan's start to its own end ("as intervals accrue"). Samples are the meter's at their cadence
instants: an instant the meter did not answer is absent, never filled in. Intervals of an event that
never end (P9999Y) give no report instant past them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from adrgw.openadr3 import wire

USAGE = "USAGE"
DIRECT_READ = "DIRECT_READ"


@dataclass(frozen=True)
class Plan:
    """The reports one reportDescriptor of one event asks for (epoch seconds)."""

    plan_id: str  # eventID/descriptor index
    event_id: str
    program_id: str
    report_name: str  # unique per VEN and plan: how a report lost in a crash is found again
    resources: tuple[tuple[str, str], ...]  # (resourceName, sample stream: '' the meter, NAME a [report.NAME])
    lo: float  # the first instant reported
    due: tuple[float, ...]  # the end of each report's span (exclusive), ascending; sent then
    units: Optional[str] = None

    @property
    def hi(self) -> float:
        return self.due[-1] if self.due else self.lo

    def to_json(self) -> str:
        return json.dumps({"plan_id": self.plan_id, "event_id": self.event_id, "program_id": self.program_id,
                           "report_name": self.report_name, "resources": [list(r) for r in self.resources],
                           "lo": self.lo, "hi": self.hi, "due": list(self.due), "units": self.units})

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        return cls(str(data["plan_id"]), str(data["event_id"]), str(data["program_id"]), str(data["report_name"]),
                   tuple((str(a), str(b)) for a, b in data["resources"]), float(data["lo"]),
                   tuple(float(x) for x in data["due"]), data.get("units"))


def asks_usage(descriptor: Mapping[str, Any]) -> bool:
    """A descriptor this VEN answers: USAGE measured directly (readingType DIRECT_READ or none)."""
    reading = descriptor.get("readingType")
    return str(descriptor.get("payloadType", "")).upper() == USAGE and (reading is None or reading == DIRECT_READ)


def schedule(spans: Sequence[tuple[datetime, Optional[datetime]]],
             descriptor: Mapping[str, Any]) -> Optional[tuple[float, tuple[float, ...]]]:
    """(first instant, report ends) for the event's interval ``spans``; None when there is nothing
    to report (no intervals, a forecast, the report instants are open-ended)."""
    n = len(spans)
    if n == 0 or descriptor.get("historical", True) is False:
        return None
    start = int(descriptor.get("startInterval", -1))
    count = int(descriptor.get("numIntervals", -1))
    frequency = int(descriptor.get("frequency", -1))
    repeat = int(descriptor.get("repeat", 1))
    first = n - 1 if start < 0 or start >= n else start
    step = frequency if frequency > 0 else (count if count > 0 else n)
    ends: list[float] = []
    k = 0
    while repeat < 0 or k < max(repeat, 1):
        index = first + k * step
        if index >= n:
            break
        end = spans[index][1]
        if end is None:
            break  # an open-ended interval has no end to report at
        ends.append(end.timestamp())
        k += 1
        if repeat == 0:
            break
    if not ends:
        return None
    lo_index = 0 if count <= 0 else max(0, first - count + 1)
    return spans[lo_index][0].timestamp(), tuple(ends)


def plans_for(event: Mapping[str, Any], spans: Sequence[tuple[datetime, Optional[datetime]]], ven_name: str,
              meter_resource: str, points: Mapping[str, str], units: Optional[str]) -> list[Plan]:
    """Every plan a validated event asks for. ``points``: [report.NAME] resource name -> NAME."""
    out: list[Plan] = []
    for index, descriptor in enumerate(event.get("reportDescriptors") or []):
        if not asks_usage(descriptor):
            continue
        when = schedule(spans, descriptor)
        if when is None:
            continue
        named = set(descriptor.get("targets") or [])
        resources = [(meter_resource, "")] if not named or meter_resource in named else []
        resources += [(name, stream) for name, stream in points.items() if name in named]
        if not resources:
            resources = [(meter_resource, "")]
        plan_id = f"{event['id']}/{index}"
        out.append(Plan(plan_id, str(event["id"]), str(event["programID"]), f"{ven_name} {plan_id}"[:128],
                        tuple(resources), when[0], when[1], units))
    return out


def due_now(plan: Plan, accepted: int, now: float, settle: float) -> Optional[int]:
    """The report to send now: the latest one due (a report carries everything before its end, so
    after an outage one PUT catches up), None when none is due."""
    latest = None
    for k in range(accepted, len(plan.due)):
        if plan.due[k] + settle <= now:
            latest = k
    return latest


def next_due(plan: Plan, accepted: int, settle: float) -> Optional[float]:
    return plan.due[accepted] + settle if accepted < len(plan.due) else None


def body(plan: Plan, hi: float, samples: Mapping[str, Mapping[float, float]], cadence: float,
         ven_name: str) -> dict[str, Any]:
    """The report object: every sample of ``plan.resources`` in [plan.lo, hi), one interval each
    (its id counts cadence steps from the plan's start, so it is the same in every PUT)."""
    resources = []
    for name, stream in plan.resources:
        values = samples.get(stream, {})
        intervals = [{"id": int(round((ts - plan.lo) / cadence)),
                      "intervalPeriod": {"start": wire.iso(_dt(ts)), "duration": wire.iso_duration(cadence)},
                      "payloads": [{"type": USAGE, "values": [value]}]}
                     for ts, value in sorted(values.items()) if plan.lo <= ts < hi]
        resources.append({"resourceName": name, "intervals": intervals})
    return wire.compact({
        "eventID": plan.event_id, "programID": plan.program_id, "clientName": ven_name,
        "reportName": plan.report_name,
        "payloadDescriptors": [{"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": USAGE,
                                "readingType": DIRECT_READ, "units": plan.units}],
        "resources": resources,
    })


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)

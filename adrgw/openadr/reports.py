"""The OpenADR 2.0b report service as pure logic: offered reports, the table of accepted report
requests, and each request's schedule. No I/O and no clock reads: time is passed in (epoch seconds).

Why pure: which intervals a report carries and when it is due decide whether data is lost or sent
twice, so they are tested on their own (unit + hypothesis tests) apart from HTTP and sqlite.

Rules (OpenADR 2.0b section 8, as implemented; docs/delivery.md says the same):
* an oadrReportRequest names a reportSpecifierID we offered and rIDs of that report; anything else
  refuses the whole oadrCreateReport (code 452 for an unknown rID, 461 for an unknown specifier,
  454 for an unusable duration) and changes nothing;
* a request runs until cancelled or, with a reportInterval of non-zero duration, until its end;
  a new request with the same reportSpecifierID replaces the running one (and continues from its
  cursor: what the old one had not delivered is still owed);
* intervals lie on the granularity grid (multiples of the granularity from the epoch; the meter
  cadence is the finest granularity and a granularity is rounded up to a multiple of the cadence);
  each carries the sample taken at its instant, none when that read failed (never averaged, never
  filled in);
* a report is due at each multiple of reportBackDuration (from the reportInterval start, or the
  epoch) and carries every interval since the last delivered one, before the due time, inside the
  reportInterval; PT0S reportBackDuration means "as soon as each interval exists" (= granularity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Iterator, Optional, Sequence

# OpenADR 2.0b response codes (specification table "Response codes").
OK = 200
INVALID_ID = 452
INVALID_DATA = 454
REPORT_NOT_SUPPORTED = 461

USAGE, HISTORY, STATUS = "usage", "history", "status"
# A request without reportInterval starts at the end of what its specifier last delivered;
# nothing delivered yet: at the oldest kept sample.
FROM_START = -math.inf
# Wake this long after a report time: epoch seconds (~1.8e9) carry ~2e-7 s of float error, so
# waking exactly "at" it could land a hair early and find nothing due.
WAKE_MARGIN = 1e-4


@dataclass(frozen=True)
class OfferedReport:
    """One metadata report we offer in oadrRegisterReport: its specifier, kind and data points
    (rID -> sample stream, '' for [meter], NAME for [report.NAME], status item name for STATUS)."""

    specifier_id: str
    kind: str
    streams: dict[str, str]


@dataclass(frozen=True)
class ReportRequest:
    """One accepted oadrReportRequest, in seconds."""

    request_id: str
    specifier_id: str
    kind: str
    r_ids: tuple[str, ...]
    granularity: float  # effective: >= cadence, a multiple of it
    back: float  # reportBackDuration (effective: > 0)
    start: Optional[float] = None  # reportInterval dtstart
    end: Optional[float] = None  # reportInterval end; None: until cancelled
    final: bool = False  # cancelled with reportToFollow: one last report, then it ends

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "specifier_id": self.specifier_id, "kind": self.kind,
                "r_ids": list(self.r_ids), "granularity": self.granularity, "back": self.back,
                "start": self.start, "end": self.end, "final": self.final}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ReportRequest":
        return cls(str(data["request_id"]), str(data["specifier_id"]), str(data["kind"]),
                   tuple(str(r) for r in data["r_ids"]), float(data["granularity"]), float(data["back"]),
                   None if data.get("start") is None else float(data["start"]),
                   None if data.get("end") is None else float(data["end"]), bool(data.get("final", False)))


@dataclass(frozen=True)
class Refusal:
    code: int
    description: str


def _seconds(value: Any, what: str) -> float:
    if value is None:
        return 0.0
    if not isinstance(value, timedelta):
        raise ValueError(what)
    seconds = value.total_seconds()
    if seconds < 0 or seconds > 366 * 86400:
        raise ValueError(what)
    return seconds


def effective_granularity(requested: float, cadence: float) -> float:
    """The meter cadence is the finest granularity; a coarser one is rounded up to a multiple of the
    cadence so that every interval instant is a sampling instant."""
    if requested <= cadence:
        return cadence
    return math.ceil(requested / cadence - 1e-9) * cadence


def parse_request(raw: Any, offered: Sequence[OfferedReport], cadence: float) -> ReportRequest | Refusal:
    """One oadrReportRequest (openleadr's parsed dict) -> a ReportRequest, or why it is refused."""
    if not isinstance(raw, dict):
        return Refusal(INVALID_DATA, "malformed oadrReportRequest")
    request_id = raw.get("report_request_id")
    spec = raw.get("report_specifier")
    if not isinstance(request_id, str) or not request_id.strip() or not isinstance(spec, dict):
        return Refusal(INVALID_DATA, "oadrReportRequest without reportRequestID or reportSpecifier")
    specifier_id = spec.get("report_specifier_id")
    report = next((o for o in offered if o.specifier_id == specifier_id), None)
    if report is None:
        return Refusal(REPORT_NOT_SUPPORTED, f"reportSpecifierID {specifier_id!r} was never offered")
    payloads = spec.get("specifier_payloads") or []
    if not isinstance(payloads, list):
        payloads = [payloads]
    r_ids = []
    for p in payloads:
        r_id = p.get("r_id") if isinstance(p, dict) else None
        if not isinstance(r_id, str) or r_id not in report.streams:
            return Refusal(INVALID_ID, f"rID {r_id!r} is not a data point of {specifier_id}")
        if r_id not in r_ids:
            r_ids.append(r_id)
    if not r_ids:
        return Refusal(INVALID_ID, f"no rID requested from {specifier_id}")
    try:
        granularity = effective_granularity(_seconds(spec.get("granularity"), "granularity"), cadence)
        back = _seconds(spec.get("report_back_duration"), "reportBackDuration") or granularity
        start = end = None
        interval = spec.get("report_interval")
        if interval is not None:
            if not isinstance(interval, dict) or not isinstance(interval.get("dtstart"), datetime) \
                    or interval["dtstart"].tzinfo is None:
                raise ValueError("reportInterval")
            start = interval["dtstart"].timestamp()
            duration = _seconds(interval.get("duration"), "reportInterval duration")
            end = start + duration if duration > 0 else None  # PT0S: until cancelled
    except ValueError as exc:
        return Refusal(INVALID_DATA, f"unusable {exc} in request {request_id}")
    return ReportRequest(request_id.strip(), str(specifier_id), report.kind, tuple(r_ids), granularity, back,
                         start, end)


# ---------------------------------------------------------------------------------------------
# The table of running requests


@dataclass
class RequestTable:
    """The running report requests by reportRequestID, with each one's cursor: every interval
    instant before the cursor has been delivered (acknowledged by the VTN)."""

    requests: dict[str, ReportRequest] = field(default_factory=dict)
    cursors: dict[str, float] = field(default_factory=dict)

    def pending(self) -> list[str]:
        """reportRequestIDs for oadrPendingReports: exactly the running requests."""
        return sorted(self.requests)

    def accept(self, new: Sequence[ReportRequest], now: float,
               delivered: dict[str, float]) -> list[tuple[Optional[str], ReportRequest, float]]:
        """Start ``new`` (already validated). Returns (replaced request id or None, request, cursor).

        ``delivered``: per reportSpecifierID, the end of what it last delivered (durable watermark).
        A request replacing one with the same specifier (or repeating a request id) inherits its
        cursor; otherwise it starts at its reportInterval, or for usage at the watermark (nothing
        delivered yet: FROM_START, the oldest kept sample), or for history and status now.
        """
        out = []
        for request in new:
            replaced = next((rid for rid, r in self.requests.items()
                             if r.specifier_id == request.specifier_id or rid == request.request_id), None)
            if replaced is not None:
                cursor = self.cursors.pop(replaced)
                del self.requests[replaced]
                if request.start is not None:
                    cursor = max(cursor, request.start) if cursor > FROM_START else request.start
            elif request.start is not None:
                cursor = request.start
            elif request.kind == USAGE:
                cursor = delivered.get(request.specifier_id, FROM_START)
            else:
                cursor = now
            self.requests[request.request_id] = request
            self.cursors[request.request_id] = cursor
            out.append((replaced, request, cursor))
        return out

    def cancel(self, request_id: str, report_to_follow: bool) -> Optional[ReportRequest]:
        """Stop at once, or (reportToFollow) mark for one last report. None if not running."""
        request = self.requests.get(request_id)
        if request is None:
            return None
        if report_to_follow:
            self.requests[request_id] = replace(request, final=True)
            return self.requests[request_id]
        del self.requests[request_id]
        self.cursors.pop(request_id, None)
        return request

    def finish(self, request_id: str) -> None:
        self.requests.pop(request_id, None)
        self.cursors.pop(request_id, None)


# ---------------------------------------------------------------------------------------------
# One request's schedule


def instants(request: ReportRequest, lo: float, hi: float) -> Iterator[float]:
    """Interval instants of ``request`` in [lo, hi) and inside its reportInterval, lazily (a
    window may be long: callers stop early). ``lo`` must be finite."""
    g = request.granularity
    if request.start is not None:
        lo = max(lo, request.start)
    if request.end is not None:
        hi = min(hi, request.end)
    if hi <= lo or not math.isfinite(hi):
        return
    k = math.ceil(lo / g - 1e-9)
    while k * g < hi - 1e-9:
        yield round(k * g, 6)
        k += 1


def due_time(request: ReportRequest, now: float, settle: float) -> Optional[float]:
    """The end of the window that is due at ``now``: the latest report time whose data is complete
    (``settle`` seconds after it, so the read of the last instant has finished); None before the
    first one. A request being finalised (reportToFollow) is due now for everything sampled."""
    ready = now - settle
    if request.final:
        return ready if request.end is None else min(ready, request.end)
    anchor = request.start if request.start is not None else 0.0
    if ready < anchor:
        return None
    t = anchor + math.floor((ready - anchor) / request.back + 1e-9) * request.back
    if request.end is not None:
        # the end of the reportInterval is a report time too (the last one)
        t = request.end if ready >= request.end else min(t, request.end)
    return t


def next_wake(request: ReportRequest, now: float, settle: float) -> float:
    """When ``request`` is next due (epoch seconds), when nothing is due at ``now``."""
    if request.final:
        return now
    anchor = request.start if request.start is not None else 0.0
    base = now - settle
    steps = 1 if base < anchor else math.floor((base - anchor) / request.back + 1e-9) + 1
    t = anchor + steps * request.back
    if request.end is not None:
        t = min(t, request.end)
    return t + settle + WAKE_MARGIN


def window(request: ReportRequest, cursor: float, now: float, settle: float) -> Optional[tuple[float, float]]:
    """[cursor, end) to report now, or None when nothing is due."""
    t = due_time(request, now, settle)
    if t is None or t <= cursor:
        return None
    return cursor, t


def finished(request: ReportRequest, cursor: float) -> bool:
    """A request with a reportInterval end ends once everything up to the end was delivered."""
    return request.end is not None and cursor >= request.end


@dataclass(frozen=True)
class IntervalValue:
    """One report interval: the sample at ``instant`` of data point ``r_id``."""

    instant: float
    r_id: str
    value: float


def select(request: ReportRequest, streams: dict[str, str], samples: dict[str, dict[float, float]],
           lo: float, hi: float, limit: int) -> tuple[list[IntervalValue], float]:
    """The intervals of ``request`` in [lo, hi), from ``samples`` (stream -> {instant: value}), at
    most ``limit`` of them; and the cursor to commit once they were acknowledged (``hi``, or just
    after the last carried instant when the limit cut the window)."""
    out: list[IntervalValue] = []
    for t in instants(request, lo, hi):
        row = [IntervalValue(t, r_id, samples[streams[r_id]][t]) for r_id in request.r_ids
               if t in samples.get(streams.get(r_id, "\0"), {})]
        if out and len(out) + len(row) > limit:
            return out, out[-1].instant + 1e-3
        out.extend(row)
    return out, hi


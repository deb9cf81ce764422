"""Everything the status page and /healthz show, gathered from the running gateway into plain data.

Why a separate step: rendering (pages.py, timeline.py, chart.py) stays pure and unit-tested, and the
only I/O, two sqlite queries, runs on the Store's worker thread here. Collaborators are read through
the accessors of metrics.py where one exists, and defensively where another issue may add things
(ADR-Gateway-Status, a storage fault flag).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from adrgw.ops import metrics as M
from adrgw.ops.chart import ChartData, render_chart
from adrgw.core.health import Health, HealthFacts, verdict
from adrgw.persist.history import EventHistory, MeterHistory, oldest_queued
from adrgw.core.schedule import evaluate
from adrgw.ops.timeline import HISTORY, EventRecord

if TYPE_CHECKING:
    from adrgw.app import Gateway


@dataclass(frozen=True)
class WriteRow:
    name: str
    target: str  # address object instance property @priority
    priority: int
    holding: Optional[str]  # value confirmed in our slot now, None: relinquished (NULL)
    wanted: Optional[str]
    confirmed_at: Optional[datetime]
    failures: int


@dataclass(frozen=True)
class PageView:
    now: datetime
    device: str
    level: float
    status: str
    active_event: Optional[str]
    remaining: float
    start_in: float
    opt_out: bool
    vtn_online: bool
    registered: bool
    ven_id: Optional[str]
    registration_attempts: int
    last_poll: Optional[datetime]
    last_report: Optional[datetime]
    queue_depth: int
    oldest_queued: Optional[datetime]
    gateway_status: Optional[tuple[int, str]]
    health: Health
    events: list[EventRecord]
    chart: ChartData
    chart_window: tuple[float, float]
    writes: list[WriteRow]
    meter: str
    chart_svg: str = ""  # the chart, already drawn (ChartCache); empty: pages.py draws it
    store_error: Optional[str] = None  # the state store could not be read: no chart, said on the page


class ChartCache:
    """The last chart drawn, reused while nothing it shows has changed: the same samples, the same
    queue, the same events (they set the window) and the same cadence instant at its right edge.

    Why: a page is requested far more often than a sample arrives (a wall screen, several viewers,
    a flood); drawing 24 h of samples is the page's only real cost, and it runs on the shared loop.
    """

    def __init__(self) -> None:
        self.key: Optional[tuple[Any, ...]] = None
        self.value: Optional[tuple[list[tuple[float, float]], list[float], float, str]] = None


def storage_ok(gw: "Gateway") -> bool:
    """False during a storage fault episode (store.py: disk full, I/O error, read-only, removed)."""
    return bool(gw.store.healthy)


def health_facts(gw: "Gateway", oldest: Optional[datetime], store_readable: bool = True) -> HealthFacts:
    link = gw.link
    return HealthFacts(registered=M.registered(gw), last_contact=M.last_poll(gw), poll_period=link.poll_period,
                       meter_failures=gw.sampler.failures, oldest_queued=oldest,
                       report_period=gw.reports.report_period(),
                       storage_ok=store_readable and storage_ok(gw))


async def gather_health(gw: "Gateway", now: datetime) -> tuple[Health, Optional[datetime]]:
    """The verdict; a store that cannot even be queried makes it degraded (never an HTTP 500)."""
    try:
        oldest = await oldest_queued(gw.store, gw.samples.ledger)
    except Exception:  # noqa: BLE001 - sqlite, a closed store, a full disk: all mean "storage failing"
        return verdict(health_facts(gw, None, store_readable=False), now), None
    return verdict(health_facts(gw, oldest), now), oldest


def _value(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def write_rows(gw: "Gateway") -> list[WriteRow]:
    rows = []
    for w in M.writers(gw):
        applied = w.applied
        rows.append(WriteRow(name=w.target.name, target=str(w.target), priority=w.target.priority,
                             holding=_value(applied[0]) if applied is not None else "unknown",
                             wanted=_value(w.desired), confirmed_at=getattr(w, "confirmed_at", None),
                             failures=w.failures))
    return rows


async def gather(gw: "Gateway", meter_history: MeterHistory, event_history: EventHistory,
                 now: datetime, cache: Optional[ChartCache] = None) -> PageView:
    c = gw.controller
    s = gw.settings
    state = evaluate(c.events.values(), now, c.apply_test_events)
    interval = s.meter.interval
    t1 = math.ceil(now.timestamp() / interval) * interval  # the chart's right edge: the next cadence instant
    events = list(event_history.records.values())
    key = (meter_history.version, event_history.version, M.samples_delivered(gw), M.queue_depth(gw), t1)
    store_error: Optional[str] = None
    if cache is not None and cache.key == key and cache.value is not None:
        samples, queued, t0, svg = cache.value
    else:
        t0 = t1 - HISTORY.total_seconds()
        try:
            samples, queued = await meter_history.window(t0, t1)
        except Exception as exc:  # noqa: BLE001 - the page still shows everything else
            samples, queued = [], []
            store_error = f"{type(exc).__name__}: {exc}"
            cache = None
        # Less than 24 h to show (a new gateway): zoom to what there is, at least 10 minutes.
        known = [samples[0][0]] if samples else []
        known += [r.event.start.timestamp() for r in events
                  if r.event.start is not None and r.event.start.timestamp() >= t0]
        if known:
            t0 = max(t0, min(min(known) - 30.0, t1 - 600.0))
        svg = render_chart(ChartData(samples=samples, queued=queued, interval=interval, unit=s.meter.unit), t0, t1)
        if cache is not None:
            cache.key, cache.value = key, (samples, queued, t0, svg)
    health, oldest = await gather_health(gw, now)
    return PageView(
        now=now, device=f"{s.bacnet.device_name} (device {s.bacnet.device_id})", level=state.level,
        status=state.status, active_event=state.event_id, remaining=state.remaining, start_in=state.start_in,
        opt_out=c.opt_out, vtn_online=M.vtn_online(gw), registered=M.registered(gw), ven_id=gw.link.ven_id,
        registration_attempts=int(M.registration_attempts(gw)), last_poll=M.last_poll(gw),
        last_report=M.last_report(gw), queue_depth=int(M.queue_depth(gw)), oldest_queued=oldest,
        gateway_status=M.gateway_status(gw), health=health, events=events,
        chart=ChartData(samples=samples, queued=queued, interval=interval, unit=s.meter.unit),
        chart_window=(t0, t1), writes=write_rows(gw),
        meter=f"{s.meter.address} {s.meter.object} every {interval:g} s", chart_svg=svg, store_error=store_error)


__all__ = ["ChartCache", "PageView", "WriteRow", "gather", "gather_health", "health_facts"]

"""Everything the status page shows, as plain data: the gateway's facts (facts.py) and the page's
own histories (24 h of meter samples and events, persist/history.py).

Why a separate step: rendering (pages.py, timeline.py, chart.py) stays pure and unit-tested, and the
only I/O here, the chart's sqlite query, runs on the Store's worker thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from adrgw.core.health import Health
from adrgw.ops.chart import ChartData, render_chart
from adrgw.ops.facts import GatewayFacts
from adrgw.ops.timeline import HISTORY, EventRecord
from adrgw.persist.history import EventHistory, MeterHistory


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


def write_rows(facts: GatewayFacts) -> list[WriteRow]:
    return [WriteRow(name=w.name, target=w.target, priority=w.priority, holding=w.holding, wanted=w.wanted,
                     confirmed_at=w.confirmed_at, failures=w.failures) for w in facts.writes]


async def page_view(facts: GatewayFacts, meter_history: MeterHistory, event_history: EventHistory,
                    cache: Optional[ChartCache] = None) -> PageView:
    """The page of ``facts`` (gathered by facts.collect at ``facts.at``) with the page's own
    histories: the chart's samples are read from the store (on its thread), or reused from ``cache``."""
    now = facts.at
    labels = facts.labels
    state = facts.schedule
    interval = labels.meter_interval
    unit = labels.meter_unit
    t1 = math.ceil(now.timestamp() / interval) * interval  # the chart's right edge: the next cadence instant
    events = list(event_history.records.values())
    key = (meter_history.version, event_history.version, float(facts.samples.delivered), float(facts.queue_depth),
           t1)
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
        svg = render_chart(ChartData(samples=samples, queued=queued, interval=interval, unit=unit), t0, t1)
        if cache is not None:
            cache.key, cache.value = key, (samples, queued, t0, svg)
    status = facts.gateway_status
    return PageView(
        now=now, device=labels.device, level=state.level,
        status=state.status, active_event=state.event_id, remaining=state.remaining, start_in=state.start_in,
        opt_out=facts.opt_out, vtn_online=facts.link.online, registered=facts.link.registered,
        ven_id=facts.link.ven_id, registration_attempts=facts.link.attempts, last_poll=facts.link.last_contact,
        last_report=facts.last_delivery, queue_depth=facts.queue_depth, oldest_queued=facts.oldest_queued,
        gateway_status=(status, facts.gateway_status_text or "") if status is not None else None,
        health=facts.health(), events=events,
        chart=ChartData(samples=samples, queued=queued, interval=interval, unit=unit),
        chart_window=(t0, t1), writes=write_rows(facts),
        meter=f"{labels.meter_point} every {interval:g} s", chart_svg=svg, store_error=store_error)


__all__ = ["ChartCache", "PageView", "WriteRow", "page_view", "write_rows"]

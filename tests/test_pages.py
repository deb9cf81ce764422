"""Pure rendering of the status page: downsampling keeps gaps (hypothesis), chart, timeline, page.

No gateway here: data + now in, HTML/SVG out. The end-to-end page in a real browser is in
tests/test_web.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.ops.chart import GAP_INTERVALS, ChartData, downsample, render_chart, runs
from adrgw.core.health import Health
from adrgw.persist.history import EventHistory, MeterHistory, RETENTION
from adrgw.ops.pages import render_page
from adrgw.core.revision import Revision
from adrgw.core.schedule import Event, Interval
from adrgw.ops.statusview import PageView, WriteRow
from adrgw.persist.samples import EVERYTHING_OWED
from adrgw.persist.store import Store
from adrgw.core.telemetry import Sample
from adrgw.ops.timeline import EventRecord, render_event_table, render_timeline

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
T1 = NOW.timestamp()
T0 = T1 - 86400


# -- downsampling keeps gaps --------------------------------------------------------------------

@st.composite
def series(draw: st.DrawFn) -> tuple[list[tuple[float, float]], float]:
    """A cadence of 10 s with random holes (missing instants) and random values."""
    interval = 10.0
    n = draw(st.integers(0, 2000))
    present = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    values = draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n))
    start = T0 + draw(st.integers(0, 3600))
    points = [(start + k * interval, values[k]) for k in range(n) if present[k]]
    return points, interval


@settings(max_examples=100, deadline=None)
@given(series(), st.integers(10, 1200))
def test_downsampling_keeps_every_gap_and_invents_nothing(data: tuple[list[tuple[float, float]], float],
                                                          columns: int) -> None:
    points, interval = data
    gap = interval * GAP_INTERVALS
    original = runs(points, gap)
    drawn = downsample(points, gap, T0, T1, columns)
    # one drawn run per real run: no gap is joined, none is added
    assert len(drawn) == len(original)
    as_set = set(points)
    for run, real in zip(drawn, original):
        # every drawn point is a real sample, in time order, from this run only
        assert all(p in as_set for p in run)
        assert [p[0] for p in run] == sorted(p[0] for p in run)
        assert real[0][0] <= run[0][0] and run[-1][0] <= real[-1][0]
        # the run starts and ends exactly where the data does: the holes keep their true size
        assert run[0] == real[0] and run[-1] == real[-1]
        # peaks survive: the run's extremes are drawn
        assert min(v for _, v in real) in {v for _, v in run}
        assert max(v for _, v in real) in {v for _, v in run}
    # bounded: at most 4 points per pixel column (+ the column a run starts in)
    assert sum(len(r) for r in drawn) <= 4 * (columns + 1) * max(1, len(drawn))


def test_24_hours_of_samples_are_reduced_to_what_a_chart_can_show() -> None:
    points = [(T0 + 10 * k, float(k % 97)) for k in range(8640)]
    drawn = downsample(points, 15.0, T0, T1, 892)
    assert len(drawn) == 1 and len(drawn[0]) <= 4 * 893 and len(drawn[0]) < len(points) / 2


def test_chart_shows_a_gap_where_the_meter_was_silent_and_queued_samples() -> None:
    silent_from, silent_to = T1 - 3600, T1 - 1800
    points = [(t, 50.0 + (t % 7)) for t in range(int(T0), int(T1), 10) if not silent_from < t < silent_to]
    queued = [t for t, _ in points if t > T1 - 600]
    svg = render_chart(ChartData(points, queued, 10.0, "kW"), T0, T1)
    gaps = re.findall(r'<rect class="gap" data-from="(\d+)" data-to="(\d+)"', svg)
    assert [(int(a), int(b)) for a, b in gaps] == [(silent_from, silent_to)]
    lines = re.findall(r'<polyline class="line" data-from="(\d+)" data-to="(\d+)"', svg)
    assert len(lines) == 2 and all(not (int(a) < silent_from + 5 < int(b)) for a, b in lines)
    strips = re.findall(r'<rect class="(delivered|queued)" data-from="(\d+)"', svg)
    assert ("queued", str(int(queued[0]))) in strips
    assert [k for k, _ in strips].count("delivered") == 2  # before and after the silence


def test_a_lone_sample_between_gaps_is_a_dot() -> None:
    svg = render_chart(ChartData([(T1 - 100, 3.0)], [], 10.0), T0, T1)
    assert "<circle" in svg and "<polyline" not in svg


# -- event timeline -----------------------------------------------------------------------------

def event(event_id: str, start: datetime, levels: list[float], step: timedelta = timedelta(minutes=10),
          **kw: object) -> Event:
    intervals = tuple(Interval(start + n * step, start + (n + 1) * step, lv) for n, lv in enumerate(levels))
    kw.setdefault("revision", Revision.number(0))
    return Event(event_id=event_id, intervals=intervals, **kw)  # type: ignore[arg-type]


def test_timeline_marks_intervals_levels_and_what_happened() -> None:
    past = EventRecord(event(
        "ev-past", NOW - timedelta(hours=20), [1, 2], revision=Revision.number(2), opted_out=True,
        offset=timedelta(seconds=30), start_after=timedelta(seconds=60)),
        first_seen=NOW - timedelta(hours=21),
        modifications=(("0", NOW - timedelta(hours=21)), ("2", NOW - timedelta(hours=20, minutes=5))))
    cancelled = EventRecord(replace(event("ev-cancel", NOW - timedelta(minutes=5), [3, 3]), cancelled=True,
                                    cancel_at=NOW - timedelta(minutes=2)), first_seen=NOW - timedelta(hours=1))
    removed = EventRecord(event("ev-gone", NOW + timedelta(hours=1), [1]), first_seen=NOW,
                          removed_at=NOW - timedelta(minutes=1))
    scheduled = EventRecord(event("ev-next", NOW + timedelta(hours=5), [2, 1]), first_seen=NOW)
    old = EventRecord(event("ev-old", NOW - timedelta(hours=30), [1]), first_seen=NOW - timedelta(hours=31))
    cut = EventRecord(replace(event("ev-cut", NOW - timedelta(hours=3), [4, 4]), cancelled=True),
                      first_seen=NOW - timedelta(hours=4), cancelled_at=NOW - timedelta(hours=3, minutes=-4))
    records = [past, cancelled, removed, scheduled, old, cut]
    svg = render_timeline(records, NOW)
    table = render_event_table(records, NOW)
    assert 'data-event-id="ev-old"' not in svg + table  # older than the 24 h window
    for event_id in ("ev-past", "ev-cancel", "ev-gone", "ev-next"):
        assert f'data-event-id="{event_id}"' in svg and f'data-event-id="{event_id}"' in table
    assert re.search(r'<g class="event opted-out randomized modified" data-event-id="ev-past">', svg)
    assert 'class="offset"' in svg and 'fill="url(#hatch)"' in svg
    assert re.search(r'<g class="event cancelled" data-event-id="ev-cancel">.*?class="cancel"', svg)
    # the cancelled event's second interval (after the cancellation) is drawn hollow, not as applied
    assert svg.count('data-level="3"') == 1 and svg.count('class="void" data-planned-level="3"') == 1
    # cancelled without a randomized end: drawn up to when the cancellation was received (4 min in)
    cut_boxes = re.findall(r'<rect class="interval level-4" data-level="4" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    assert len(cut_boxes) == 1
    ten_minutes = float(re.findall(r'data-level="1" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', svg)[0])
    assert abs(float(cut_boxes[0][1]) - 0.4 * ten_minutes) < 0.2
    assert "cancelled at 09:04:00" in table
    row = re.search(r'<tr class="event opted-out randomized modified" data-event-id="ev-past">(.*?)</tr>', table)
    assert row is not None
    assert re.findall(r'<span class="interval" data-level="([\d.]+)">', row.group(1)) == ["1", "2"]
    assert "randomized: start +30 s" in row.group(1) and "modification 2 (received: 2 at" in row.group(1)
    assert "opted out" in row.group(1)
    assert "implied cancellation" in table and "cancelled" in table
    assert 'data-event-id="ev-next"' in svg  # the window reaches the scheduled event


def test_hostile_text_from_the_vtn_is_escaped() -> None:
    record = EventRecord(event("<script>alert(1)</script>", NOW - timedelta(minutes=1), [1]), first_seen=NOW)
    html = render_timeline([record], NOW) + render_event_table([record], NOW)
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- the page ------------------------------------------------------------------------------------

def view(**kw: object) -> PageView:
    base: dict[str, object] = dict(
        now=NOW, device="ADR-Gateway (device 599)", level=2.0, status="active", active_event="ev1",
        remaining=125.0, start_in=0.0, opt_out=False, vtn_online=True, registered=True, ven_id="ven-1",
        registration_attempts=1, last_poll=NOW, last_report=NOW - timedelta(seconds=20), queue_depth=3,
        oldest_queued=NOW - timedelta(seconds=30), gateway_status=None, health=Health(True),
        events=[EventRecord(event("ev1", NOW - timedelta(minutes=5), [2.0]), first_seen=NOW)],
        chart=ChartData([(T1 - 20, 1.0), (T1 - 10, 2.0)], [T1 - 10], 10.0, "kW"), chart_window=(T0, T1),
        writes=[WriteRow("fan", "12345:7 binaryValue 6 presentValue @10", 10, "active", "active",
                         NOW - timedelta(seconds=3), 0)],
        meter="12345:2 analogInput 2 every 10 s")
    base.update(kw)
    return PageView(**base)  # type: ignore[arg-type]


def test_page_is_self_contained_and_shows_the_state() -> None:
    html = render_page(view())
    assert html.startswith("<!DOCTYPE html>") and 'http-equiv="refresh"' in html
    assert "<script" not in html and " src=" not in html and "@import" not in html
    assert not re.search(r'(href|src)="(https?:)?//', html), "no external assets"
    assert re.search(r'id="level"><span class="k">ADR-Event-Level</span><br><span class="v ">2</span>', html)
    assert "ev1 (0:02:05 left)" in html and "registered as ven-1" in html and "3 sample(s)" in html
    assert 'data-target="fan"' in html and "ADR-Gateway-Status" not in html


def test_page_shows_gateway_status_and_health_reasons_where_they_exist() -> None:
    html = render_page(view(gateway_status=(3, "storage-fault"),
                            health=Health(False, ("meter failing (5 reads in a row)",))))
    assert "storage-fault (3)" in html and "meter failing (5 reads in a row)" in html
    assert '<span class="v degraded">degraded</span>' in html


# -- the histories (real sqlite store) -------------------------------------------------------------

async def test_event_history_keeps_modifications_removals_and_survives_a_restart(tmp_path) -> None:
    store = Store(tmp_path)
    await store.open()
    clock = [NOW]
    history = EventHistory(store, clock=lambda: clock[0])
    await history.open()
    e0 = event("ev", NOW + timedelta(minutes=1), [1.0])
    history.observe({"ev": e0})
    clock[0] = NOW + timedelta(seconds=5)
    history.observe({"ev": replace(e0, revision=Revision.number(1), intervals=(replace(e0.intervals[0], level=2.0),))})
    clock[0] = NOW + timedelta(seconds=9)
    history.observe({})  # no longer listed, not finished: implied cancellation
    await history.flush()
    record = history.records["ev"]
    assert [n for n, _ in record.modifications] == ["0", "1"] and record.removed_at == NOW + timedelta(seconds=9)
    assert record.event.intervals[0].level == 2.0 and record.end == NOW + timedelta(seconds=9)
    clock[0] = NOW + timedelta(seconds=20)
    history.observe({"other": replace(e0, event_id="other", cancelled=True, revision=Revision.number(3))})
    assert history.records["other"].cancelled_at == NOW + timedelta(seconds=20)
    history.observe({})  # a cancelled event the VTN forgets is not "removed" again
    assert history.records["other"].removed_at is None
    await history.flush()
    again = EventHistory(store, clock=lambda: clock[0])
    await again.open()
    assert again.records["ev"] == record and again.records["other"] == history.records["other"]
    clock[0] = NOW + RETENTION + timedelta(minutes=5)
    again.observe({})
    await again.flush()
    assert again.records == {}
    await store.close()


async def test_meter_history_window_and_queued_instants(tmp_path) -> None:
    store = Store(tmp_path)
    await store.open()
    history = MeterHistory(store, EVERYTHING_OWED)
    await history.open()
    for k in range(5):
        history.record(Sample(datetime.fromtimestamp(T1 - 50 + 10 * k, timezone.utc), float(k)))
    await history.flush()
    await store.call(lambda db: db.execute("INSERT INTO samples (stream, ts, value) VALUES ('', ?, 4.0)",
                                           (T1 - 10,)))
    samples, queued = await history.window(T1 - 40, T1)
    assert samples == [(T1 - 40, 1.0), (T1 - 30, 2.0), (T1 - 20, 3.0), (T1 - 10, 4.0)]
    assert queued == [T1 - 10]
    # older than RETENTION is trimmed as new samples arrive
    history.record(Sample(datetime.fromtimestamp(T1 + RETENTION.total_seconds() - 35, timezone.utc), 9.0))
    await history.flush()
    samples, _ = await history.window(0, T1 + 10 ** 6)
    assert samples[0][0] > T1 - 40
    await store.close()

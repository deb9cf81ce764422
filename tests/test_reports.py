"""The report service's pure logic (adrgw/reports.py): parsing and refusing requests, the request
table, and each request's schedule, with time passed in. Hypothesis drives whole timelines."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.openadr import reports as R

pytestmark = pytest.mark.unit

OFFERED = [R.OfferedReport("TU", R.USAGE, {"m": "", "p1": "p1"}),
           R.OfferedReport("HU", R.HISTORY, {"m": "", "p1": "p1"}),
           R.OfferedReport("TS", R.STATUS, {"s": ""})]
T0 = 1_800_000_000.0  # a whole multiple of every cadence used here


def raw(request_id: str, specifier: str, r_ids: list[str], granularity: float, back: float,
        interval: tuple[float, float] | None = None) -> dict:
    spec = {"report_specifier_id": specifier, "granularity": timedelta(seconds=granularity),
            "report_back_duration": timedelta(seconds=back),
            "specifier_payloads": [{"r_id": r, "reading_type": "x-notApplicable"} for r in r_ids]}
    if interval is not None:
        spec["report_interval"] = {"dtstart": datetime.fromtimestamp(interval[0], timezone.utc),
                                   "duration": timedelta(seconds=interval[1])}
    return {"report_request_id": request_id, "report_specifier": spec}


def request(request_id: str = "r1", specifier: str = "TU", granularity: float = 10, back: float = 60,
            interval: tuple[float, float] | None = None, cadence: float = 10, r_ids: tuple = ("m",)) -> R.ReportRequest:
    parsed = R.parse_request(raw(request_id, specifier, list(r_ids), granularity, back, interval), OFFERED, cadence)
    assert isinstance(parsed, R.ReportRequest), parsed
    return parsed


# -- parsing and refusing -------------------------------------------------------------------------

def test_unknown_specifier_or_rid_is_refused_with_a_code() -> None:
    assert R.parse_request(raw("r", "NOPE", ["m"], 10, 60), OFFERED, 10) == \
        R.Refusal(R.REPORT_NOT_SUPPORTED, "reportSpecifierID 'NOPE' was never offered")
    refused = R.parse_request(raw("r", "TU", ["m", "ghost"], 10, 60), OFFERED, 10)
    assert isinstance(refused, R.Refusal) and refused.code == R.INVALID_ID and "ghost" in refused.description
    assert R.parse_request(raw("r", "TU", [], 10, 60), OFFERED, 10).code == R.INVALID_ID  # type: ignore[union-attr]
    assert R.parse_request(raw("r", "TU", ["s"], 10, 60), OFFERED, 10).code == R.INVALID_ID  # type: ignore[union-attr]
    assert R.parse_request(raw("r", "TU", ["m"], -10, 60), OFFERED, 10).code == R.INVALID_DATA  # type: ignore[union-attr]
    assert R.parse_request({"report_specifier": {}}, OFFERED, 10).code == R.INVALID_DATA  # type: ignore[union-attr]
    assert R.parse_request("<xml/>", OFFERED, 10).code == R.INVALID_DATA  # type: ignore[union-attr]


def test_granularity_is_at_least_the_cadence_and_a_multiple_of_it() -> None:
    assert request(granularity=1, cadence=10).granularity == 10
    assert request(granularity=0, cadence=10).granularity == 10
    assert request(granularity=15, cadence=10).granularity == 20
    assert request(granularity=30, cadence=10).granularity == 30
    assert request(granularity=30, back=0).back == 30  # PT0S: each interval as soon as it exists


def test_report_interval_with_zero_duration_runs_until_cancelled() -> None:
    r = request(interval=(T0, 0))
    assert (r.start, r.end) == (T0, None)
    r = request(interval=(T0, 3600))
    assert (r.start, r.end) == (T0, T0 + 3600)


# -- the request table ------------------------------------------------------------------------

def test_same_specifier_replaces_only_that_request_and_keeps_its_cursor() -> None:
    table = R.RequestTable()
    table.accept([request("a", "TU"), request("h", "HU")], T0, {"TU": T0 - 50})
    assert table.pending() == ["a", "h"]
    assert table.cursors == {"a": T0 - 50, "h": T0}  # usage from its watermark, history from now
    table.cursors["a"] = T0 + 120
    out = table.accept([request("b", "TU", granularity=30)], T0 + 130, {})
    assert out == [("a", table.requests["b"], T0 + 120)]
    assert table.pending() == ["b", "h"]
    assert table.cursors["b"] == T0 + 120 and table.cursors["h"] == T0


def test_first_usage_request_starts_at_the_oldest_sample_history_at_its_interval() -> None:
    table = R.RequestTable()
    table.accept([request("a", "TU"), request("h", "HU", interval=(T0 - 3600, 600))], T0, {})
    assert table.cursors == {"a": R.FROM_START, "h": T0 - 3600}


def test_cancel_stops_at_once_or_marks_one_last_report() -> None:
    table = R.RequestTable()
    table.accept([request("a", "TU"), request("h", "HU")], T0, {})
    assert table.cancel("nope", False) is None
    assert table.cancel("a", False) is not None
    assert table.pending() == ["h"]
    final = table.cancel("h", True)
    assert final is not None and final.final and table.pending() == ["h"]
    table.finish("h")
    assert table.pending() == [] and table.cursors == {}


def test_request_json_round_trips() -> None:
    r = request(interval=(T0, 600))
    assert R.ReportRequest.from_json(r.to_json()) == r


# -- schedules ------------------------------------------------------------------------------------

def test_10s_samples_60s_report_back_gives_60_reports_of_6_intervals_per_hour() -> None:
    r = request(granularity=10, back=60)
    samples = {"": {T0 + 10 * n: float(n) for n in range(-6, 400)}}
    cursor, now, reports = T0, T0, []
    while now <= T0 + 3601:  # up to the hour's last report time, plus settle
        span = R.window(r, cursor, now, 0.2)
        if span is None:
            now = R.next_wake(r, now, 0.2)
            continue
        intervals, cursor = R.select(r, OFFERED[0].streams, samples, span[0], span[1], 360)
        reports.append(intervals)
    assert len(reports) == 60
    assert all(len(rep) == 6 for rep in reports)
    assert [i.instant for rep in reports for i in rep] == [T0 + 10 * n for n in range(360)]


def test_coarser_granularity_takes_the_sample_at_each_instant_no_averaging() -> None:
    r = request(granularity=30, back=60)
    samples = {"": {T0 + 10 * n: float(n) for n in range(12)}}
    intervals, cursor = R.select(r, OFFERED[0].streams, samples, T0, T0 + 120, 360)
    assert [(i.instant - T0, i.value) for i in intervals] == [(0, 0.0), (30, 3.0), (60, 6.0), (90, 9.0)]
    assert cursor == T0 + 120


def test_a_failed_read_is_a_missing_interval_not_a_value() -> None:
    r = request(granularity=10, back=60)
    samples = {"": {T0: 1.0, T0 + 20: 3.0}}  # T0 + 10 failed
    intervals, _ = R.select(r, OFFERED[0].streams, samples, T0, T0 + 30, 360)
    assert [i.instant - T0 for i in intervals] == [0, 20]


def test_only_inside_the_report_interval() -> None:
    r = request(granularity=10, back=60, interval=(T0 + 30, 90))
    assert list(R.instants(r, T0, T0 + 600)) == [T0 + 30 + 10 * n for n in range(9)]
    assert R.due_time(r, T0 + 20, 0) is None
    assert R.due_time(r, T0 + 95, 0) == T0 + 90
    assert R.due_time(r, T0 + 10_000, 0) == T0 + 120  # the end is the last report time
    past = request(granularity=10, back=3600, interval=(T0 - 600, 300))  # HISTORY: a window in the past
    assert R.due_time(past, T0, 0.2) == T0 - 300
    assert R.finished(r, T0 + 120) and not R.finished(r, T0 + 119)


def test_batch_limit_cuts_the_window_and_the_cursor_follows() -> None:
    r = request(granularity=10, back=60, r_ids=("m", "p1"))
    samples = {"": {T0 + 10 * n: 1.0 for n in range(6)}, "p1": {T0 + 10 * n: 2.0 for n in range(6)}}
    intervals, cursor = R.select(r, OFFERED[0].streams, samples, T0, T0 + 60, 5)
    assert len(intervals) == 4  # whole instants only: both data points of an instant go together
    assert T0 + 10 < cursor < T0 + 20


@settings(max_examples=150, deadline=None)
@given(cadence=st.sampled_from([1.0, 2.0, 5.0, 10.0]), g_factor=st.integers(1, 6), back_factor=st.integers(1, 8),
       limit=st.integers(1, 50), steps=st.lists(st.floats(0.1, 40.0), min_size=5, max_size=80),
       lost=st.sets(st.integers(0, 500), max_size=40), fails=st.lists(st.booleans(), max_size=80),
       window=st.one_of(st.none(), st.tuples(st.integers(-20, 100), st.integers(0, 300))))
def test_every_sampled_instant_of_the_grid_is_delivered_exactly_once_in_order(
        cadence, g_factor, back_factor, limit, steps, lost, fails, window) -> None:
    """Whatever the cadence, granularity, reportBackDuration, batch limit, clock steps, failed
    reads and failed deliveries: the VTN gets each sampled grid instant once, in order, never one
    outside the reportInterval, never before its report time."""
    g = cadence * g_factor
    interval = None if window is None else (T0 + window[0] * cadence, window[1] * cadence)
    r = request(granularity=g, back=g * back_factor / 2 if back_factor % 2 else g * back_factor // 2,
                interval=interval, cadence=cadence)
    samples = {"": {round(T0 - 100 * cadence + cadence * n, 6): float(n) for n in range(600) if n not in lost}}
    cursor = r.start if r.start is not None else T0
    now, delivered = T0, []
    fail_iter = iter(fails)
    for step in steps:
        now += step
        while True:
            span = R.window(r, cursor, now, 0.0)
            if span is None or R.finished(r, cursor):
                break
            intervals, new_cursor = R.select(r, OFFERED[0].streams, samples, span[0], span[1], limit)
            assert all(i.instant < span[1] <= now for i in intervals)
            if next(fail_iter, False):
                break  # the acknowledgement was lost: the cursor stays, the batch goes again
            delivered.extend(intervals)
            assert new_cursor > cursor
            cursor = new_cursor
    instants = [i.instant for i in delivered]
    assert instants == sorted(set(instants))
    lo = r.start if r.start is not None else T0
    expected = [t for t in samples[""] if lo <= t < cursor and abs(t / g - round(t / g)) < 1e-9
                and (r.end is None or t < r.end)]
    assert instants == sorted(expected)
    assert all(samples[""][i.instant] == i.value for i in delivered)


@given(back=st.floats(1, 3600), now=st.floats(0, 1e6), settle=st.floats(0, 5))
def test_next_wake_is_after_now_and_due_then(back, now, settle) -> None:
    r = R.ReportRequest("r", "TU", R.USAGE, ("m",), 1.0, back)
    wake = R.next_wake(r, T0 + now, settle)
    assert wake > T0 + now
    assert R.due_time(r, wake, settle) is not None
    assert R.due_time(r, wake, settle) > (R.due_time(r, T0 + now, settle) or -math.inf)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["accept", "cancel", "follow", "advance"]),
                              st.sampled_from(["TU", "HU", "TS"]), st.integers(0, 5)), max_size=40))
def test_request_table_invariants(ops) -> None:
    """Any sequence of requests, cancellations and acknowledgements: at most one running request per
    specifier, pending lists exactly the running ones, every running request has a cursor, and a
    specifier's cursor never moves back when its request is replaced (nothing sent twice)."""
    table = R.RequestTable()
    now = T0
    for op, specifier, n in ops:
        now += 7
        rid = f"{specifier}-{n}"
        if op == "accept":
            before = {r.specifier_id: table.cursors[i] for i, r in table.requests.items()}
            r_ids = ["s"] if specifier == "TS" else ["m"]
            new = R.parse_request(raw(rid, specifier, r_ids, 10, 60), OFFERED, 10)
            assert isinstance(new, R.ReportRequest)
            table.accept([new], now, {})
            if specifier in before:
                assert table.cursors[rid] == before[specifier]
        elif op in ("cancel", "follow"):
            table.cancel(rid, op == "follow")
        elif table.requests:
            first = sorted(table.requests)[0]
            c = table.cursors[first]
            table.cursors[first] = (now if not math.isfinite(c) else max(c, now))
        specs = [r.specifier_id for r in table.requests.values()]
        assert len(specs) == len(set(specs))
        assert table.pending() == sorted(table.requests) == sorted(table.cursors)


@given(st.integers(min_value=0, max_value=40 * 86400 * 1000))
def test_report_durations_keep_fractions_and_zero(ms: int) -> None:
    """Our oadrUpdateReport renders durations itself: openleadr's formatter drops fractions of a
    second and renders zero as an invalid 'P'."""
    from adrgw.openadr.oadr_report import duration_text

    from .support.schema_vtn import parse_duration

    value = timedelta(milliseconds=ms)
    assert parse_duration(duration_text(value)) == value

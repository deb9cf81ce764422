"""The one rate-limited log rule (adrgw/core/ratelog.py) and the line shapes built on it, driven with
explicit times: every occurrence is logged or counted in a later line, lines are at least a period apart."""

from __future__ import annotations

import pytest

import logging
import re
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from adrgw.core.ratelog import BacklogNotice, DeliverySummary, RateLimitedLog, Summary

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
gaps = st.lists(st.floats(0, 90, allow_nan=False), min_size=1, max_size=150)


@given(gaps=gaps, counts=st.lists(st.integers(1, 50), min_size=150, max_size=150),
       kinds=st.lists(st.sampled_from(["", "a", "b"]), min_size=150, max_size=150))
def test_summary_covers_every_occurrence_once_and_never_hides_a_new_kind(gaps, counts, kinds) -> None:
    summary = Summary(every=60.0)
    now, covered, last_line, last_kind = 0.0, 0, None, None
    for gap, count, kind in zip(gaps, counts, kinds):
        now += gap
        n = summary.hit(now, kind, count=count)
        if last_line is None or kind != last_kind or now - last_line >= 60.0:
            assert n is not None  # due: first, new kind, or a period since the last line
        if n is not None:
            covered += n
            last_line, last_kind = now, kind
            assert summary.last == now
    assert summary.total == sum(counts[:len(gaps)])
    assert covered <= summary.total
    assert summary.reset() == sum(counts[:len(gaps)]) and summary.last is None


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@given(events=st.lists(st.tuples(st.floats(0, 40, allow_nan=False), st.sampled_from(["x", "y"])),
                       min_size=1, max_size=120))
def test_rate_limited_log_counts_what_it_did_not_log(events) -> None:
    clock = [0.0]
    logger = logging.getLogger("adrgw.test.ratelog")
    logger.propagate, logger.level = False, logging.INFO
    handler = Lines()
    logger.addHandler(handler)
    try:
        notes = RateLimitedLog(logger, interval=60, clock=lambda: clock[0])
        logged: dict[str, list[float]] = {"x": [], "y": []}
        for gap, key in events:
            clock[0] += gap
            if notes.info(key, f"bad {key}"):
                logged[key].append(clock[0])
        for key, times in logged.items():
            assert all(b - a >= 60 for a, b in zip(times, times[1:]))
            lines = [line for line in handler.lines if line.startswith(f"bad {key}")]
            assert len(lines) == len(times)
            accounted = sum(1 + int(m.group(1)) if (m := re.search(r"\((\d+) more like it in the last 60 s not "
                                                                   r"logged\)$", line)) else 1 for line in lines)
            occurrences = [k for _, k in events].count(key)
            assert accounted <= occurrences  # the rest are counted for the next line
    finally:
        logger.removeHandler(handler)


@given(deliveries=st.lists(st.tuples(st.floats(0, 45, allow_nan=False), st.integers(1, 20)), min_size=1,
                           max_size=120))
def test_delivery_lines_are_a_minute_apart_and_count_every_report(deliveries) -> None:
    summary = DeliverySummary(every=60)
    now, lines, reports, samples = 0.0, [], 0, 0
    for gap, n in deliveries:
        now += gap
        reports, samples = reports + 1, samples + n
        line = summary.delivered(now, n, T0, T0)
        if line is not None:
            lines.append(now)
            m = re.search(r"\((\d+) reports, (\d+) samples since the last line", line)
            if m:
                assert (int(m.group(1)), int(m.group(2))) == (reports, samples)
            else:
                assert reports == 1
            reports = samples = 0
    assert lines[0] == deliveries[0][0]
    assert all(b - a >= 60 for a, b in zip(lines, lines[1:]))


@given(steps=st.lists(st.tuples(st.floats(0, 400, allow_nan=False), st.booleans()), min_size=1, max_size=80))
def test_backlog_lines_start_a_period_into_an_outage_and_repeat_each_period(steps) -> None:
    notice = BacklogNotice(every=600)
    now, outage_start, last = 0.0, None, None
    for gap, online in steps:
        now += gap
        line = notice.check(now, online, 5, T0)
        if online:
            outage_start = last = None
            assert line is None
            continue
        if outage_start is None:
            outage_start = last = now
            assert line is None
            continue
        assert (line is not None) == (now - last >= 600)
        if line is not None:
            assert line.startswith(f"VTN unreachable for {(now - outage_start) / 60:.0f} min: 5 sample(s) queued")
            last = now

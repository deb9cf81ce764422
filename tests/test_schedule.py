"""The pure schedule: levels inside/outside intervals, exact boundaries, next wake-up, merging."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adrgw.core.revision import Revision
from adrgw.core.schedule import Event, Interval, active, evaluate, merge, next_boundary
from adrgw.openadr.events import event_from_oadr

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def ev(event_id: str, levels: list[float], start: datetime = T0, step: float = 60, mod: int = 0,
       priority: int = 0, cancelled: bool = False, seq: int = 0) -> Event:
    intervals = tuple(Interval(start + timedelta(seconds=n * step), start + timedelta(seconds=(n + 1) * step), lvl)
                      for n, lvl in enumerate(levels))
    return Event(event_id, Revision.number(mod), intervals, priority=priority, cancelled=cancelled, seq=seq)


def oadr(event_id: str = "e1", levels: tuple[float, ...] = (1.0, 2.0, 3.0), start: datetime = T0,
         step: timedelta = timedelta(minutes=1), mod: int = 0, status: str = "far",
         signals: list | None = None) -> dict:
    if signals is None:
        signals = [{"signal_name": "SIMPLE", "signal_type": "level",
                    "intervals": [{"dtstart": start + n * step, "duration": step, "signal_payload": lvl, "uid": n}
                                  for n, lvl in enumerate(levels)]}]
    return {"event_descriptor": {"event_id": event_id, "modification_number": mod, "event_status": status,
                                 "priority": 0, "test_event": False},
            "active_period": {"dtstart": start, "duration": step * len(levels)},
            "event_signals": signals, "targets": [], "response_required": "always"}


# -- examples -------------------------------------------------------------------------------------

def test_three_intervals_step_through_levels_at_exact_boundaries() -> None:
    events = [ev("e", [1, 2, 3])]
    assert evaluate(events, T0 - timedelta(microseconds=1)).level == 0
    assert evaluate(events, T0).level == 1
    assert evaluate(events, T0 + timedelta(seconds=59.999999)).level == 1
    assert evaluate(events, T0 + timedelta(seconds=60)).level == 2
    assert evaluate(events, T0 + timedelta(seconds=120)).level == 3
    assert evaluate(events, T0 + timedelta(seconds=180)).level == 0


def test_next_change_walks_the_boundaries() -> None:
    events = [ev("e", [1, 2, 3])]
    now = T0 - timedelta(hours=1)
    seen = []
    while (state := evaluate(events, now)).next_change is not None:
        seen.append(state.next_change)
        now = state.next_change
    assert seen == [T0 + timedelta(seconds=s) for s in (0, 60, 120, 180)]


def test_cancelled_event_has_no_level_and_no_wakeups() -> None:
    events = [ev("e", [1, 2], cancelled=True)]
    assert evaluate(events, T0 + timedelta(seconds=1)) .level == 0
    assert next_boundary(events, T0 - timedelta(seconds=1)) is None


def test_priority_lowest_nonzero_wins_zero_is_lowest_ties_to_most_recent() -> None:
    a = ev("a", [5], priority=0, seq=9)
    b = ev("b", [2], priority=3, seq=1)
    c = ev("c", [1], priority=1, seq=0)
    assert active([a, b, c], T0)[0].event_id == "c"
    assert active([a, b], T0)[0].event_id == "b"
    newer = ev("d", [7], priority=3, seq=5)
    assert active([b, newer], T0)[0].event_id == "d"


def test_event_from_oadr_levels_come_from_simple_only() -> None:
    other = {"signal_name": "ELECTRICITY_PRICE", "signal_type": "price",
             "intervals": [{"dtstart": T0, "duration": timedelta(minutes=1), "signal_payload": 0.3}]}
    simple = {"signal_name": "SIMPLE", "signal_type": "level",
              "intervals": [{"dtstart": T0, "duration": timedelta(minutes=1), "signal_payload": 2.0}]}
    assert event_from_oadr(oadr(signals=[other, simple])).intervals[0].level == 2.0
    price_only = event_from_oadr(oadr(signals=[other]))
    assert not price_only.has_level and evaluate([price_only], T0).level == 0  # a price is not a level


def test_event_from_oadr_fills_missing_interval_starts_from_active_period() -> None:
    event = oadr(levels=(1, 2))
    for interval in event["event_signals"][0]["intervals"]:
        del interval["dtstart"]
    parsed = event_from_oadr(event)
    assert [i.start for i in parsed.intervals] == [T0, T0 + timedelta(minutes=1)]


def test_event_from_oadr_open_ended_last_interval() -> None:
    event = oadr(levels=(1, 2))
    event["event_signals"][0]["intervals"][1]["duration"] = timedelta(0)
    parsed = event_from_oadr(event)
    assert parsed.intervals[1].end is None
    assert evaluate([parsed], T0 + timedelta(days=30)).level == 2


def test_event_from_oadr_cancelled_status() -> None:
    assert event_from_oadr(oadr(status="cancelled")).cancelled


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.pop("event_descriptor"), "event_descriptor"),
    (lambda e: e.update(event_signals=[]), "no signals"),
    (lambda e: e["event_signals"][0].update(intervals=[]), "no intervals"),
    (lambda e: e["event_signals"][0]["intervals"][0].update(signal_payload="x"), "not a number"),
    (lambda e: e["event_signals"][0]["intervals"][0].update(signal_payload=float("nan")), "not finite"),
    (lambda e: e["event_signals"][0]["intervals"][0].update(duration=timedelta(seconds=-5)), "negative"),
    (lambda e: e["event_signals"][0]["intervals"][0].update(dtstart="tomorrow"), "not a date-time"),
    (lambda e: e["event_descriptor"].update(modification_number=-1), "modification_number"),
])
def test_event_from_oadr_refuses_malformed(mutate, message) -> None:
    event = oadr()
    mutate(event)
    with pytest.raises(ValueError, match=message):
        event_from_oadr(event)


def test_merge_modification_replaces_lower_ignored_and_implied_cancel() -> None:
    held, changes = merge({}, [ev("a", [1]), ev("b", [2])], seq=0)
    assert [c.kind for c in changes] == ["new", "new"]
    held, changes = merge(held, [ev("a", [4], mod=1), ev("b", [2])], seq=2)
    assert held["a"].intervals[0].level == 4 and [c.kind for c in changes] == ["modified", "unchanged"]
    held, changes = merge(held, [ev("a", [9], mod=0), ev("b", [2])], seq=4)
    assert held["a"].intervals[0].level == 4 and changes[0].kind == "stale"
    held, changes = merge(held, [ev("b", [2], mod=1, cancelled=True)], seq=6)
    assert "a" not in held and {c.kind for c in changes} == {"cancelled", "removed"}
    # a malformed (unparsed) event that is still listed keeps its last good version
    held2, _ = merge({"x": ev("x", [1])}, [], seq=8, listed={"x"})
    assert "x" in held2


# -- properties -------------------------------------------------------------------------------------

levels_st = st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=6)
steps_st = st.integers(min_value=1, max_value=3600)
offset_st = st.integers(min_value=-7200, max_value=7200)


@st.composite
def events_st(draw) -> list[Event]:
    count = draw(st.integers(min_value=0, max_value=4))
    return [ev(f"e{n}", draw(levels_st), start=T0 + timedelta(seconds=draw(offset_st)), step=draw(steps_st),
               priority=draw(st.integers(0, 3)), cancelled=draw(st.booleans()), seq=n)
            for n in range(count)]


@settings(max_examples=300, deadline=None)
@given(levels=levels_st, step=steps_st, offset_us=st.integers(min_value=-10**10, max_value=10**10))
def test_single_event_level_is_payload_inside_and_zero_outside(levels, step, offset_us) -> None:
    event = ev("e", levels, step=step)
    now = T0 + timedelta(microseconds=offset_us)
    expected = 0.0
    for n, level in enumerate(levels):
        if T0 + timedelta(seconds=n * step) <= now < T0 + timedelta(seconds=(n + 1) * step):
            expected = level
    assert evaluate([event], now).level == expected


@settings(max_examples=300, deadline=None)
@given(levels=levels_st, step=steps_st, n=st.integers(min_value=0, max_value=5))
def test_boundaries_are_exact(levels, step, n) -> None:
    assume(n < len(levels))
    event = ev("e", levels, step=step)
    boundary = T0 + timedelta(seconds=n * step)
    assert evaluate([event], boundary).level == levels[n]
    before = levels[n - 1] if n > 0 else 0.0
    assert evaluate([event], boundary - timedelta(microseconds=1)).level == before


@settings(max_examples=300, deadline=None)
@given(events=events_st(), offset_us=st.integers(min_value=-10**10, max_value=10**10))
def test_next_wakeup_is_the_next_boundary_and_nothing_changes_before_it(events, offset_us) -> None:
    now = T0 + timedelta(microseconds=offset_us)
    state = evaluate(events, now)
    boundaries = sorted({b for e in events if not e.cancelled for i in e.intervals
                         for b in (i.start, i.end) if b is not None and b > now})
    assert state.next_change == (boundaries[0] if boundaries else None)
    # Just before the next boundary (or much later when none), the level is unchanged.
    probe = (state.next_change - timedelta(microseconds=1)) if state.next_change else now + timedelta(days=365)
    if probe >= now:
        assert evaluate(events, probe).level == state.level


@settings(max_examples=200, deadline=None)
@given(events=events_st(), offset_us=st.integers(min_value=-10**10, max_value=10**10))
def test_level_is_zero_or_a_payload_of_an_active_uncancelled_event(events, offset_us) -> None:
    now = T0 + timedelta(microseconds=offset_us)
    state = evaluate(events, now)
    candidates = {i.level for e in events if not e.cancelled for i in e.intervals if i.contains(now)}
    if candidates:
        assert state.level in candidates and state.event_id is not None
    else:
        assert state.level == 0.0 and state.event_id is None


# -- lifecycle: status, countdowns, randomization, test events, opt-out, persistence --------------------

from adrgw.core.schedule import (ACTIVE, CANCELLED, COMPLETED, FAR, NEAR, NONE, event_from_dict,  # noqa: E402
                            event_to_dict, with_offset)
from dataclasses import replace as _replace  # noqa: E402


def test_status_far_near_active_completed_cancelled_and_countdowns() -> None:
    e = _replace(ev("e", [1, 2]), ramp_up=timedelta(minutes=5))
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    assert e.status(at(-600)) == FAR and evaluate([e], at(-600)).status == FAR
    assert e.status(at(-300)) == NEAR and evaluate([e], at(-300)).status == NEAR
    assert evaluate([e], at(-300)).start_in == 300
    state = evaluate([e], at(30))
    assert e.status(at(30)) == ACTIVE and state.status == ACTIVE and state.remaining == 90 and state.start_in == 0
    assert e.status(at(120)) == COMPLETED and evaluate([e], at(120)).status == NONE
    assert _replace(e, cancelled=True).status(at(30)) == CANCELLED
    # the near window is a wake-up instant
    assert next_boundary([e], at(-600)) == at(-300)


def test_randomized_start_shifts_every_interval_and_cancellation_can_end_at_the_randomized_point() -> None:
    e = with_offset(_replace(ev("e", [1, 2]), start_after=timedelta(seconds=30)), timedelta(seconds=12))
    assert e.start == T0 + timedelta(seconds=12) and e.intervals[1].start == T0 + timedelta(seconds=72)
    assert evaluate([e], T0 + timedelta(seconds=11)).level == 0
    assert evaluate([e], T0 + timedelta(seconds=12)).level == 1
    cancelled = _replace(e, cancelled=True, cancel_at=T0 + timedelta(seconds=50))
    assert evaluate([cancelled], T0 + timedelta(seconds=49)).level == 1
    assert evaluate([cancelled], T0 + timedelta(seconds=50)).level == 0
    assert next_boundary([cancelled], T0 + timedelta(seconds=20)) == T0 + timedelta(seconds=50)


def test_test_events_and_opted_out_events_do_not_drive_the_points() -> None:
    test = _replace(ev("t", [3]), test_event=True)
    assert evaluate([test], T0).level == 0 and evaluate([test], T0).status == NONE
    assert evaluate([test], T0, apply_test_events=True).level == 3
    out = _replace(ev("o", [4]), opted_out=True)
    assert evaluate([out], T0).level == 0


def test_event_from_oadr_reads_tolerance_ramp_up_test_flag() -> None:
    raw = oadr()
    raw["active_period"].update(tolerance={"tolerate": {"startafter": timedelta(seconds=30)}},
                                ramp_up=timedelta(minutes=5), notification=timedelta(minutes=10))
    raw["event_descriptor"]["test_event"] = True
    e = event_from_oadr(raw)
    assert e.start_after == timedelta(seconds=30) and e.ramp_up == timedelta(minutes=5)
    assert e.notification == timedelta(minutes=10) and e.test_event
    assert event_from_oadr(oadr(signals=oadr()["event_signals"]), signal_name="SIMPLE").signal_name == "SIMPLE"


@settings(max_examples=200, deadline=None)
@given(events=events_st(), offset=st.integers(0, 3600), opted=st.booleans())
def test_persistence_form_round_trips(events, offset, opted) -> None:
    for e in events:
        e = _replace(with_offset(e, timedelta(seconds=offset)), opted_out=opted,
                     ramp_up=timedelta(seconds=offset) if offset else None)
        assert event_from_dict(event_to_dict(e)) == e


@settings(max_examples=300, deadline=None)
@given(events=events_st(), offset_us=st.integers(min_value=-10**10, max_value=10**10),
       ramp=st.integers(0, 7200))
def test_status_and_countdowns_are_consistent(events, offset_us, ramp) -> None:
    events = [_replace(e, ramp_up=timedelta(seconds=ramp) if ramp else None) for e in events]
    now = T0 + timedelta(microseconds=offset_us)
    state = evaluate(events, now)
    assert state.status in (NONE, FAR, NEAR, ACTIVE)
    assert (state.status == ACTIVE) == state.active == (state.event_id is not None)
    assert state.start_in >= 0 and state.remaining >= 0
    if state.status == ACTIVE:
        assert state.start_in == 0
    else:
        assert state.remaining == 0 and state.level == 0
    if state.status in (FAR, NEAR):
        pending = [e.start for e in events if e.status(now) in (FAR, NEAR)]
        assert state.start_in == (min(pending) - now).total_seconds()

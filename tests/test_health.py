"""The health verdict shared by --status, /healthz and systemd's STATUS (pure: time passed in)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adrgw.core.health import MIN_QUEUE_AGE, HealthFacts, next_change, verdict

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
POLL = timedelta(seconds=10)


def facts(**kw: object) -> HealthFacts:
    base: dict[str, object] = dict(registered=True, last_contact=NOW - timedelta(seconds=5), poll_period=POLL,
                                   meter_failures=0, oldest_queued=None)
    base.update(kw)
    return HealthFacts(**base)  # type: ignore[arg-type]


def test_healthy_when_all_is_well() -> None:
    h = verdict(facts(), NOW)
    assert h.healthy and h.word == "healthy" and h.reasons == ()


def test_vtn_silent_after_three_poll_periods() -> None:
    assert verdict(facts(last_contact=NOW - 3 * POLL), NOW).healthy
    h = verdict(facts(last_contact=NOW - 3 * POLL - timedelta(seconds=1)), NOW)
    assert not h.healthy and "VTN silent for 31 s" in h.reasons[0]


def test_not_registered_and_never_answered() -> None:
    assert verdict(facts(registered=False), NOW).reasons == ("not registered with the VTN",)
    assert "never answered" in verdict(facts(last_contact=None), NOW).reasons[0]


def test_meter_failing_needs_three_reads() -> None:
    assert verdict(facts(meter_failures=2), NOW).healthy
    assert not verdict(facts(meter_failures=3), NOW).healthy


def test_queue_growing_uses_the_longer_of_report_period_and_minimum() -> None:
    assert verdict(facts(oldest_queued=NOW - MIN_QUEUE_AGE), NOW).healthy
    assert not verdict(facts(oldest_queued=NOW - MIN_QUEUE_AGE - timedelta(seconds=1)), NOW).healthy
    hour = timedelta(hours=1)
    assert verdict(facts(oldest_queued=NOW - 2 * hour, report_period=hour), NOW).healthy
    assert not verdict(facts(oldest_queued=NOW - 3 * hour - timedelta(seconds=1), report_period=hour), NOW).healthy


def test_storage_failing() -> None:
    assert verdict(facts(storage_ok=False), NOW).reasons == ("state storage failing",)


@given(st.booleans(), st.integers(0, 10), st.booleans(), st.integers(0, 100_000))
def test_healthy_iff_no_reason(registered: bool, failures: int, storage: bool, age: int) -> None:
    h = verdict(facts(registered=registered, meter_failures=failures, storage_ok=storage,
                      oldest_queued=NOW - timedelta(seconds=age)), NOW)
    assert h.healthy == (not h.reasons)
    assert h.healthy == (registered and failures < 3 and storage and age <= MIN_QUEUE_AGE.total_seconds())


@given(registered=st.booleans(), contact=st.one_of(st.none(), st.integers(-4000, 100)),
       queued=st.one_of(st.none(), st.integers(-4000, 100)), poll=st.integers(1, 600),
       report=st.one_of(st.none(), st.integers(1, 7200)), later=st.floats(0, 1))
def test_next_change_is_when_time_alone_adds_a_reason(registered, contact, queued, poll, report, later) -> None:
    """Issue 18: the gateway rewrites its snapshot at this instant, so --status (judging a snapshot at
    its own time) sees the VTN fall silent or the queue start growing within a second, not 10 s later."""
    f = facts(registered=registered, poll_period=timedelta(seconds=poll),
              last_contact=None if contact is None else NOW + timedelta(seconds=contact),
              oldest_queued=None if queued is None else NOW + timedelta(seconds=queued),
              report_period=None if report is None else timedelta(seconds=report))
    here = len(verdict(f, NOW).reasons)
    change = next_change(f, NOW)
    if change is None:
        assert len(verdict(f, NOW + timedelta(days=30)).reasons) == here
        return
    assert change >= NOW
    assert len(verdict(f, NOW + (change - NOW) * later).reasons) == here  # unchanged until then
    assert len(verdict(f, change).reasons) == here
    assert len(verdict(f, change + timedelta(microseconds=1)).reasons) > here


def test_next_change_examples() -> None:
    assert next_change(facts(), NOW) == NOW - timedelta(seconds=5) + 3 * POLL
    assert next_change(facts(registered=False), NOW) is None
    assert next_change(facts(last_contact=NOW - 4 * POLL), NOW) is None  # already silent
    queued = NOW - timedelta(seconds=10)
    assert next_change(facts(last_contact=None, oldest_queued=queued), NOW) == queued + MIN_QUEUE_AGE

"""The OpenADR 3.1 adapter's pure parts: event mapping (timing, payloads, priority, randomizeStart,
targets, malformed), the report schedule and bodies, the wire checks, and the [ven] config of 3.1."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from adrgw.core.schedule import evaluate
from adrgw.openadr3 import events as E
from adrgw.openadr3 import reports as R
from adrgw.openadr3 import wire
from adrgw.openadr3.config import Ven31Settings

from .support.config import config_ini, problems

pytestmark = pytest.mark.unit

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    return wire.iso(t)


def event(intervals: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    base = {"id": "event-1", "createdDateTime": iso(T0), "modificationDateTime": iso(T0), "objectType": "EVENT",
            "programID": "program-1", "intervalPeriod": {"start": iso(T0), "duration": "PT10M"},
            "intervals": intervals}
    base.update(fields)
    return base


def iv(n: int, kind: str, value: Any, **period: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": n, "payloads": [{"type": kind, "values": [value]}]}
    if period:
        out["intervalPeriod"] = period
    return out


def test_intervals_follow_the_event_period_and_their_own() -> None:
    raw = event([iv(0, "SIMPLE", 1), iv(1, "SIMPLE", 2),
                 iv(2, "SIMPLE", 3, start=iso(T0 + timedelta(hours=1)), duration="PT5M")])
    e = E.event_from_oa3(wire.event(raw))
    assert [(i.start, i.end, i.level) for i in e.intervals] == [
        (T0, T0 + timedelta(minutes=10), 1.0), (T0 + timedelta(minutes=10), T0 + timedelta(minutes=20), 2.0),
        (T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=5), 3.0)]
    assert evaluate([e], T0 + timedelta(minutes=15)).level == 2.0
    assert evaluate([e], T0 + timedelta(minutes=30)).level == 0.0


def test_forever_now_and_open_ended() -> None:
    raw = event([iv(0, "SIMPLE", 2)], intervalPeriod={"start": "0001-01-01T00:00:00Z", "duration": "P9999Y"},
                createdDateTime=iso(T0 - timedelta(minutes=1)))
    e = E.event_from_oa3(wire.event(raw))
    assert e.intervals[0].start == T0 - timedelta(minutes=1) and e.intervals[0].end is None
    # an open interval followed by another ends where it starts
    raw = event([iv(0, "SIMPLE", 1), iv(1, "SIMPLE", 2, start=iso(T0 + timedelta(minutes=3)))],
                intervalPeriod={"start": iso(T0)})
    e = E.event_from_oa3(wire.event(raw))
    assert [(i.start, i.end) for i in e.intervals] == [(T0, T0 + timedelta(minutes=3)), (T0 + timedelta(minutes=3), None)]


def test_priority_randomize_revision_and_other_payloads() -> None:
    raw = event([{"id": 0, "payloads": [{"type": "PRICE", "values": [0.31]}, {"type": "GHG", "values": ["x"]}]}],
                priority=0, modificationDateTime=iso(T0 + timedelta(seconds=5)))
    raw["intervalPeriod"]["randomizeStart"] = "PT2M"
    e = E.event_from_oa3(wire.event(raw))
    assert e.priority == 1  # 3.1 priority 0 (the highest) is the core's 1; none is the core's 0 (lowest)
    assert E.event_from_oa3(wire.event(event([iv(0, "SIMPLE", 1)]))).priority == 0
    assert e.start_after == timedelta(minutes=2)
    assert not e.has_level and [s.name for s in e.signals] == ["PRICE"]  # a string cannot be shown
    assert e.revision > E.revision(event([])) and e.revision.modified


@pytest.mark.parametrize("bad, reason", [
    (event([iv(0, "SIMPLE", 4)]), "SIMPLE level 4 is not one of 0, 1, 2, 3"),
    (event([iv(0, "SIMPLE", True)]), "is not one number"),
    (event([iv(0, "SIMPLE", 1)], priority=-1), "priority -1 is out of range"),
    (event([iv(0, "SIMPLE", 1)], intervalPeriod={"start": "2030-01-01"}), "not an RFC 3339 date-time"),
    (event([iv(0, "SIMPLE", 1)], intervalPeriod={"duration": "PT1H"}), "has no start"),
    (event([iv(0, "SIMPLE", 1)], intervalPeriod={"start": iso(T0), "duration": "-PT1H"}), "negative"),
    (event([iv(0, "PRICE", float("nan"))]), "not finite"),
    (event([iv(0, "SIMPLE", 1)], objectType="PROGRAM"), "is not EVENT"),
    (event([iv(0, "SIMPLE", 1)], id="../x"), "not an objectID"),
    (event([{"id": 0}]), "payloads is not an array"),
    ("just a string", "not an object"),
])
def test_malformed_events_are_refused_with_a_reason(bad: Any, reason: str) -> None:
    dist = E.distribution([bad, event([iv(0, "SIMPLE", 1)], id="good")])
    assert [e.event_id for e in dist.events] == ["good"]
    (m,) = dist.malformed
    assert reason in m.reason, m.reason


def test_targets_ours_by_adapter_knowledge_else_the_core_decides() -> None:
    assert E.criteria(event([], targets=["north"]), frozenset({"ven-31", "north"})) == {}
    assert E.criteria(event([]), frozenset()) == {}
    crit = E.criteria(event([], targets=["south"]), frozenset({"ven-31"}))
    assert crit == {"ven_id": frozenset({"south"}), "resource_id": frozenset({"south"})}


def spans(n: int, seconds: float = 60) -> list[tuple[datetime, datetime]]:
    return [(T0 + timedelta(seconds=seconds * k), T0 + timedelta(seconds=seconds * (k + 1))) for k in range(n)]


def test_schedule_defaults_one_report_at_the_end_over_all_intervals() -> None:
    lo, due = R.schedule(spans(4), {"payloadType": "USAGE"})
    assert lo == T0.timestamp() and due == ((T0 + timedelta(minutes=4)).timestamp(),)
    assert R.schedule(spans(4), {"payloadType": "USAGE", "historical": False}) is None
    assert R.schedule([(T0, None)], {"payloadType": "USAGE"}) is None


@hsettings(max_examples=200, deadline=None)
@given(n=st.integers(1, 12), start=st.integers(-1, 14), count=st.integers(-1, 5), frequency=st.integers(-1, 5),
       repeat=st.integers(-1, 6))
def test_schedule_properties(n: int, start: int, count: int, frequency: int, repeat: int) -> None:
    descriptor = {"payloadType": "USAGE", "startInterval": start, "numIntervals": count, "frequency": frequency,
                  "repeat": repeat}
    got = R.schedule(spans(n), descriptor)
    assert got is not None
    lo, due = got
    ends = {e.timestamp() for _, e in spans(n)}
    assert list(due) == sorted(set(due)) and set(due) <= ends  # ascending, at interval ends
    assert lo < due[0] and lo in {s.timestamp() for s, _ in spans(n)}
    if repeat > 0:
        assert len(due) <= repeat
    first = n - 1 if start < 0 or start >= n else start
    assert due[0] == spans(n)[first][1].timestamp()


def test_report_body_carries_only_measured_instants_without_nulls() -> None:
    plan = R.Plan("e/0", "e", "p", "ven e/0", (("device001", ""),), 100.0, (104.0,), None)
    body = R.body(plan, 104.0, {"": {100.0: 5.0, 101.0: 6.0, 103.0: 8.0, 104.0: 9.0}}, 1.0, "ven")
    intervals = body["resources"][0]["intervals"]
    assert [i["id"] for i in intervals] == [0, 1, 3]  # 102 was not read: absent; 104 is the next report's
    assert intervals[2]["payloads"] == [{"type": "USAGE", "values": [8.0]}]
    assert "units" not in body["payloadDescriptors"][0]  # unset: left out, never null
    assert R.Plan.from_json(plan.to_json()) == plan


def test_due_now_catches_up_with_the_latest() -> None:
    plan = R.Plan("e/0", "e", "p", "n", (("r", ""),), 0.0, (10.0, 20.0, 30.0))
    assert R.due_now(plan, 0, 5.0, 0.3) is None
    assert R.due_now(plan, 0, 25.0, 0.3) == 1
    assert R.due_now(plan, 2, 40.0, 0.3) == 2 and R.due_now(plan, 3, 40.0, 0.3) is None


def test_wire_durations_notifications_and_compact() -> None:
    assert wire.duration("PT1H30M", "d") == timedelta(hours=1, minutes=30)
    assert wire.duration("P9999Y", "d") is None and wire.duration("P1W", "d") == timedelta(days=7)
    with pytest.raises(wire.Invalid):
        wire.duration("1 hour", "d")
    assert wire.notification({"objectType": "EVENT", "operation": "DELETE", "object": {"id": "event-3"}}) == (
        "EVENT", "DELETE", "event-3")
    for bad in ({"objectType": "EVENT", "operation": "POST", "object": {"id": "e"}}, {"objectType": "X"}, []):
        with pytest.raises(wire.Invalid):
            wire.notification(bad)
    assert wire.compact({"a": None, "b": [{"c": None, "d": 1}]}) == {"b": [{"d": 1}]}


# -- config ----------------------------------------------------------------------------------------

V31 = {"protocol": "3.1", "vtn_url": "https://vtn.example/openadr3/3.1.0", "ven_name": "v1", "client_id": "ven-1",
       "client_secret": "s"}


def test_config_31_keys_and_defaults(tmp_path) -> None:
    from adrgw.settings_load import load

    path = tmp_path / "config.ini"
    path.write_text(config_ini(ven=V31, base={"ven": {}, "bacnet": {"address": "127.0.0.1/8"}}))
    ven = load(path).ven
    assert isinstance(ven, Ven31Settings)
    assert (ven.notifications, ven.poll_interval, ven.programs, ven.token_url) == ("auto", 30.0, (), None)


def test_config_31_problems_one_line_each(tmp_path) -> None:
    ven = {"protocol": "3.1", "vtn_url": "https://vtn.example/openadr3/3.1.0", "ven_name": "v1",
           "client_id": "ven-1", "ven_id": "x", "vtn_fingerprint": "AA:BB", "status_report": "true",
           "notifications": "webhook", "callback_url": "http://me.example/cb", "poll_interval": "0"}
    found = problems(tmp_path, config_ini(ven=ven, base={"ven": {}, "bacnet": {"address": "127.0.0.1/8"}}))
    text = "\n".join(found)
    for key in ("ven_id", "vtn_fingerprint", "status_report"):
        assert f"[ven] {key}: a key of protocol 2.0b, not used with protocol = 3.1" in text
    assert "[ven] callback_url: 'http://me.example/cb' is not an https:// URL" in text
    assert "[ven] poll_interval:" in text
    assert "[ven] client_secret: required (or client_secret_file)" in text
    assert len(found) == len(set(found))


def test_config_2b_unchanged_and_31_keys_named_there(tmp_path) -> None:
    found = problems(tmp_path, config_ini(ven={"client_id": "x"}))
    assert any("[ven] client_id: a key of protocol 3.1, not used with protocol = 2.0b" in p for p in found)
    from adrgw.settings_load import load

    (tmp_path / "ok.ini").write_text(config_ini())
    assert load(tmp_path / "ok.ini").ven.protocol == "2.0b"


# --- intervalPeriod semantics (spec: event.intervalPeriod "sets default start time and duration of
# intervals"; an interval's own "may set temporal aspects of interval or override event.intervalPeriod")

@pytest.mark.parametrize("now", ["0001-01-01", "0001-01-01T00:00:00", "0001-01-01T00:00:00Z",
                                 "0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00.000Z", "0001-01-01t00:00:00z",
                                 "0001-01-01T00:00:00-05:00", "0001-01-01T00:00:00+01:00"])
def test_start_0001_01_01_is_now_in_every_rfc3339_spelling(now: str) -> None:
    created = T0 - timedelta(minutes=1)
    for raw in (event([iv(0, "SIMPLE", 1)], intervalPeriod={"start": now, "duration": "PT5M"},
                      createdDateTime=iso(created)),
                event([iv(0, "SIMPLE", 1, start=now)], createdDateTime=iso(created))):
        e = E.event_from_oa3(wire.event(raw))
        assert e.intervals[0].start == created and e.intervals[0].end == created + timedelta(minutes=5 if
                                                                                               raw["intervals"][0].get("intervalPeriod") is None else 10)


@given(st.lists(st.tuples(st.integers(0, 1000), st.sampled_from([None, 1, 5, 60])), min_size=1, max_size=8),
       st.integers(1, 120))
@hsettings(max_examples=60, deadline=None)
def test_intervals_without_start_follow_one_another_in_list_order(items: list[tuple[int, Any]], default: int) -> None:
    """Each interval without its own start begins where the previous one (in the list, not by id: the
    spec says an interval id is "Not a sequence number") ended; its own duration overrides the event's
    default for that interval only."""
    raw = event([iv(n, "SIMPLE", 1, duration=f"PT{d}M") if d else iv(n, "SIMPLE", 1) for n, d in items],
                intervalPeriod={"start": iso(T0), "duration": f"PT{default}M"})
    e = E.event_from_oa3(wire.event(raw))
    cursor = T0
    for got, (_, d) in zip(e.intervals, items):
        assert got.start == cursor and got.end == cursor + timedelta(minutes=d or default)
        cursor = got.end


def test_own_start_overrides_and_the_next_follows_it_with_the_default_duration() -> None:
    raw = event([iv(7, "SIMPLE", 1, start=iso(T0 + timedelta(hours=2))), iv(3, "SIMPLE", 2),
                 iv(1, "SIMPLE", 3, duration="P9999Y")])
    e = E.event_from_oa3(wire.event(raw))
    h2 = T0 + timedelta(hours=2)
    assert [(i.start, i.end, i.level) for i in e.intervals] == [
        (h2, h2 + timedelta(minutes=10), 1.0), (h2 + timedelta(minutes=10), h2 + timedelta(minutes=20), 2.0),
        (h2 + timedelta(minutes=20), None, 3.0)]


def test_an_interval_after_an_open_ended_one_never_starts_and_says_so() -> None:
    raw = event([iv(0, "SIMPLE", 1), iv(1, "SIMPLE", 2)], intervalPeriod={"start": iso(T0), "duration": "P9999Y"})
    dist = E.distribution([raw])
    assert not dist.events and "interval 1 follows open-ended interval 0" in dist.malformed[0].reason


def test_event_duration_does_not_loop_or_cut_intervals() -> None:
    """Event ``duration`` "May be used to loop intervals. See User Guide." defines no rule: ignored."""
    e = E.event_from_oa3(wire.event(event([iv(0, "SIMPLE", 1)], duration="PT1H")))
    assert [(i.start, i.end) for i in e.intervals] == [(T0, T0 + timedelta(minutes=10))]


# --- randomizeStart per interval: the core has one random offset per event, shifting every interval

@given(st.one_of(st.none(), st.integers(0, 600)), st.lists(st.one_of(st.none(), st.integers(0, 600)), min_size=1,
                                                            max_size=6))
@hsettings(max_examples=80, deadline=None)
def test_start_after_is_the_largest_randomize_start_any_interval_gets(event_level: Any, own: list[Any]) -> None:
    raw = event([iv(n, "SIMPLE", 1, randomizeStart=f"PT{r}S") if r is not None else iv(n, "SIMPLE", 1)
                 for n, r in enumerate(own)])
    if event_level is not None:
        raw["intervalPeriod"]["randomizeStart"] = f"PT{event_level}S"
    effective = [r if r is not None else (event_level or 0) for r in own]
    e = E.event_from_oa3(wire.event(raw))
    assert e.start_after == timedelta(seconds=max(effective))
    note = E.interval_randomize_note(wire.event(raw))
    assert (note is None) == all(r is None for r in own)
    if note is not None:
        assert "applied event-wide" in note and f"PT{max(effective)}S" in note


def test_per_interval_randomize_start_without_an_event_level_one() -> None:
    raw = event([iv(0, "SIMPLE", 1), iv(1, "SIMPLE", 2, randomizeStart="PT5M"), iv(2, "SIMPLE", 3, randomizeStart="PT1M")])
    e = E.event_from_oa3(wire.event(raw))
    assert e.start_after == timedelta(minutes=5)
    assert E.interval_randomize_note(wire.event(raw)) == (
        "event event-1: randomizeStart of intervals 1, 2 applied event-wide (one random start offset in "
        "[0, PT300S] shifts all its intervals)")
    bad = event([iv(0, "SIMPLE", 1, randomizeStart="soon")])
    assert E.interval_randomize_note(bad) is None and E.distribution([bad]).malformed


# The 3.1.0 spec's duration pattern (schema `duration`), copied from the OpenAPI file.
SPEC_DURATION = re.compile(r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?(?:T(?:(\d+)H)?(?:(\d+)M)?"
                           r"(?:(\d+(?:\.\d+)?)S)?)?$")


@given(seconds=st.floats(0, 1e10, allow_nan=False))
def test_iso_duration_matches_the_spec_pattern_and_reads_back(seconds: float) -> None:
    """``:g`` wrote 1,000,000 s as PT1e+06S, which the spec's pattern refuses."""
    text = wire.iso_duration(seconds)
    assert SPEC_DURATION.match(text), text
    back = wire.duration(text, "test")
    assert back is not None and abs(back.total_seconds() - seconds) <= 1e-6 * max(1.0, seconds)

"""The core through its ports, with fake adapters: no sockets, no sleeps, no openleadr, no BACnet.

A fake protocol (a few lines, nothing like OpenADR 2.0b's messages) implements the ProtocolAdapter
and VtnLink ports and hands the EventController Distributions; a fake point sink records what the
building would see; time is a fake clock and the controller's timer a fake scheduler (the test
advances the clock and fires the timer itself). This is the seam the OpenADR 3.1 adapter (issue 20)
plugs into: nothing here changes the core.
"""

from __future__ import annotations

import pytest

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Sequence

from adrgw.core import ports
from adrgw.core.events import EventController
from adrgw.core.model import Distribution, EventOutcome, LinkState, Malformed, OptChange, Outcome
from adrgw.core.revision import Revision
from adrgw.core.schedule import Event, Interval, Signal, event_from_dict, event_to_dict
from adrgw.core.targeting import Identity

pytestmark = pytest.mark.unit

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)
ME = Identity(ven_id="ven-7", resource_ids=frozenset({"meter-1"}), group_ids=frozenset({"north"}))


# -- fakes ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeTimer:
    delay: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """The controller's timer, driven by the test: ``armed`` is the one pending wake-up."""

    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(delay, callback)
        self.timers.append(timer)
        return timer

    @property
    def armed(self) -> Optional[FakeTimer]:
        pending = [t for t in self.timers if not t.cancelled]
        return pending[-1] if pending else None


class Points:
    """ports.PointSink: what the building sees."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.levels: list[float] = []

    def set_value(self, name: str, value: Any) -> bool:
        changed = bool(self.values.get(name) != value)
        self.values[name] = value
        return changed

    def set_level(self, value: float) -> bool:
        if not self.levels or self.levels[-1] != value:
            self.levels.append(value)
        return self.set_value("level", value)


class Opts:
    """ports.OptPort: what would go to the VTN."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[OptChange, ...]]] = []

    def answers_changed(self, changes: Sequence[OptChange]) -> None:
        self.sent.append(("answers", tuple(changes)))

    async def opted_out(self, changes: Sequence[OptChange]) -> None:
        self.sent.append(("out", tuple(changes)))

    async def opted_in(self) -> None:
        self.sent.append(("in", ()))


class FakeLink:
    """ports.VtnLink of the fake protocol: its messages are plain dicts
    ``{"id", "rev", "start" (minutes from T0), "levels" (10-minute steps), "to" (kind -> values)}``;
    a message without "levels" cannot be parsed. Outcomes map to the fake protocol's own words."""

    WORDS = {Outcome.ACCEPTED: "yes", Outcome.OPTED_OUT: "no", Outcome.NOT_TARGETED: "not-me",
             Outcome.MALFORMED: "bad"}

    def __init__(self, sink: ports.EventSink) -> None:
        self.sink = sink
        self.answers: list[dict[str, str]] = []

    async def run(self) -> None:  # a real link would poll or subscribe here
        pass

    def state(self) -> LinkState:
        return LinkState(registered=True, online=True, ven_id=ME.ven_id, last_contact=T0)

    async def deliver(self, messages: list[dict[str, Any]]) -> dict[str, str]:
        events, malformed = [], []
        for m in messages:
            if "levels" not in m:
                malformed.append(Malformed(m["id"], Revision.number(m["rev"]), f"{m['id']}: no levels"))
                continue
            start = T0 + timedelta(minutes=m["start"])
            intervals = tuple(Interval(start + timedelta(minutes=10 * k), start + timedelta(minutes=10 * (k + 1)),
                                       float(level)) for k, level in enumerate(m["levels"]))
            events.append(Event(m["id"], Revision.number(m["rev"]), intervals,
                                signals=(Signal("SIMPLE", "level", intervals),)))
        targets = {m["id"]: {kind: frozenset(v) for kind, v in m.get("to", {}).items()} for m in messages}
        outcomes = await self.sink.apply(Distribution(tuple(events), tuple(malformed), targets))
        answer = {o.event_id: self.WORDS[o.outcome] for o in outcomes}
        self.answers.append(answer)
        return answer


@dataclass
class FakeReports:
    last_delivery: Optional[datetime] = None
    reports_sent: int = 0
    rearmed: int = 0

    def rearm(self) -> None:
        self.rearmed += 1

    def report_period(self) -> Optional[timedelta]:
        return None


@dataclass
class FakeAdapter:
    """ports.ProtocolAdapter: opts first, then the link for the core's sink."""

    _opts: Opts = field(default_factory=Opts)
    _reports: FakeReports = field(default_factory=FakeReports)
    built: Optional[FakeLink] = None

    @property
    def opts(self) -> Opts:
        return self._opts

    @property
    def reports(self) -> FakeReports:
        return self._reports

    def link(self, sink: ports.EventSink) -> FakeLink:
        self.built = FakeLink(sink)
        return self.built


class Gateway:
    """The composition a real root does (app.py), with fakes around the real core."""

    def __init__(self) -> None:
        self.clock = Clock(T0)
        self.scheduler = Scheduler()
        self.points = Points()
        self.adapter = FakeAdapter()
        adapter: ports.ProtocolAdapter = self.adapter  # the fake satisfies the port (mypy checks it)
        self.controller = EventController(self.points, clock=self.clock, identity=lambda: ME,
                                          opts=adapter.opts, schedule=self.scheduler)
        self.link = self.adapter.link(self.controller)
        link: ports.VtnLink = self.link
        assert link.state().online

    def at(self, minutes: float) -> None:
        """Advance the clock; fire the timer if it is due (what the loop would do)."""
        self.clock.now = T0 + timedelta(minutes=minutes)
        timer = self.scheduler.armed
        if timer is not None:
            timer.cancel()
        self.controller.refresh()

    @property
    def level(self) -> float:
        return float(self.points.values["level"])


def simple(event_id: str = "e1", rev: int = 0, start: float = 5, levels: Sequence[int] = (1, 2, 3),
           **more: Any) -> dict[str, Any]:
    return {"id": event_id, "rev": rev, "start": start, "levels": list(levels), **more}


# -- the level through the ports ------------------------------------------------------------------


async def test_a_fake_protocol_drives_the_level_0_1_2_3_0_with_a_fake_clock() -> None:
    gw = Gateway()
    assert await gw.link.deliver([simple()]) == {"e1": "yes"}
    assert gw.level == 0.0 and gw.points.values[ports.EVENT_STATUS] == 2  # far
    # The timer ticks each second while the start-in countdown shows something.
    timer = gw.scheduler.armed
    assert timer is not None and timer.delay == 1.0 and gw.points.values[ports.START_IN] == 300.0
    for minute, level in ((5, 1.0), (15, 2.0), (25, 3.0), (35, 0.0)):
        gw.at(minute)
        assert gw.level == level, minute
    assert gw.points.levels == [0.0, 1.0, 2.0, 3.0, 0.0]
    assert gw.points.values[ports.EVENT_ACTIVE] is False and gw.controller.active_event is None
    assert gw.scheduler.armed is None  # nothing left to wake up for
    gw.at(15)  # back inside: the schedule is a function of the clock alone
    assert gw.points.values[ports.EVENT_ACTIVE] is True and gw.points.values[ports.REMAINING] == 20 * 60.0


async def test_a_higher_revision_replaces_and_a_lower_one_is_ignored() -> None:
    gw = Gateway()
    await gw.link.deliver([simple(rev=1, levels=(1, 1, 1))])
    gw.at(6)
    assert gw.level == 1.0
    assert await gw.link.deliver([simple(rev=2, levels=(3, 3, 3))]) == {"e1": "yes"}
    assert gw.level == 3.0 and gw.controller.events["e1"].revision == Revision.number(2)
    assert await gw.link.deliver([simple(rev=0, levels=(2, 2, 2))]) == {"e1": "yes"}
    assert gw.level == 3.0 and gw.controller.events["e1"].revision.label == "2"


async def test_not_targeted_moves_nothing_and_malformed_keeps_the_held_version() -> None:
    gw = Gateway()
    other = simple("e2", start=0, levels=(3,), to={"ven_id": ["ven-9"], "region": ["x"]})
    mine = simple("e3", start=0, levels=(2,), to={"group_id": ["north"]})
    answers = await gw.link.deliver([other, mine])
    assert answers == {"e2": "not-me", "e3": "yes"}
    assert gw.level == 2.0 and set(gw.controller.events) == {"e3"}
    # e3 now arrives malformed: it keeps its last good version and still drives the level.
    broken = {"id": "e3", "rev": 1}
    assert await gw.link.deliver([broken]) == {"e3": "bad"}
    assert gw.level == 2.0 and gw.controller.events["e3"].revision.label == "0"
    # Listed no more: cancelled by implication.
    assert await gw.link.deliver([]) == {}
    assert gw.level == 0.0 and not gw.controller.events


async def test_opt_changes_flow_out_through_the_opt_port() -> None:
    gw = Gateway()
    await gw.link.deliver([simple(start=0)])
    assert gw.level == 1.0
    await gw.controller.set_opt_out(True)
    assert gw.level == 0.0 and gw.points.values[ports.OPT_OUT] is True
    out = [OptChange("e1", Revision.number(0), True)]
    assert gw.adapter.opts.sent == [("answers", tuple(out)), ("out", tuple(out))]
    # An event arriving while opted out is answered "opted out" and gets its own opt.
    assert await gw.link.deliver([simple(start=0), simple("e4", start=0, levels=(3,))]) == {"e1": "no", "e4": "no"}
    assert gw.adapter.opts.sent[-1] == ("out", (OptChange("e1", Revision.number(0), True),
                                                OptChange("e4", Revision.number(0), True)))
    assert gw.level == 0.0
    await gw.controller.set_opt_out(False)
    assert [kind for kind, _ in gw.adapter.opts.sent][-1] == "in" and gw.level == 3.0  # e4 wins: the most recent


async def test_outcomes_are_typed_for_the_adapter() -> None:
    gw = Gateway()
    outcomes = await gw.controller.apply(Distribution(malformed=(Malformed(None, Revision(), "no id at all"),)))
    assert outcomes == []  # nothing to answer without an id (logged)
    past = simple("old", start=-60, levels=(1,))
    assert await gw.link.deliver([past]) == {}  # already over: nothing to opt into
    result = await gw.controller.apply(Distribution())
    assert result == [] and all(isinstance(o, EventOutcome) for o in result)


# -- the model ------------------------------------------------------------------------------------


def test_revisions_order_by_key_only() -> None:
    assert Revision.number(2) > Revision.number(1) and Revision.number(0) == Revision()
    stamped = Revision((T0.timestamp(),), T0.isoformat(), modified=True)  # how a 3.1 adapter may stamp
    assert stamped == Revision((T0.timestamp(),), "another label") and stamped > Revision.number(3)
    assert Revision.from_json(json.loads(json.dumps(stamped.to_json()))) == stamped


def test_event_records_of_the_current_release_still_load() -> None:
    """A record stored before revisions existed (key "modification_number") loads as Revision.number."""
    legacy = {"event_id": "ev-1", "modification_number": 3,
              "intervals": [[T0.timestamp(), T0.timestamp() + 600, 2.0]], "priority": 1, "cancelled": False,
              "test_event": False, "signal_name": "SIMPLE", "seq": 4, "start_after": 0.0, "offset": 0.0,
              "ramp_up": None, "notification": None, "cancel_at": None, "opted_out": False,
              "signals": [["SIMPLE", "level", [[T0.timestamp(), T0.timestamp() + 600, 2.0]]]], "has_level": True}
    event = event_from_dict(json.loads(json.dumps(legacy)))
    assert event.revision == Revision.number(3) and event.revision.label == "3" and event.revision.modified
    assert event.intervals == (Interval(T0, T0 + timedelta(minutes=10), 2.0),)
    again = event_from_dict(json.loads(json.dumps(event_to_dict(event))))
    assert again == event and again.revision.label == "3" and "modification_number" not in event_to_dict(event)

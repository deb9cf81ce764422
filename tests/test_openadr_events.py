"""The OpenADR 2.0b adapter's event mapping (adrgw/openadr/events.py), without a VTN: openleadr's dicts
-> the core's Distribution, the core's outcomes -> oadrCreatedEvent answers (optType, code)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from adrgw.core.model import Distribution, EventOutcome, Outcome
from adrgw.core.revision import Revision
from adrgw.openadr.events import (EVENT_REFUSED, OK, TARGET_MISMATCH, EventAnswers, answer, distribution_from_oadr,
                                  modification_number)
from adrgw.openadr.opt import OptChannel

pytestmark = pytest.mark.unit

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)


def raw(event_id: str, mod: int = 0, levels: tuple[float, ...] = (1.0,), targets: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_descriptor": {"event_id": event_id, "modification_number": mod, "event_status": "far"},
        "active_period": {"dtstart": T0, "duration": timedelta(minutes=10 * len(levels))},
        "event_signals": [{"signal_name": "SIMPLE", "signal_type": "level", "intervals": [
            {"dtstart": T0 + timedelta(minutes=10 * k), "duration": timedelta(minutes=10), "signal_payload": lv}
            for k, lv in enumerate(levels)]}]}
    if targets is not None:
        event["targets"] = targets
    return event


@pytest.mark.parametrize("outcome, expected", [(Outcome.ACCEPTED, ("optIn", OK)), (Outcome.OPTED_OUT, ("optOut", OK)),
                                               (Outcome.NOT_TARGETED, ("optOut", TARGET_MISMATCH)),
                                               (Outcome.MALFORMED, ("optOut", EVENT_REFUSED))])
def test_outcomes_map_to_2_0b_answers(outcome: Outcome, expected: tuple[str, int]) -> None:
    assert answer(EventOutcome("e1", Revision.number(4), outcome)) == ("e1", 4, *expected)
    assert (TARGET_MISMATCH, EVENT_REFUSED) == (462, 400)


def test_openleadr_dicts_become_a_distribution() -> None:
    bad = raw("e2", mod=3, levels=(7.0,))  # SIMPLE outside 0..3
    dist = distribution_from_oadr([raw("e1", mod=2, targets=[{"ven_id": "v1"}, {"group_id": "g"}]), bad,
                                   "not an event"])
    assert [e.event_id for e in dist.events] == ["e1"]
    event = dist.events[0]
    assert event.revision == Revision.number(2) and event.intervals[0].start == T0 and event.intervals[0].level == 1.0
    assert dist.targets["e1"] == {"ven_id": frozenset({"v1"}), "group_id": frozenset({"g"})}
    assert dist.targets["e2"] == {}
    assert [(m.event_id, m.revision, "SIMPLE level" in m.reason) for m in dist.malformed] == [
        ("e2", Revision.number(3), True), (None, Revision.number(0), False)]
    assert modification_number(event.revision) == 2


class Sink:
    def __init__(self, outcomes: list[EventOutcome]) -> None:
        self.outcomes = outcomes
        self.got: list[Distribution] = []

    async def apply(self, distribution: Distribution) -> list[EventOutcome]:
        self.got.append(distribution)
        return self.outcomes


async def test_answers_follow_the_vtn_order_and_not_targeted_is_logged_once(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="adrgw.events")
    outcomes = [EventOutcome("b", Revision.number(1), Outcome.ACCEPTED),
                EventOutcome("a", Revision.number(0), Outcome.NOT_TARGETED)]
    answers = EventAnswers(Sink(outcomes))
    listed = [raw("a", targets=[{"ven_id": "other"}]), raw("b", mod=1)]
    assert await answers.distribute(listed) == [("a", 0, "optOut", 462), ("b", 1, "optIn", 200)]
    await answers.distribute(listed)
    lines = [r.getMessage() for r in caplog.records if "not targeted" in r.getMessage()]
    assert lines == ["event a (modification 0) is not targeted at this VEN (eiTarget: venID other): not applied, "
                     "answered optOut (462)"]


class Service:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def queue_answers(self, opts: list[tuple[str, int, str]]) -> None:
        self.calls.append(("answers", opts))

    async def opted_out(self, events: list[tuple[str, int]]) -> None:
        self.calls.append(("out", events))

    async def opted_in(self) -> None:
        self.calls.append(("in", None))


async def test_opt_changes_become_eiopt_and_created_event_answers() -> None:
    from adrgw.core.model import OptChange

    service = Service()
    channel = OptChannel(service)  # type: ignore[arg-type]
    changes = [OptChange("e1", Revision.number(2), True), OptChange("e2", Revision.number(0), False)]
    channel.answers_changed(changes)
    await channel.opted_out(changes[:1])
    await channel.opted_in()
    assert service.calls == [("answers", [("e1", 2, "optOut"), ("e2", 0, "optIn")]), ("out", [("e1", 2)]),
                             ("in", None)]

"""Pure rules of issue 12 items 6 and 8: eiTarget (targeting.py), the level's one signal, the SIMPLE
range, [signal.NAME] values and their config.ini errors."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.settings_load import load
from adrgw.core.schedule import Event, evaluate, event_from_dict, event_to_dict, with_offset
from adrgw.core.signals import SignalPoint, value_at
from adrgw.core.targeting import IDENTITY_KINDS, Identity, is_targeted
from adrgw.openadr.events import EventAnswers, event_from_oadr, target_values

from .support.config import MINIMAL
from .support.config import problems as config_problems

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
ME = Identity(ven_id="ven-1", resource_ids=frozenset({"device001", "chiller"}), group_ids=frozenset({"north"}),
              party_ids=frozenset({"acme"}))


def signal(name: str, values: list[float], kind: str = "level", start: datetime = T0, step: int = 60) -> dict:
    return {"signal_name": name, "signal_type": kind,
            "intervals": [{"dtstart": start + timedelta(seconds=n * step), "duration": timedelta(seconds=step),
                           "signal_payload": v} for n, v in enumerate(values)]}


def raw_event(signals: list[dict], targets: object = None, event_id: str = "e1", priority: int = 0) -> dict:
    return {"event_descriptor": {"event_id": event_id, "modification_number": 0, "event_status": "far",
                                 "priority": priority},
            "active_period": {"dtstart": T0, "duration": timedelta(minutes=3)},
            "event_signals": signals, "targets": targets, "response_required": "always"}


# -- targeting ------------------------------------------------------------------------------------

@pytest.mark.parametrize("targets, ours", [
    (None, True), ([], True), ([{}], True),  # empty eiTarget: the recipient is the target
    ([{"ven_id": "ven-1"}], True), ([{"ven_id": "ven-2"}], False),
    ([{"resource_id": "chiller"}], True), ([{"resource_id": "boiler"}], False),
    ([{"group_id": "north"}], True), ([{"group_name": "north"}], True), ([{"group_id": "south"}], False),
    ([{"party_id": "acme"}], True), ([{"party_id": "other"}], False),
    ([{"ven_id": "ven-2"}, {"group_id": "north"}], True),  # criteria are OR'd
    ([{"ven_id": "ven-2"}, {"resource_id": "boiler"}], False),
    ([{"end_device_asset": {"mrid": "Thermostat"}}], True),  # kinds we cannot evaluate: not a criterion
    ([{"emix_interfaces": "x"}, {"ven_id": "ven-9"}], False),
])
def test_examples(targets, ours) -> None:
    assert is_targeted(target_values(raw_event([signal("SIMPLE", [1])], targets)), ME) is ours


def test_openleadr_targets_by_type_is_read_too() -> None:
    raw = {"targets_by_type": {"ven_id": ["ven-2"], "resource_id": ["device001"]}}
    assert target_values(raw) == {"ven_id": {"ven-2"}, "resource_id": {"device001"}}
    assert is_targeted(target_values(raw), ME)


def test_unregistered_gateway_is_not_named_by_any_venid() -> None:
    assert not is_targeted({"ven_id": {"ven-1"}}, replace(ME, ven_id=None))


ids = st.text(alphabet="abc-1", min_size=1, max_size=4)
criteria_st = st.dictionaries(st.sampled_from(IDENTITY_KINDS), st.sets(ids, max_size=3), max_size=5)
identity_st = st.builds(Identity, ven_id=st.one_of(st.none(), ids), resource_ids=st.frozensets(ids, max_size=3),
                        group_ids=st.frozensets(ids, max_size=3), party_ids=st.frozensets(ids, max_size=3))


@settings(max_examples=300, deadline=None)
@given(criteria=criteria_st, me=identity_st, extra=criteria_st)
def test_or_semantics(criteria, me, extra) -> None:
    ours = is_targeted(criteria, me)
    # empty -> ours; otherwise ours exactly when one named value is ours
    mine = {"ven_id": {me.ven_id} - {None}, "resource_id": me.resource_ids, "group_id": me.group_ids,
            "group_name": me.group_ids, "party_id": me.party_ids}
    expected = not any(criteria.values()) or any(v in mine[k] for k, vs in criteria.items() for v in vs)
    assert ours == expected
    # adding criteria never removes us once a criterion names us (OR), and our own venID always works
    merged = {k: criteria.get(k, set()) | extra.get(k, set()) for k in IDENTITY_KINDS}
    if ours and any(criteria.values()):
        assert is_targeted(merged, me)
    if me.ven_id:
        assert is_targeted({**criteria, "ven_id": criteria.get("ven_id", set()) | {me.ven_id}}, me)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=5)),
                    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=10), c, max_size=3)),
                    max_leaves=15))
def test_hostile_targets_never_raise(junk) -> None:
    criteria = target_values({"targets": junk, "targets_by_type": junk})
    assert set(criteria) <= set(IDENTITY_KINDS)
    is_targeted(criteria, ME)


# -- the level's one signal, SIMPLE range ---------------------------------------------------------

def test_level_carries_only_simple_never_a_price_or_setpoint() -> None:
    price = event_from_oadr(raw_event([signal("ELECTRICITY_PRICE", [0.31], "price")]))
    setpoint = event_from_oadr(raw_event([signal("LOAD_DISPATCH", [500], "setpoint")], event_id="e2"))
    assert not price.has_level and not setpoint.has_level
    state = evaluate([price, setpoint], T0 + timedelta(seconds=1))
    assert state.level == 0.0 and state.active  # the event is active, the level is not a price


def test_simple_beside_other_signals_drives_the_level() -> None:
    event = event_from_oadr(raw_event([signal("ELECTRICITY_PRICE", [0.31], "price"), signal("SIMPLE", [2])]))
    assert event.has_level and evaluate([event], T0).level == 2.0


def test_configured_signal_name_replaces_simple_on_the_level() -> None:
    event = event_from_oadr(raw_event([signal("SIMPLE", [1]), signal("LOAD_CONTROL", [7.5], "x-loadControlLevelOffset")]),
                            signal_name="LOAD_CONTROL")
    assert evaluate([event], T0).level == 7.5


def test_price_only_event_with_higher_priority_does_not_hide_a_simple_level() -> None:
    price = event_from_oadr(raw_event([signal("ELECTRICITY_PRICE", [0.31], "price")], event_id="p", priority=1))
    simple = event_from_oadr(raw_event([signal("SIMPLE", [3])], event_id="s", priority=2))
    state = evaluate([price, simple], T0 + timedelta(seconds=5))
    assert state.event_id == "p" and state.level == 3.0


@pytest.mark.parametrize("level", [-1, 4, 7, 3.5, 0.5])
def test_simple_payload_outside_the_levels_is_malformed(level) -> None:
    with pytest.raises(ValueError, match="SIMPLE level"):
        event_from_oadr(raw_event([signal("SIMPLE", [1, level])]))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_simple_accepts_exactly_0_1_2_3(level) -> None:
    try:
        event_from_oadr(raw_event([signal("simple", [level])]))
    except ValueError:
        assert level not in (0, 1, 2, 3)
    else:
        assert level in (0, 1, 2, 3)


# -- [signal.NAME] values -------------------------------------------------------------------------

PRICE = SignalPoint("price", "ELECTRICITY_PRICE", None, "ADR-Signal-price", 100, idle=-1.0)
DISPATCH = SignalPoint("dispatch", "LOAD_DISPATCH", "setpoint", "Dispatch", 101)


def test_signal_point_follows_its_signal_and_idles_outside() -> None:
    event = event_from_oadr(raw_event([signal("SIMPLE", [1, 2]), signal("ELECTRICITY_PRICE", [0.31, 0.45], "price")]))
    assert value_at([event], T0 - timedelta(seconds=1), PRICE) == -1.0
    assert value_at([event], T0, PRICE) == 0.31
    assert value_at([event], T0 + timedelta(seconds=60), PRICE) == 0.45
    assert value_at([event], T0 + timedelta(seconds=120), PRICE) == -1.0
    assert value_at([event], T0, DISPATCH) == 0.0  # no LOAD_DISPATCH in this event


def test_signal_type_filter_and_priority_and_opt_out() -> None:
    delta = event_from_oadr(raw_event([signal("LOAD_DISPATCH", [-50], "delta")], event_id="d", priority=1))
    setpoint = event_from_oadr(raw_event([signal("LOAD_DISPATCH", [500], "setpoint")], event_id="s", priority=2))
    assert value_at([delta, setpoint], T0, DISPATCH) == 500  # only the setpoint type is exposed
    low = event_from_oadr(raw_event([signal("ELECTRICITY_PRICE", [0.2], "price")], event_id="a", priority=2))
    high = event_from_oadr(raw_event([signal("ELECTRICITY_PRICE", [0.9], "price")], event_id="b", priority=1))
    assert value_at([low, high], T0, PRICE) == 0.9
    assert value_at([low, replace(high, opted_out=True)], T0, PRICE) == 0.2
    assert value_at([replace(low, cancelled=True)], T0, PRICE) == -1.0


@settings(max_examples=100, deadline=None)
@given(offset=st.integers(0, 600), values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=4))
def test_randomization_moves_signals_with_the_level_and_persistence_keeps_them(offset, values) -> None:
    event = event_from_oadr(raw_event([signal("SIMPLE", [1] * len(values)), signal("BID_LOAD", values, "setpoint")]))
    shifted = with_offset(event, timedelta(seconds=offset))
    point = SignalPoint("bid", "BID_LOAD", None, "Bid", 100)
    at = T0 + timedelta(seconds=offset)
    assert value_at([shifted], at, point) == values[0]
    assert evaluate([shifted], at).level == 1.0
    restored = event_from_dict(event_to_dict(shifted))
    assert restored == shifted and value_at([restored], at, point) == values[0]


def test_records_stored_before_signals_existed_still_load() -> None:
    event = event_from_oadr(raw_event([signal("SIMPLE", [2])]))
    old = event_to_dict(event)
    del old["signals"], old["has_level"]
    loaded = event_from_dict(old)
    assert isinstance(loaded, Event) and loaded.has_level and evaluate([loaded], T0).level == 2.0


# -- config.ini -----------------------------------------------------------------------------------

def problems(tmp_path: Path, text: str) -> list[str]:
    if text.startswith("[ven]\n"):  # more [ven] keys: into the one [ven] section
        text = MINIMAL.replace("[bacnet]", text[len("[ven]\n"):] + "\n[bacnet]")
    else:
        text = MINIMAL + text
    return config_problems(tmp_path, text)


def test_new_keys_parse(tmp_path: Path) -> None:
    (tmp_path / "config.ini").write_text(MINIMAL.replace("[bacnet]", "group_ids = north, GRP-7\nparty_ids = acme\n[bacnet]")
                                         + "[signal.price]\nsignal_name = electricity_price\nsignal_type = price\n"
                                           "units = currency1\nidle = -1\n"
                                           "[signal.dispatch]\nsignal_name = LOAD_DISPATCH\nobject_name = Dispatch kW\n"
                                           "instance = 20\n[signal.bid]\nsignal_name = BID_LOAD\n")
    s = load(tmp_path / "config.ini")
    assert s.ven.group_ids == ("north", "GRP-7") and s.ven.party_ids == ("acme",)
    price, dispatch, bid = s.signals
    assert (price.signal_name, price.signal_type, price.object_name, price.instance, price.units, price.idle) == \
        ("ELECTRICITY_PRICE", "price", "ADR-Signal-price", 100, "currency1", -1.0)
    assert (dispatch.object_name, dispatch.instance, dispatch.signal_type, dispatch.idle) == ("Dispatch kW", 20, None, 0.0)
    assert bid.instance == 101 and bid.units == "no-units"


@pytest.mark.parametrize("text, expected", [
    ("[ven]\ngroup_ids = a, a", "config.ini: [ven] group_ids: 'a' is listed twice"),
    ("[ven]\nparty_ids = a b", "config.ini: [ven] party_ids: 'a b' contains white space"),
    ("[signal.p]\nsignal_type = price", "config.ini: [signal.p] signal_name: required but missing"),
    ("[signal.p]\nsignal_name = PRICE_OF_TEA", "config.ini: [signal.p] signal_name: unknown signal name 'PRICE_OF_TEA'"),
    ("[signal.p]\nsignal_name = SIMPLE", "config.ini: [signal.p] signal_name: SIMPLE is already carried by the event level"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\nsignal_type = cheap",
     "config.ini: [signal.p] signal_type: unknown signal type 'cheap'"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\nunits = bananas",
     "config.ini: [signal.p] units: unknown BACnet engineering unit 'bananas'"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\nidle = cheap", "config.ini: [signal.p] idle: 'cheap' is not a number"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\ninstance = 3",
     "config.ini: [signal.p] instance: analogValue 3 is already used by built-in point 'ADR-Event-Start-In'"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\ninstance = 1",
     "config.ini: [signal.p] instance: analogValue 1 is already used by built-in point 'ADR-Event-Level'"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\ninstance = -2", "config.ini: [signal.p] instance: '-2' is not an integer"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\ninstance = 4194303",
     "config.ini: [signal.p] instance: 4194303 is out of range 0..4194302"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\ninstance = 7\n[signal.q]\nsignal_name = BID_LOAD\ninstance = 7",
     "config.ini: [signal.q] instance: analogValue 7 is already used by [signal.p]"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\n[signal.q]\nsignal_name = electricity_price",
     "config.ini: [signal.q] signal_name: the same signal is already exposed by [signal.p]"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\nobject_name = ADR-Opt-Out",
     "config.ini: [signal.p] object_name: 'ADR-Opt-Out' is already used by a built-in point"),
    ("[signal.p]\nsignal_name = ELECTRICITY_PRICE\ncolour = red", "config.ini: [signal.p] colour: unknown key"),
    ("[signal.p q]\nsignal_name = ELECTRICITY_PRICE", "config.ini: [signal.p q]: the name after 'signal.' may use"),
])
def test_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(p.startswith(expected) for p in found), found


def test_level_signal_can_move_and_simple_then_gets_its_own_point(tmp_path: Path) -> None:
    (tmp_path / "config.ini").write_text(MINIMAL + "[points]\nsignal_name = LOAD_CONTROL\n"
                                         "[signal.simple]\nsignal_name = SIMPLE\n")
    assert load(tmp_path / "config.ini").signals[0].signal_name == "SIMPLE"
    assert any("LOAD_CONTROL is already carried" in p for p in problems(
        tmp_path, "[points]\nsignal_name = LOAD_CONTROL\n[signal.lc]\nsignal_name = LOAD_CONTROL\n"))


def test_every_problem_of_a_signal_section_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, "[signal.p]\nsignal_name = SIMPLE\ninstance = 2\nobject_name = ADR-Meter-Value\n")
    assert [p.split(":")[1].strip() for p in found] == ["[signal.p] signal_name", "[signal.p] object_name",
                                                        "[signal.p] instance"]


# -- the controller with hostile eiTargets ----------------------------------------------------------

class PointValues:
    """The Device protocol as plain values (the BACnet side is exercised in test_eiopt_targeting)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def set_value(self, name: str, value: object) -> bool:
        changed = self.values.get(name) != value
        self.values[name] = value
        return changed

    def set_level(self, value: float) -> bool:
        return self.set_value("level", value)


junk = st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats()),
                    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=10), c, max_size=3)),
                    max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(targets=junk, mod=junk, twice=st.booleans())
def test_controller_answers_every_event_whatever_its_target_and_never_raises(targets, mod, twice) -> None:
    from adrgw.core.events import EventController

    async def run() -> None:
        device = PointValues()
        controller = EventController(device, identity=lambda: ME, signal_points=(PRICE,), clock=lambda: T0)
        raw = raw_event([signal("SIMPLE", [2]), signal("ELECTRICITY_PRICE", [0.5], "price")], targets)
        raw["event_descriptor"]["modification_number"] = mod
        answers = EventAnswers(controller)
        for _ in range(2 if twice else 1):
            responses = await answers.distribute([raw])
            assert [r[0] for r in responses] == ["e1"]
        ours = is_targeted(target_values(raw), ME)
        code = responses[0][3]
        assert (code == 462) == (not ours)
        assert ("e1" in controller.events) == (ours and code == 200)
        applied = ours and code == 200
        assert device.values["level"] == (2.0 if applied else 0.0)
        assert device.values["ADR-Signal-price"] == (0.5 if applied else -1.0)
        controller.close()

    asyncio.run(run())

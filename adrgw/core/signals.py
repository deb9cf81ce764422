"""Every event signal on its own point: ``[signal.NAME]`` settings and the pure value selection.

ADR-Event-Level carries one signal only (SIMPLE, or ``[points] signal_name``): a price of 0.31 or a
500 kW setpoint is not a level. Any other signal (ELECTRICITY_PRICE, LOAD_DISPATCH, LOAD_CONTROL,
BID_LOAD, ...) can be exposed as its own read-only analogValue through a ``[signal.NAME]`` section.
The value follows the same rules as the level (priority, randomization, test events, opt-out,
cancellation), computed from the stored events, so it survives a restart like the level does.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Optional

from adrgw.core.schedule import SIMPLE, Event, Interval, _rank, eligible

# analogValue instances of [signal.NAME] points without an explicit ``instance``: 100, 101, ...
# in the order of the sections in the file (far from the built-in points 1..4).
FIRST_SIGNAL_INSTANCE = 100
MAX_INSTANCE = 4194302  # ASHRAE 135: object instance 0..4194302


@dataclass(frozen=True)
class SignalPoint:
    """A ``[signal.NAME]`` section: one signal of the VTN's events on its own analogValue."""

    name: str  # NAME of the section
    signal_name: str  # matched case-insensitively against eiEventSignal signalName
    signal_type: Optional[str]  # None: any type
    object_name: str
    instance: int
    units: str = "noUnits"  # BACnet engineering units
    idle: float = 0.0  # the value outside events

    def matches(self, name: str, kind: str) -> bool:
        return name.upper() == self.signal_name.upper() and (
            self.signal_type is None or kind.lower() == self.signal_type.lower())


def value_at(events: Iterable[Event], now: datetime, point: SignalPoint,
             apply_test_events: bool = False) -> float:
    """The point's value at ``now``: the active interval of the matching signal of the winning
    event (same ranking as the level: lowest non-zero priority, then most recent), else ``idle``."""
    best: Optional[tuple[Event, Interval]] = None
    for event in events:
        if not eligible(event, apply_test_events) or event.ended(now):
            continue
        for signal in event.signals:
            if not point.matches(signal.name, signal.type):
                continue
            interval = signal.interval_at(now)
            if interval is not None and (best is None or _rank(event) < _rank(best[0])):
                best = (event, interval)
            break
    return best[1].level if best is not None else point.idle


# ---------------------------------------------------------------------------------------------
# config.ini: [signal.NAME]

_KEYS = ("signal_name", "signal_type", "object_name", "instance", "units", "idle")


def _signal_name(text: str) -> str:
    """An OpenADR 2.0b signalName: one of the enumerated names or an ``x-`` extension."""
    from openleadr import enums

    name = text.strip()
    if name.upper() in (n.upper() for n in enums.SIGNAL_NAME.values) or re.match(r"^x-\S+$", name):
        return name.upper() if not name.startswith("x-") else name
    known = ", ".join(sorted({n.upper() for n in enums.SIGNAL_NAME.values}))
    raise ValueError(f"unknown signal name {name!r}; known: {known}, or x-NAME")


def _signal_type(text: str) -> str:
    from openleadr import enums

    kind = text.strip()
    for known in enums.SIGNAL_TYPE.values:
        if kind.lower() == known.lower():
            return known
    raise ValueError(f"unknown signal type {kind!r}; known: {', '.join(enums.SIGNAL_TYPE.values)}")


def _units(text: str) -> str:
    from bacpypes3.basetypes import EngineeringUnits

    try:
        return str(EngineeringUnits(text.strip()))
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"unknown BACnet engineering unit {text.strip()!r} (e.g. kilowatts, "
                         "percent, noUnits)") from None


def _float(text: str) -> float:
    import math

    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text.strip()!r} is not a finite number")
    return value


def _instance(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{text.strip()!r} is not an integer")
    value = int(text)
    if not 0 <= value <= MAX_INSTANCE:
        raise ValueError(f"{value} is out of range 0..{MAX_INSTANCE}")
    return value


_PARSERS: dict[str, Callable[[str], Any]] = {
    "signal_name": _signal_name, "signal_type": _signal_type, "object_name": str.strip,
    "instance": _instance, "units": _units, "idle": _float,
}


def parse_sections(parser: configparser.ConfigParser, name: str, problems: list[str],
                   level_signal: Optional[str], reserved: dict[int, str],
                   reserved_names: Iterable[str]) -> tuple[SignalPoint, ...]:
    """Every ``[signal.NAME]`` section, checked alone and against each other and the built-in
    points (``reserved``: analogValue instance -> object name; ``reserved_names``: every built-in
    object name). Problems are appended as ``config.ini: [section] key: what is wrong``."""
    points: list[SignalPoint] = []
    taken_names = {n: "a built-in point" for n in reserved_names}
    taken_instances = {i: f"built-in point {n!r}" for i, n in reserved.items()}
    seen_signals: dict[tuple[str, Optional[str]], str] = {}
    auto = FIRST_SIGNAL_INSTANCE
    level = (level_signal or SIMPLE).upper()
    for title in parser.sections():
        if not title.startswith("signal."):
            continue
        section = parser[title]
        point_name = title[len("signal."):]

        def problem(key: str, text: str, _title: str = title) -> None:
            problems.append(f"{name}: [{_title}]{' ' + key if key else ''}: {text}")

        before = len(problems)
        if not re.match(r"^[A-Za-z0-9_.-]+$", point_name):
            problem("", "the name after 'signal.' may use letters, digits, _ . and - only")
        for key in section:
            if key not in _KEYS:
                problem(key, "unknown key")
        values: dict[str, Any] = {}
        for key in _KEYS:
            raw = section.get(key, "").strip()
            if not raw:
                continue
            try:
                values[key] = _PARSERS[key](raw)
            except ValueError as exc:
                problem(key, str(exc))
        if "signal_name" not in values and not section.get("signal_name", "").strip():
            problem("signal_name", "required but missing (e.g. ELECTRICITY_PRICE)")
        if len(problems) > before:
            continue
        signal_name: str = values["signal_name"]
        key_signal = (signal_name.upper(), values.get("signal_type"))
        if signal_name.upper() == level:
            problem("signal_name", f"{signal_name} is already carried by the event level point "
                                   "([points] signal_name)")
        elif key_signal in seen_signals:
            problem("signal_name", f"the same signal is already exposed by [{seen_signals[key_signal]}]")
        object_name = values.get("object_name") or f"ADR-Signal-{point_name}"
        if object_name in taken_names:
            problem("object_name", f"{object_name!r} is already used by {taken_names[object_name]}")
        if "instance" in values:
            instance = values["instance"]
            if instance in taken_instances:
                problem("instance", f"analogValue {instance} is already used by {taken_instances[instance]}")
        else:
            while auto in taken_instances:
                auto += 1
            instance = auto
        if len(problems) > before:
            continue
        seen_signals[key_signal] = title
        taken_names[object_name] = f"[{title}]"
        taken_instances[instance] = f"[{title}]"
        points.append(SignalPoint(name=point_name, signal_name=signal_name, signal_type=values.get("signal_type"),
                                  object_name=object_name, instance=instance,
                                  units=values.get("units", "no-units"), idle=values.get("idle", 0.0)))
    return tuple(points)


def point_specs(points: Iterable[SignalPoint]) -> list[Any]:
    """The BACnet objects of the [signal.NAME] points (read-only analogValues with COV)."""
    from adrgw.bacnet.points import PointSpec

    return [PointSpec("analog", p.instance, p.object_name,
                      f"OpenADR {p.signal_name}{' (' + p.signal_type + ')' if p.signal_type else ''} signal of "
                      f"the active event interval; {p.idle:g} outside events", units=p.units)
            for p in points]

"""config.ini's ``[signal.NAME]`` sections: one signal of the VTN's events on its own read-only point.

Moved here from adrgw/core/signals.py (which keeps the point type and the pure value selection) so
the core reads no config file. The names a signal section uses are checked by the adapters that know
them, passed in as parsers: signal names and types by the OpenADR adapter, engineering units and the
built-in points by the BACnet adapter.
"""

from __future__ import annotations

import configparser
import math
import re
from typing import Any, Callable, Iterable, Mapping, Optional

from adrgw.core.schedule import SIMPLE
from adrgw.core.signals import FIRST_SIGNAL_INSTANCE, MAX_INSTANCE, SignalPoint

# ---------------------------------------------------------------------------------------------
# config.ini: [signal.NAME]

_KEYS = ("signal_name", "signal_type", "object_name", "instance", "units", "idle")


def _float(text: str) -> float:
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


# Syntax only; the adapters check the names they know (signal names and types: the OpenADR adapter;
# engineering units: the BACnet adapter) by passing their parsers to parse_sections.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "signal_name": str.strip, "signal_type": str.strip, "object_name": str.strip,
    "instance": _instance, "units": str.strip, "idle": _float,
}


def parse_sections(parser: configparser.ConfigParser, name: str, problems: list[str],
                   level_signal: Optional[str], reserved: dict[int, str],
                   reserved_names: Iterable[str],
                   parsers: Optional[Mapping[str, Callable[[str], Any]]] = None) -> tuple[SignalPoint, ...]:
    """Every ``[signal.NAME]`` section, checked alone and against each other and the built-in
    points (``reserved``: analogValue instance -> object name; ``reserved_names``: every built-in
    object name; ``parsers``: the adapters' parsers for keys they know, by key). Problems are
    appended as ``config.ini: [section] key: what is wrong``."""
    key_parsers = {**_PARSERS, **(parsers or {})}
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
                values[key] = key_parsers[key](raw)
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

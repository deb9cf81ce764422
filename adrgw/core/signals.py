"""Every event signal on its own point: ``[signal.NAME]`` settings and the pure value selection.

ADR-Event-Level carries one signal only (SIMPLE, or ``[points] signal_name``): a price of 0.31 or a
500 kW setpoint is not a level. Any other signal (ELECTRICITY_PRICE, LOAD_DISPATCH, LOAD_CONTROL,
BID_LOAD, ...) can be exposed as its own read-only analogValue through a ``[signal.NAME]`` section.
The value follows the same rules as the level (priority, randomization, test events, opt-out,
cancellation), computed from the stored events, so it survives a restart like the level does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional

from adrgw.core.schedule import Event, Interval, _rank, eligible

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

"""The simulated meter's clock-valued readings: each value names the second it was sampled, so a test
can tell from the VTN's side that every sample arrived exactly once, in order, and unaltered."""

from __future__ import annotations

from datetime import datetime


def clock_value(t: float) -> float:
    """The simulated meter's value at wall time t: distinct per second, exact in a 32-bit REAL."""
    return float(int(t) % 100000)


def assert_exactly_once_in_order_matching_meter(readings: list[tuple[datetime, float]]) -> None:
    stamps = [t for t, _ in readings]
    assert stamps == sorted(stamps), "not in order"
    assert len(set(stamps)) == len(stamps), f"duplicates: {sorted({t for t in stamps if stamps.count(t) > 1})}"
    for stamp, value in readings:
        assert value == clock_value(stamp.timestamp()), (stamp, value)

"""ADR-Gateway-Status: one BACnet state for "is this gateway doing its job", by a pure severity rule.

Why a separate point from ADR-VTN-Online and ADR-Meter-Value's fault flag: a BAS operator wants one
alarm-able value, and storage faults have no other point at all. When several conditions hold, the
most severe is shown. Severity, most severe first, and why:

1. ``storage-failing`` (state 4): nothing is persisted (an event received now, the queued telemetry and
   the registration are lost on a restart) and telemetry delivery is held back; no other point shows it.
2. ``vtn-unreachable`` (state 2): not registered, or the VTN has not answered for more than 3 poll
   periods: new or changed DR events cannot arrive (the stored schedule keeps running).
3. ``meter-failing`` (state 3): the meter did not answer 3 reads in a row: telemetry has gaps.
4. ``ok`` (state 1).

The state numbers are fixed (BACnet stateText order ``ok, vtn-unreachable, meter-failing,
storage-failing``); the severity order is separate from the numbering.
"""

from __future__ import annotations

from adrgw.core.health import METER_FAILING_READS

STATES = ("ok", "vtn-unreachable", "meter-failing", "storage-failing")
OK, VTN_UNREACHABLE, METER_FAILING, STORAGE_FAILING = 1, 2, 3, 4
# Most severe first.
SEVERITY = (STORAGE_FAILING, VTN_UNREACHABLE, METER_FAILING, OK)


def gateway_status(vtn_online: bool, meter_failures: int, storage_ok: bool) -> int:
    """The presentValue (1-based state number) of ADR-Gateway-Status for these facts."""
    holding = {OK}
    if not storage_ok:
        holding.add(STORAGE_FAILING)
    if not vtn_online:
        holding.add(VTN_UNREACHABLE)
    if meter_failures >= METER_FAILING_READS:
        holding.add(METER_FAILING)
    return next(state for state in SEVERITY if state in holding)


def state_name(state: int) -> str:
    return STATES[state - 1]

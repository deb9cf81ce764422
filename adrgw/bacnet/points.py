"""The gateway's BACnet objects: read-only (and COV-capable) values, and the one writable opt-out.

BAC0's factory objects accept writes from any client, even when created non-commandable (found in
testing against BAC0: a point the building must not change would be writable). These bacpypes3 subclasses refuse every network write with ``write-access-denied``,
except ``ADR-Opt-Out``'s presentValue, which accepts ``active``/``inactive`` only. All of them carry a
COV criteria class, so SubscribeCOV (confirmed and unconfirmed) works for every point.
Local code changes values by assigning attributes, which does not go through ``write_property``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Optional, Union

from bacpypes3.basetypes import BinaryPV, PropertyIdentifier
from bacpypes3.errors import ExecutionError
from bacpypes3.local.cov import COVIncrementCriteria, GenericCriteria
from bacpypes3.local.object import Object as _LocalObject
from bacpypes3.object import AnalogValueObject as _AnalogValueObject
from bacpypes3.object import BinaryValueObject as _BinaryValueObject
from bacpypes3.object import MultiStateValueObject as _MultiStateValueObject

from adrgw.core.ratelog import RateLimitedLog
from adrgw.core.gatewaystatus import STATES as GATEWAY_STATES
from adrgw.core.signals import SignalPoint

log = logging.getLogger("adrgw.points")

# Names fixed by the interface contract (ADR-Event-Level's name comes from [points] event_level).
METER_VALUE = "ADR-Meter-Value"
EVENT_STATUS = "ADR-Event-Status"
EVENT_ACTIVE = "ADR-Event-Active"
START_IN = "ADR-Event-Start-In"
REMAINING = "ADR-Event-Remaining"
OPT_OUT = "ADR-Opt-Out"
VTN_ONLINE = "ADR-VTN-Online"
# Points whose changes are logged at DEBUG, not INFO: the countdowns change every second during an
# event (a third of a demo's log), and the meter mirror changes with every sample, which the
# ``Adding <time>, <value> to report`` line already says. Every other point logs ``<name> -> <value>``
# at INFO.
DEBUG_LOGGED = frozenset({START_IN, REMAINING, METER_VALUE})


# A client's refused write is its problem: at most one INFO line a minute (issue 13).
_refusals = RateLimitedLog(log)
GATEWAY_STATUS = "ADR-Gateway-Status"
EVENT_STATUS_STATES = ("none", "far", "near", "active")


def _refuse(obj: Any, attr: Any) -> None:
    _refusals.info("refused-write", "refused a network write to %s %s", obj.objectName, _prop_name(attr))
    raise ExecutionError(errorClass="property", errorCode="writeAccessDenied")


def _prop_name(attr: Any) -> str:
    try:
        return str(PropertyIdentifier(attr))
    except (ValueError, TypeError):
        return str(attr)


class ReadOnlyAnalogValue(_LocalObject, _AnalogValueObject):  # type: ignore[misc]
    """Readable and subscribable, never writable from the network."""

    _cov_criteria = COVIncrementCriteria

    async def write_property(self, attr: Any, value: Any, index: Optional[int] = None,
                             priority: Optional[int] = None) -> None:
        _refuse(self, attr)


class ReadOnlyBinaryValue(_LocalObject, _BinaryValueObject):  # type: ignore[misc]
    _cov_criteria = GenericCriteria

    async def write_property(self, attr: Any, value: Any, index: Optional[int] = None,
                             priority: Optional[int] = None) -> None:
        _refuse(self, attr)


class ReadOnlyMultiStateValue(_LocalObject, _MultiStateValueObject):  # type: ignore[misc]
    # GenericCriteria: a multi-state value notifies on any presentValue/statusFlags change
    # (ASHRAE 135 13.1.2); bacpypes3's own local class uses the analog increment criteria.
    _cov_criteria = GenericCriteria

    async def write_property(self, attr: Any, value: Any, index: Optional[int] = None,
                             priority: Optional[int] = None) -> None:
        _refuse(self, attr)


WriteHandler = Callable[[bool, Any], Union[None, Awaitable[None]]]


class OptOutBinaryValue(_LocalObject, _BinaryValueObject):  # type: ignore[misc]
    """The one writable point: presentValue accepts active/inactive; everything else is refused.

    ``_on_write(active, source)`` is called after each accepted write (also when the value is
    unchanged, so an operator can re-send an opt-out). ``allow`` restricts who may write.
    """

    _cov_criteria = GenericCriteria
    _on_write: Optional[WriteHandler] = None  # bacpypes3 objects only take "_" attributes freely
    # What a network client may write (bacpypes3 attribute names): a value of the wrong datatype for
    # one of these is answered invalid-data-type, for any other property write-access-denied
    # (conformance.GatewayApplication._value_to_write).
    _network_writable = frozenset({"presentValue"})

    async def write_property(self, attr: Any, value: Any, index: Optional[int] = None,
                             priority: Optional[int] = None) -> None:
        if _prop_name(attr) != "present-value" or index is not None:
            _refuse(self, attr)
        try:
            state = int(value)
        except (TypeError, ValueError):
            raise ExecutionError(errorClass="property", errorCode="invalidDataType") from None
        if state not in (0, 1):
            raise ExecutionError(errorClass="property", errorCode="valueOutOfRange")
        self.presentValue = BinaryPV(state)
        handler = self._on_write
        if handler is not None:
            result = handler(state == 1, None)
            if asyncio.iscoroutine(result):
                await result


@dataclass(frozen=True)
class PointSpec:
    kind: str  # 'analog' | 'binary' | 'multistate' | 'optout'
    instance: int
    name: str
    description: str
    units: str = "noUnits"
    cov_increment: float = 0.0
    states: tuple[str, ...] = EVENT_STATUS_STATES  # stateText of a multistate point


def point_specs(event_level_name: str) -> list[PointSpec]:
    return [
        PointSpec("analog", 1, event_level_name,
                  "Signal level of the active OpenADR event interval; 0 outside events"),
        PointSpec("analog", 2, METER_VALUE,
                  "Last good meter reading; statusFlags fault while the meter does not answer"),
        PointSpec("analog", 3, START_IN, "Seconds until the next event starts; 0 while active or when none",
                  units="seconds", cov_increment=1.0),
        PointSpec("analog", 4, REMAINING, "Seconds left in the active event; 0 otherwise",
                  units="seconds", cov_increment=1.0),
        PointSpec("multistate", 1, EVENT_STATUS, "OpenADR event status: 1 none, 2 far, 3 near, 4 active"),
        PointSpec("binary", 1, EVENT_ACTIVE, "Active while an event interval is active"),
        PointSpec("optout", 2, OPT_OUT, "Write active to opt out of the active and all pending events"),
        PointSpec("binary", 3, VTN_ONLINE, "Registered with the VTN and its last poll answered in time"),
        PointSpec("multistate", 2, GATEWAY_STATUS, "Most severe gateway condition: 1 ok, 2 vtn-unreachable, "
                  "3 meter-failing, 4 storage-failing (severity: storage, vtn, meter)",
                  states=GATEWAY_STATES),
    ]


def make_point(spec: PointSpec, units: Optional[str] = None, on_write: Optional[WriteHandler] = None) -> Any:
    """The bacpypes3 object for ``spec``; ``on_write`` is the opt-out point's handler of accepted writes."""
    common = dict(objectName=spec.name, description=spec.description, statusFlags=[0, 0, 0, 0],
                  eventState="normal", outOfService=False)
    if spec.kind == "analog":
        return ReadOnlyAnalogValue(objectIdentifier=("analog-value", spec.instance), presentValue=0.0,
                                   units=units or spec.units, covIncrement=spec.cov_increment,
                                   reliability="noFaultDetected", **common)
    if spec.kind == "multistate":
        return ReadOnlyMultiStateValue(objectIdentifier=("multi-state-value", spec.instance), presentValue=1,
                                       numberOfStates=len(spec.states), stateText=list(spec.states), **common)
    if spec.kind == "optout":
        point = OptOutBinaryValue(objectIdentifier=("binary-value", spec.instance), presentValue="inactive",
                                  inactiveText="inactive", activeText="active", **common)
        point._on_write = on_write  # bacpypes3's constructor takes only its properties
        return point
    return ReadOnlyBinaryValue(objectIdentifier=("binary-value", spec.instance), presentValue="inactive",
                               inactiveText="inactive", activeText="active", **common)


def signal_point_specs(points: Iterable[SignalPoint]) -> list[PointSpec]:
    """The BACnet objects of the [signal.NAME] points (read-only analogValues with COV)."""
    return [PointSpec("analog", p.instance, p.object_name,
                      f"OpenADR {p.signal_name}{' (' + p.signal_type + ')' if p.signal_type else ''} signal of "
                      f"the active event interval; {p.idle:g} outside events", units=p.units)
            for p in points]

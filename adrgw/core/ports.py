"""The ports the core owns: small typing.Protocols that the adapters implement (or use).

The core (schedule, EventController, sampling) never imports an adapter: an adapter (the OpenADR
2.0b one in adrgw/openadr/, the BACnet one in adrgw/bacnet/, the state store in adrgw/persist/)
satisfies these Protocols structurally and is handed in through constructors by the composition
root (adrgw/app.py). Each docstring is the contract; a new protocol (OpenADR 3.1) plugs in by
implementing ``ProtocolAdapter`` and ``VtnLink`` and calling an ``EventSink``.

Data flows: VTN -> VtnLink -> Distribution -> EventSink (the EventController) -> PointSink (BACnet
points); the building's opt decisions -> OptPort -> VTN; meter -> Sampler -> SampleSink (the durable
queue) -> Readings -> the adapter's reports -> VTN.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Optional, Protocol, Sequence

from adrgw.core.clock import Clock
from adrgw.core.model import Distribution, EventOutcome, LinkState, OptChange, ResourceStatus
from adrgw.core.telemetry import SampleSink

# The names of the points the core keeps right (the BACnet adapter serves them under these names;
# adrgw/bacnet/points.py holds the same names for the BACnet objects).
EVENT_STATUS = "ADR-Event-Status"
EVENT_ACTIVE = "ADR-Event-Active"
START_IN = "ADR-Event-Start-In"
REMAINING = "ADR-Event-Remaining"
OPT_OUT = "ADR-Opt-Out"


class PointSink(Protocol):
    """Where the core writes what the building should see (the BACnet device).

    ``set_level``: the event level (ADR-Event-Level); ``set_value``: any other point by object name
    (the names above, and each ``[signal.NAME]`` point's object name). Both are synchronous, never
    block and never raise for a value the point cannot show: they return whether the value changed.
    """

    def set_value(self, name: str, value: Any) -> bool: ...

    def set_level(self, value: float) -> bool: ...


class EventSink(Protocol):
    """What a VTN link hands each distribution to (the EventController).

    ``apply`` takes every event the VTN currently lists (an event no longer listed is cancelled by
    implication; a malformed one keeps its last good version), decides targeting (the sink knows
    this VEN's identity), randomization and opt state, moves the points before it returns, persists
    in the background of the points, and returns one outcome per listed event that is not already
    over, for the adapter to map to its own answers. Never raises for anything in the distribution.
    """

    async def apply(self, distribution: Distribution) -> list[EventOutcome]: ...


class OptPort(Protocol):
    """Where the building's opt decisions go (ADR-Opt-Out written over BACnet), towards the VTN.

    ``answers_changed``: the answers already given for these events changed (2.0b re-sends
    oadrCreatedEvent); queue them, never block. ``opted_out``: the operator opted out of these events
    (2.0b: one oadrCreateOpt each, durable before it returns, delivered until the VTN answers).
    ``opted_in``: the operator ended the opt-out (2.0b: cancel every opt in force). Delivery is the
    adapter's job: none of these waits for the VTN.
    """

    def answers_changed(self, changes: Sequence[OptChange]) -> None: ...

    async def opted_out(self, changes: Sequence[OptChange]) -> None: ...

    async def opted_in(self) -> None: ...


class VtnLink(Protocol):
    """The link to one VTN, in one protocol.

    ``run``: register (retrying forever with capped backoff), keep the link alive, hand every
    distribution to the EventSink it was built with and answer the outcomes, deliver the opt changes
    and the reports; runs until cancelled, never ends on a VTN failure. ``state``: how the link is
    doing now (cheap, synchronous).
    """

    async def run(self) -> None: ...

    def state(self) -> LinkState: ...


class Reports(Protocol):
    """A protocol adapter's reports of the meter (2.0b: the report service).

    ``rearm``: the wall clock was stepped (clockwatch.py): re-plan what is due; ``report_period``:
    the longest a sample is meant to wait before it is sent (None: no report runs), for the health
    verdict; ``last_delivery``/``reports_sent``: for the page, /metrics and --status.
    """

    last_delivery: Optional[datetime]
    reports_sent: int

    def rearm(self) -> None: ...

    def report_period(self) -> Optional[timedelta]: ...


class ProtocolAdapter(Protocol):
    """One protocol's side of the gateway, built by adrgw/links.py from ``[ven] protocol``.

    ``opts`` exists before the core is built (the EventController sends the building's opt changes
    to it); ``reports`` delivers the samples (from the Readings it was built with); ``link(sink)`` then builds the VtnLink that feeds that EventSink. Two steps because the
    core and the link each need the other's port.
    """

    @property
    def opts(self) -> OptPort: ...

    @property
    def reports(self) -> Reports: ...

    def link(self, sink: EventSink) -> VtnLink: ...


class Readings(Protocol):
    """What a protocol adapter's reports read (the durable sample queue).

    ``window``: samples of ``streams`` ('' is [meter], NAME is [report.NAME]) on the ``granularity``
    grid in [lo, hi) epoch seconds, at most ``limit`` per stream; ``oldest``: the oldest kept instant
    of ``streams``; ``oldest_owed``: the oldest sample the VTN has not acknowledged; ``recount``: call
    after an acknowledgement was committed (the adapter's ledger moved) so ``len`` counts what is
    still owed. Samples are never deleted by reading them.
    """

    def __len__(self) -> int: ...

    async def window(self, streams: list[str], lo: float, hi: float, limit: int,
                     granularity: float) -> dict[str, dict[float, float]]: ...

    async def oldest(self, streams: list[str]) -> Optional[float]: ...

    async def oldest_owed(self) -> Optional[datetime]: ...

    async def recount(self) -> None: ...


class Timer(Protocol):
    """A scheduled call that can be cancelled (asyncio.TimerHandle)."""

    def cancel(self) -> None: ...


# Schedules ``callback`` after ``delay`` seconds (default: the running loop's call_later; tests pass
# a fake and call refresh() with a fake clock instead of sleeping).
Scheduler = Callable[[float, Callable[[], None]], Timer]
# The gateway's current state for the VTN (TELEMETRY_STATUS): cheap, synchronous.
StatusSource = Callable[[], ResourceStatus]

__all__ = ["Clock", "EventSink", "OptPort", "PointSink", "ProtocolAdapter", "Readings", "Reports", "SampleSink", "Scheduler",
           "StatusSource", "Timer", "VtnLink", "EVENT_STATUS", "EVENT_ACTIVE", "START_IN", "REMAINING", "OPT_OUT"]

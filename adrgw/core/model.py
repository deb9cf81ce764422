"""The gateway's own vocabulary, protocol-neutral: what a VTN link hands the core and gets back.

The schedule types (Event, Signal, Interval) are in schedule.py, the revision in revision.py; this
module holds what travels through the ports (ports.py) between the core
and a protocol adapter. An adapter (OpenADR 2.0b today, 3.1 next) parses its messages into these
types and maps the results back to its own codes; nothing here knows a wire format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping, Optional

from adrgw.core.revision import Revision
from adrgw.core.schedule import Event

@dataclass(frozen=True)
class Sample:
    """One reading of a meter or report point."""

    timestamp: datetime  # the cadence instant the sample belongs to (UTC), not the read's end
    value: float


# Target criteria of one event: kind -> values, as the adapter parsed them. The kinds the core can
# match (targeting.IDENTITY_KINDS): "ven_id", "resource_id", "group_id", "group_name", "party_id".
# Other kinds are ignored (they neither include nor exclude this VEN). Empty: meant for this VEN.
TargetCriteria = Mapping[str, frozenset[str]]


class Outcome(enum.Enum):
    """What the core did with one listed event; each adapter maps it to its own answer (2.0b: optIn
    200, optOut 200, optOut 462, optOut 400)."""

    ACCEPTED = "accepted"  # held, drives the points (opted in)
    OPTED_OUT = "opted out"  # held, but the building opted out (ADR-Opt-Out): moves nothing
    NOT_TARGETED = "not targeted"  # meant for other VENs: moves nothing, not held
    MALFORMED = "malformed"  # could not be understood: moves nothing (a held version is kept)


@dataclass(frozen=True)
class Malformed:
    """An event the VTN listed that the adapter could not parse.

    ``event_id`` None: not even its id could be read (it is logged, and gets no outcome)."""

    event_id: Optional[str]
    revision: Revision
    reason: str  # one log line: what is wrong


@dataclass(frozen=True)
class Distribution:
    """Every event a VTN currently lists for this VEN (an event it stops listing is cancelled).

    ``events``: the parsed ones (randomization not yet applied); ``malformed``: the ones the adapter
    could not parse; ``targets``: event id -> its target criteria (missing: no criteria)."""

    events: tuple[Event, ...] = ()
    malformed: tuple[Malformed, ...] = ()
    targets: Mapping[str, TargetCriteria] = field(default_factory=dict)


@dataclass(frozen=True)
class EventOutcome:
    """The core's answer for one listed event (events already over get none: nothing to opt into)."""

    event_id: str
    revision: Revision
    outcome: Outcome


@dataclass(frozen=True)
class OptChange:
    """The building opted out of (or back in to) one event (ADR-Opt-Out)."""

    event_id: str
    revision: Revision
    opted_out: bool


@dataclass(frozen=True)
class ResourceStatus:
    """The gateway's state as a VTN may ask for it (2.0b TELEMETRY_STATUS): online, manual override
    (ADR-Opt-Out active) and the level on ADR-Event-Level."""

    online: bool
    manual_override: bool
    level: Optional[float] = None


# How often a link asks its VTN before the VTN said (2.0b: until oadrRequestedPollFreq arrives).
DEFAULT_POLL_PERIOD = timedelta(seconds=10)


@dataclass(frozen=True)
class ProbeCheck:
    """One line of ``--probe``'s commissioning table (each adapter checks its own side)."""

    name: str
    ok: bool
    detail: str
    hint: str = ""  # what to do about a failure


@dataclass(frozen=True)
class LinkState:
    """How the link to the VTN is doing, for the points, the page, /metrics, --status and systemd's
    STATUS (the ops side reads the link only through this, whatever the protocol)."""

    registered: bool  # the VTN knows this VEN (2.0b: registered; 3.1: token and VEN object)
    online: bool  # registered and the VTN answered recently (ADR-VTN-Online)
    ven_id: Optional[str]  # this VEN's id at the VTN, once known
    last_contact: Optional[datetime]  # the last answer from the VTN (2.0b: the last poll answered)
    attempts: int = 0  # registration attempts so far (since start)
    # How often the link hears from the VTN when all is well (2.0b: the poll period the VTN asked
    # for): the VTN counts as silent after 3 of these without an answer (health.py, ADR-VTN-Online).
    poll_period: timedelta = DEFAULT_POLL_PERIOD


__all__ = ["DEFAULT_POLL_PERIOD", "Distribution", "EventOutcome", "LinkState", "Malformed", "OptChange", "Outcome", "ProbeCheck", "ResourceStatus",
           "Revision", "Sample", "TargetCriteria"]

"""One snapshot of the running gateway's facts, gathered once and handed to every reader.

Why: four readers show the gateway's state (the status page and /healthz, /metrics, the --status
snapshot, systemd's STATUS line). Each used to be handed the whole gateway and read its parts'
attributes (some of them 2.0b-specific) on its own, at its own moment. Now the composition root
(app.py) names the parts once in a ``FactSources``; ``gather`` (or ``collect``, which first asks
the store for the oldest queued sample) reads them all in one turn of the event loop into a plain,
frozen ``GatewayFacts``; each reader renders only that. So the readers agree with each other, know
nothing of the protocol (the link is read through the core's ``LinkState``), and nothing under
adrgw/ops imports the composition root.

Nothing here blocks: ``gather`` is synchronous and cheap (counters and the schedule evaluated at
``at``); the only I/O, one sqlite query in ``collect``, runs on the store's own thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Optional, Protocol

from adrgw.core.clock import utc_now
from adrgw.core.clockwatch import ClockWatch
from adrgw.core.events import EventController
from adrgw.core.gatewaystatus import STATES as GATEWAY_STATES
from adrgw.core.health import Health, HealthFacts, verdict
from adrgw.core.model import LinkState
from adrgw.core.ports import Reports, VtnLink
from adrgw.core.schedule import Event, State, evaluate
from adrgw.core.supervise import TaskHealth
from adrgw.core.telemetry import Sampler
from adrgw.persist.samples import SampleQueue
from adrgw.persist.store import Store


@dataclass(frozen=True)
class Labels:
    """What this gateway is, from its configuration: fixed for the life of the process."""

    device: str  # "NAME (device N)", the page's title
    ven_name: str
    vtn_url: str
    meter: str  # the point read: "address object instance property" (--status)
    meter_point: str  # "address object" as configured (the page)
    meter_interval: float  # seconds
    meter_unit: str


@dataclass(frozen=True)
class WriteFacts:
    """One write-through target (``[write.NAME]``) now."""

    name: str
    target: str  # "address object instance property @priority"
    priority: int
    holding: Optional[str]  # the value confirmed in our slot now; None: relinquished; "unknown"
    wanted: Optional[str]  # None: relinquish
    confirmed_at: Optional[datetime]
    failures: int  # in a row
    attempts: int  # writes sent (value or relinquish)
    confirmations: int  # writes confirmed by reading priorityArray back


@dataclass(frozen=True)
class SampleCounts:
    """The meter sampler's and the durable queue's counters since start."""

    taken: int  # meter reads that returned a value
    stored: int  # samples written to the durable queue (all streams)
    delivered: int  # samples the VTN acknowledged
    dropped: int  # undelivered samples dropped: the backlog was full
    unstored: int  # samples that could not be stored (storage fault)
    read_failures: int  # meter reads that failed
    missed: int  # cadence instants without a sample (stall, clock jump)
    late_discarded: int  # readings discarded because they finished too late


@dataclass(frozen=True)
class MeterFacts:
    failures: int  # consecutive failed reads
    last_value: Optional[float]
    last_read: Optional[datetime]  # the cadence instant of the last good sample
    last_error: Optional[str]


@dataclass(frozen=True)
class GatewayFacts:
    """Everything the page, /healthz, /metrics, --status and systemd's STATUS show, of one instant.

    ``oldest_queued`` is known only when the store was asked (``collect``); ``storage_ok`` is False
    during a storage fault episode and when that query failed."""

    at: datetime
    labels: Labels
    link: LinkState
    report_period: Optional[timedelta]  # the longest a sample is meant to wait (None: no report runs)
    last_delivery: Optional[datetime]  # the VTN's last acknowledged report
    reports_sent: int
    queue_depth: int  # samples the VTN has not acknowledged
    oldest_queued: Optional[datetime]
    samples: SampleCounts
    meter: MeterFacts
    schedule: State  # the points' state at ``at`` (schedule.evaluate: the rule that sets them)
    events: tuple[Event, ...]  # every event held
    opt_out: bool
    storage_ok: bool
    storage_fault: Optional[str]  # the cause while a storage fault episode lasts
    storage_episodes: int
    gateway_status: Optional[int]  # ADR-Gateway-Status's present value (None: not readable)
    writes: tuple[WriteFacts, ...]
    dead_tasks: tuple[str, ...]  # supervised tasks dead and waiting to restart
    task_restarts: int
    clock_steps: int

    def health_facts(self) -> HealthFacts:
        return HealthFacts(registered=self.link.registered, last_contact=self.link.last_contact,
                           poll_period=self.link.poll_period, meter_failures=self.meter.failures,
                           oldest_queued=self.oldest_queued, report_period=self.report_period,
                           storage_ok=self.storage_ok)

    def health(self) -> Health:
        """The one verdict (health.py), judged at ``at``."""
        return verdict(self.health_facts(), self.at)

    @property
    def gateway_status_text(self) -> Optional[str]:
        """ADR-Gateway-Status's state text (its BACnet stateText)."""
        number = self.gateway_status
        if number is None:
            return None
        return GATEWAY_STATES[number - 1] if 0 < number <= len(GATEWAY_STATES) else str(number)


class WriteTarget(Protocol):
    """What the facts read of one write-through target (bacnet/writer.py's TargetWriter): named here
    so that ops does not import the BACnet adapter."""

    @property
    def target(self) -> Any: ...  # .name, .priority, str(): the configured target

    @property
    def desired(self) -> Optional[object]: ...

    @property
    def applied(self) -> Optional[tuple[Optional[object]]]: ...

    @property
    def confirmed_at(self) -> Optional[datetime]: ...

    @property
    def failures(self) -> int: ...

    @property
    def attempts(self) -> int: ...

    @property
    def writes(self) -> int: ...


@dataclass(frozen=True)
class FactSources:
    """The parts the facts are read from, named once by the composition root (app.py)."""

    labels: Labels
    link: VtnLink
    reports: Reports
    samples: SampleQueue
    sampler: Sampler
    controller: EventController
    store: Store
    tasks: TaskHealth
    clock_watch: ClockWatch
    writers: Callable[[], Iterable[WriteTarget]]
    gateway_status: Callable[[], Optional[int]]  # ADR-Gateway-Status's present value, as the point shows it


def _text(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _write(w: WriteTarget) -> WriteFacts:
    applied = w.applied
    return WriteFacts(name=w.target.name, target=str(w.target), priority=int(w.target.priority),
                      holding=_text(applied[0]) if applied is not None else "unknown", wanted=_text(w.desired),
                      confirmed_at=w.confirmed_at, failures=w.failures, attempts=w.attempts,
                      confirmations=w.writes)


def _gateway_status(read: Callable[[], Optional[int]]) -> Optional[int]:
    try:
        value = read()
        return None if value is None else int(value)
    except (TypeError, ValueError, AttributeError):
        return None


def gather(sources: FactSources, at: datetime, oldest_queued: Optional[datetime] = None,
           store_readable: bool = True) -> GatewayFacts:
    """The facts at ``at``, read in one go (nothing awaits). ``oldest_queued``: the queue's oldest
    sample if the caller asked the store; ``store_readable`` False: that query failed."""
    s = sources
    c = s.controller
    events = tuple(c.events.values())
    sampler = s.sampler
    last = sampler.last_sample
    return GatewayFacts(
        at=at, labels=s.labels, link=s.link.state(), report_period=s.reports.report_period(),
        last_delivery=s.reports.last_delivery, reports_sent=s.reports.reports_sent,
        queue_depth=len(s.samples), oldest_queued=oldest_queued if len(s.samples) else None,
        samples=SampleCounts(taken=sampler.reads_ok, stored=s.samples.stored, delivered=s.samples.delivered,
                             dropped=s.samples.dropped, unstored=s.samples.unstored,
                             read_failures=sampler.read_errors, missed=sampler.missed,
                             late_discarded=sampler.late_reads),
        meter=MeterFacts(failures=sampler.failures, last_value=last.value if last else None,
                         last_read=last.timestamp if last else None, last_error=sampler.last_error),
        schedule=evaluate(events, at, c.apply_test_events), events=events, opt_out=c.opt_out,
        storage_ok=store_readable and s.store.healthy, storage_fault=s.store.failing,
        storage_episodes=s.store.episodes, gateway_status=_gateway_status(s.gateway_status),
        writes=tuple(_write(w) for w in s.writers()), dead_tasks=tuple(sorted(s.tasks.dead)),
        task_restarts=s.tasks.crashes, clock_steps=s.clock_watch.steps)


async def collect(sources: FactSources, clock: Callable[[], datetime] = utc_now) -> GatewayFacts:
    """The facts with the queue's oldest sample: the store is asked first (on its thread), then
    every other figure is read at ``clock()`` in the same turn of the loop, so all are of one
    instant. A store that cannot be queried is a fact (storage failing), never an exception."""
    oldest: Optional[datetime] = None
    readable = True
    try:
        oldest = await sources.samples.oldest_owed()
    except Exception:  # noqa: BLE001 - sqlite, a closed store, a full disk: all mean "storage failing"
        readable = False
    return gather(sources, clock(), oldest, readable)


__all__ = ["FactSources", "GatewayFacts", "Labels", "MeterFacts", "SampleCounts", "WriteFacts", "WriteTarget",
           "collect", "gather"]

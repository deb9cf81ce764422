"""The gateway's health verdict: one pure rule shared by ``--status``, ``/healthz`` and systemd's STATUS.

Why one place: an operator who sees "degraded" on the status page must get the same answer from
``bacnet_server_ven.py --status`` and from a fleet's health probe. The facts are gathered elsewhere
(in-process from the running gateway, or from the snapshot it writes into the state directory);
this module only decides, with the time passed in, so it is tested exhaustively without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

# The VTN counts as silent after this many poll periods without an answer (the same rule as
# ADR-VTN-Online).
SILENT_POLL_PERIODS = 3
# The queue counts as growing when its oldest sample is older than this many report periods
# (a report period is the longest interval the VTN lets samples wait: reportBackDuration, or the
# poll period when reports go out with each sample), and never less than MIN_QUEUE_AGE.
GROWING_REPORT_PERIODS = 3
MIN_QUEUE_AGE = timedelta(minutes=5)
# Consecutive failed meter reads before the meter counts as failing (one lost read is not an outage).
METER_FAILING_READS = 3


@dataclass(frozen=True)
class HealthFacts:
    """What the verdict is made from. Times are aware UTC datetimes; None means "never"."""

    registered: bool
    last_contact: Optional[datetime]  # last successful exchange with the VTN (poll answered)
    poll_period: timedelta
    meter_failures: int  # consecutive failed meter reads
    oldest_queued: Optional[datetime]  # cadence instant of the oldest sample not yet delivered
    report_period: Optional[timedelta] = None  # longest time a sample is meant to wait before sending
    storage_ok: bool = True
    running: bool = True  # False when --status finds no live gateway (stopped, or its snapshot is stale)


@dataclass(frozen=True)
class Health:
    healthy: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def word(self) -> str:
        return "healthy" if self.healthy else "degraded"


def queue_limit(facts: HealthFacts) -> timedelta:
    """How old the oldest queued sample may be before the queue counts as growing."""
    period = max(facts.report_period or facts.poll_period, facts.poll_period)
    return max(GROWING_REPORT_PERIODS * period, MIN_QUEUE_AGE)


def verdict(facts: HealthFacts, now: datetime) -> Health:
    """Healthy unless: not registered or the VTN silent for more than 3 poll periods; the meter
    failing; the report queue growing (its oldest sample older than it should ever wait); storage
    failing. Each reason is one short phrase an operator can act on."""
    reasons: list[str] = []
    if not facts.running:
        reasons.append("gateway not running")
    silent_after = SILENT_POLL_PERIODS * facts.poll_period
    if not facts.registered:
        reasons.append("not registered with the VTN")
    elif facts.last_contact is None or now - facts.last_contact > silent_after:
        since = "never answered" if facts.last_contact is None else \
            f"silent for {int((now - facts.last_contact).total_seconds())} s"
        reasons.append(f"VTN {since} (more than {SILENT_POLL_PERIODS} poll periods)")
    if facts.meter_failures >= METER_FAILING_READS:
        reasons.append(f"meter failing ({facts.meter_failures} reads in a row)")
    if facts.oldest_queued is not None:
        limit = queue_limit(facts)
        age = now - facts.oldest_queued
        if age > limit:
            reasons.append(f"report queue growing (oldest sample {int(age.total_seconds())} s old)")
    if not facts.storage_ok:
        reasons.append("state storage failing")
    return Health(not reasons, tuple(reasons))


def next_change(facts: HealthFacts, now: datetime) -> Optional[datetime]:
    """The instant from which time passing alone (no fact changing) adds a reason to the verdict:
    the verdict is the same at every instant of [now, result] and has one more reason just after it.
    None when no such instant comes (nothing depends on time, or it already did).

    Why: two reasons begin without anything happening (the VTN stays silent, a queued sample grows
    old). The running gateway rewrites its status snapshot at this instant, so a snapshot judged at
    its own time (``--status``) stays right until the next one, between the writes made on changes.
    """
    candidates: list[datetime] = []
    if facts.registered and facts.last_contact is not None:
        candidates.append(facts.last_contact + SILENT_POLL_PERIODS * facts.poll_period)
    if facts.oldest_queued is not None:
        candidates.append(facts.oldest_queued + queue_limit(facts))
    return min((t for t in candidates if t >= now), default=None)

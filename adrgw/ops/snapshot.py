"""The running gateway's status snapshot, written into the state store for ``--status``.

``--status`` runs as a separate process and must not talk to the gateway (no socket to secure, safe
beside it): it reads the state directory. What only the running process knows (registration, last
contact with the VTN, last delivery, the meter's last read, the level and each event's status) is
written here as one JSON value under the store key ``status_snapshot``:

* on every change of something it shows: the parts call ``SnapshotWriter.changed()`` when they
  register or lose the registration, get the VTN back, receive, start or end an event, read (or fail
  to read) the meter, deliver a report, see the queue move, or start or end a storage fault. Writes are
  at most one per MIN_SPACING: a burst of changes in that second is one write, so a change is in the
  state file within about a second. (Issue 18: with a write every 10 s only, ``--status`` still said
  "degraded" 4 s after the log said "registered".)
* at the instant time alone changes the verdict (``health.next_change``: the VTN falls silent, a
  queued sample grows too old), so a snapshot judged at its own time stays right until the next one;
* every SNAPSHOT_SECONDS otherwise: the heartbeat by which ``--status`` knows the gateway is alive;
* once more at a clean stop with ``running: false``.

Every figure of one snapshot is taken in one turn of the event loop, at ``written_at``: the level,
the event status and each stored event's status are evaluated from the same events at that instant,
so an answer built from a snapshot is one moment (never the level of one moment beside an event
status of another). The store writes on its own thread; nothing here blocks the loop.

The same task logs the backlog line while the VTN is unreachable (ratelog.BacklogNotice): both are
"look at the gateway's state when it changes, or every few seconds".
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Optional

from adrgw import __version__
from adrgw.core.health import next_change, verdict
from adrgw.core.ratelog import BacklogNotice
from adrgw.core.schedule import Event, evaluate

if TYPE_CHECKING:
    from adrgw.app import Gateway

log = logging.getLogger("adrgw")

KEY = "status_snapshot"
# The heartbeat: the snapshot is rewritten at least this often; --status calls a snapshot older than
# 3 of these "not running".
SNAPSHOT_SECONDS = 10.0
# At most one write per this many seconds: changes in a burst (a registration followed by the event
# list, a delivery and its queue update) are one write; a change waits at most this long.
MIN_SPACING = 1.0
# Wake this long after the instant time alone changes the verdict (health.next_change is the last
# instant of the old verdict).
VERDICT_MARGIN = 0.01


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def event_row(event: Event, at: datetime) -> dict[str, Any]:
    """One stored event as --status shows it, its status evaluated at ``at`` (JSON-ready)."""
    return {
        "event_id": event.event_id,
        "modification_number": int(event.revision.key[0]) if event.revision.key else 0,
        "revision": event.revision.label,
        "status": event.status(at),
        "start": event.start.isoformat() if event.start else None,
        "end": event.end.isoformat() if event.end else None,
        "levels": [i.level for i in event.intervals],
        "opt": "optOut" if event.opted_out else "optIn",
        "signal": event.signal_name,
        "priority": event.priority,
        "test_event": event.test_event,
    }


def event_rows(events: list[Event], at: datetime) -> list[dict[str, Any]]:
    return sorted((event_row(e, at) for e in events), key=lambda r: r.get("start") or "")


async def collect(gateway: "Gateway", running: bool = True) -> dict[str, Any]:
    """The facts only the running process knows, as JSON-ready values (times: ISO 8601 UTC), all of
    one instant (``written_at``)."""
    link, sampler, samples, controller = gateway.link, gateway.sampler, gateway.samples, gateway.controller
    oldest: Optional[datetime] = None
    storage_ok = bool(gateway.store.healthy)
    try:
        oldest = await samples.oldest_owed()
    except Exception:  # noqa: BLE001 - a failing disk is itself a fact to report
        storage_ok = False
    # From here on nothing awaits: every figure below is of the same instant.
    at = utc_now()
    if not len(samples):
        oldest = None  # delivered while the query ran
    storage_ok = storage_ok and bool(gateway.store.healthy)
    last = sampler.last_sample
    period = gateway.reports.report_period()
    state = evaluate(controller.events.values(), at, controller.apply_test_events)
    return {
        "written_at": at.isoformat(),
        "running": running,
        "pid": os.getpid(),
        "version": __version__,
        "snapshot_seconds": SNAPSHOT_SECONDS,
        "min_spacing_s": MIN_SPACING,
        "ven_name": gateway.settings.ven.ven_name,
        "vtn_url": gateway.settings.ven.vtn_url,
        "ven_id": link.ven_id,
        "registered": link.registered.is_set(),
        "registration_attempts": link.registration_attempts,
        "last_contact": _iso(link.last_poll_ok),
        "poll_period_s": link.poll_period.total_seconds(),
        "report_requested": period is not None,
        "report_period_s": period.total_seconds() if period is not None else None,
        "queue_depth": len(samples),
        "oldest_queued": _iso(oldest),
        "last_delivery": _iso(link.last_delivery),
        "reports_sent": link.reports_sent,
        "meter": str(gateway.meter_ref),
        "meter_interval_s": gateway.settings.meter.interval,
        "meter_unit": gateway.settings.meter.unit,
        "meter_last_value": last.value if last else None,
        "meter_last_read": _iso(last.timestamp) if last else None,
        "meter_failures": sampler.failures,
        "meter_last_error": sampler.last_error,
        # The schedule evaluated at ``at`` by the rule that sets the points (schedule.evaluate):
        # the level, the status and each event's row agree with each other by construction.
        "level": state.level,
        "event_status": state.status,
        "active_event": state.event_id,
        "events": event_rows(list(controller.events.values()), at),
        "opt_out": controller.opt_out,
        "storage_ok": storage_ok,
    }


async def write(gateway: "Gateway", running: bool = True,
                collected: Optional[Callable[[dict[str, Any]], None]] = None) -> Optional[dict[str, Any]]:
    """Write one snapshot and return its facts (None if they could not be gathered). ``collected``
    is called with them before the disk write (systemd's STATUS must not wait for the disk). A
    failure is logged at DEBUG: the store's own errors are logged elsewhere."""
    try:
        facts = await collect(gateway, running)
    except Exception as exc:  # noqa: BLE001 - the gateway must keep running without its snapshot
        log.debug("status snapshot not gathered: %s", exc)
        return None
    if collected is not None:
        try:
            collected(facts)
        except Exception as exc:  # noqa: BLE001 - a listener's bug must not stop the snapshots
            log.debug("status snapshot listener failed: %s", exc)
    try:
        await gateway.store.set(KEY, json.dumps(facts))
    except Exception as exc:  # noqa: BLE001
        log.debug("status snapshot not written: %s", exc)
    return facts


class SnapshotWriter:
    """Rewrites the snapshot on change (at most once per MIN_SPACING), when time alone changes the
    verdict, and every SNAPSHOT_SECONDS; logs the backlog line during a VTN outage.

    ``changed()`` is what the parts call: cheap, synchronous, safe to call from any callback on the
    loop and as often as they like (it only sets an asyncio.Event)."""

    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway
        self._changed = asyncio.Event()
        self._last = -float("inf")  # loop time of the last write
        self._health: Optional[int] = None  # reasons in the verdict of the last snapshot
        self._oldest: Optional[datetime] = None  # oldest queued sample in the last snapshot
        self.writes = 0
        # Called with the facts of each snapshot, at their instant (app.py: systemd's STATUS line).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def changed(self) -> None:
        """Something --status shows has changed: write a snapshot within MIN_SPACING."""
        self._changed.set()

    def _collected(self, facts: dict[str, Any]) -> None:
        self._oldest = datetime.fromisoformat(facts["oldest_queued"]) if facts.get("oldest_queued") else None
        self._health = self._reasons()
        for listener in list(self.listeners):
            listener(facts)

    def _reasons(self) -> Optional[int]:
        """How many reasons the verdict has now, from the live facts (the queue's oldest sample as of
        the last snapshot: a change of the queue pokes a new one)."""
        from .statusview import health_facts

        try:
            return len(verdict(health_facts(self.gateway, self._oldest), utc_now()).reasons)
        except Exception:  # noqa: BLE001 - only a hint for when to write; the heartbeat remains
            return None

    def _verdict_due(self) -> Optional[float]:
        """Seconds until time alone changes the verdict (None: it will not)."""
        from .statusview import health_facts

        now = utc_now()
        try:
            at = next_change(health_facts(self.gateway, self._oldest), now)
        except Exception:  # noqa: BLE001
            return None
        return None if at is None else (at - now).total_seconds() + VERDICT_MARGIN

    async def write_now(self) -> Optional[dict[str, Any]]:
        self._changed.clear()  # a change from now on asks for the next write
        self._last = asyncio.get_running_loop().time()
        facts = await write(self.gateway, collected=self._collected)
        self.writes += 1
        return facts

    async def _wait(self) -> None:
        """Until a part reports a change, the heartbeat is due, or time alone changed the verdict."""
        loop = asyncio.get_running_loop()
        while not self._changed.is_set():
            heartbeat = self._last + SNAPSHOT_SECONDS - loop.time()
            if heartbeat <= 0:
                return
            due = self._verdict_due()
            timeout = heartbeat if due is None else min(heartbeat, due)
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, timeout))
            except asyncio.TimeoutError:
                if due is not None and due <= heartbeat and self._reasons() != self._health:
                    return
                # Else the instant moved (the VTN answered a poll meanwhile): look again.

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        notice = BacklogNotice()
        while True:
            rest = self._last + MIN_SPACING - loop.time()
            if rest > 0:
                await asyncio.sleep(rest)  # changes during this wait are part of the next write
            facts = await self.write_now()
            gw = self.gateway
            line = notice.check(time.monotonic(), gw.link.online(), len(gw.samples),
                                self._oldest if facts is not None else None)
            if line:
                log.info("%s", line)
            await self._wait()


async def run(gateway: "Gateway") -> None:
    """The gateway's snapshot task (``gateway.snapshots`` when it has one)."""
    writer = getattr(gateway, "snapshots", None) or SnapshotWriter(gateway)
    await writer.run()

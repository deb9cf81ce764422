"""The running gateway's status snapshot, written into the state store for ``--status``.

``--status`` runs as a separate process and must not talk to the gateway (no socket to secure, safe
beside it): it reads the state directory. What only the running process knows (registration, last
contact with the VTN, last delivery, the meter's last read, the level and each event's status) is
written here as one JSON value under the store key ``status_snapshot``:

* on every change of something it shows: the parts call the ``changed`` callback they were built
  with (it sets the ``changes`` event this writer waits on; app.py builds it first) when they
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

The facts are gathered once per write (facts.py: ``collect``) and handed, before the disk write,
to the listeners the writer was built with (app.py: systemd's STATUS line follows the snapshots).

The same task logs the backlog line while the VTN is unreachable (ratelog.BacklogNotice): both are
"look at the gateway's state when it changes, or every few seconds".
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import datetime
from typing import Any, Callable, Optional, Sequence

from adrgw import __version__
from adrgw.core.clock import utc_now
from adrgw.core.health import next_change
from adrgw.core.ratelog import BacklogNotice
from adrgw.core.schedule import Event
from adrgw.ops.facts import FactSources, GatewayFacts, collect, gather

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

Listener = Callable[[GatewayFacts], None]


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


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


def event_rows(events: Sequence[Event], at: datetime) -> list[dict[str, Any]]:
    return sorted((event_row(e, at) for e in events), key=lambda r: r.get("start") or "")


def snapshot_json(facts: GatewayFacts, running: bool = True) -> dict[str, Any]:
    """The facts only the running process knows, as JSON-ready values (times: ISO 8601 UTC), all of
    one instant (``written_at``)."""
    at, link, labels, state = facts.at, facts.link, facts.labels, facts.schedule
    period = facts.report_period
    return {
        "written_at": at.isoformat(),
        "running": running,
        "pid": os.getpid(),
        "version": __version__,
        "snapshot_seconds": SNAPSHOT_SECONDS,
        "min_spacing_s": MIN_SPACING,
        "ven_name": labels.ven_name,
        "vtn_url": labels.vtn_url,
        "ven_id": link.ven_id,
        "registered": link.registered,
        "registration_attempts": link.attempts,
        "last_contact": _iso(link.last_contact),
        "poll_period_s": link.poll_period.total_seconds(),
        "report_requested": period is not None,
        "report_period_s": period.total_seconds() if period is not None else None,
        "queue_depth": facts.queue_depth,
        "oldest_queued": _iso(facts.oldest_queued),
        "last_delivery": _iso(facts.last_delivery),
        "reports_sent": facts.reports_sent,
        "meter": labels.meter,
        "meter_interval_s": labels.meter_interval,
        "meter_unit": labels.meter_unit,
        "meter_last_value": facts.meter.last_value,
        "meter_last_read": _iso(facts.meter.last_read),
        "meter_failures": facts.meter.failures,
        "meter_last_error": facts.meter.last_error,
        # The schedule evaluated at ``at`` by the rule that sets the points (schedule.evaluate):
        # the level, the status and each event's row agree with each other by construction.
        "level": state.level,
        "event_status": state.status,
        "active_event": state.event_id,
        "events": event_rows(facts.events, at),
        "opt_out": facts.opt_out,
        "storage_ok": facts.storage_ok,
    }


async def write(sources: FactSources, running: bool = True,
                collected: Optional[Listener] = None) -> Optional[GatewayFacts]:
    """Write one snapshot and return its facts (None if they could not be gathered). ``collected``
    is called with them before the disk write (systemd's STATUS must not wait for the disk). A
    failure is logged at DEBUG: the store's own errors are logged elsewhere."""
    try:
        facts = await collect(sources)
    except Exception as exc:  # noqa: BLE001 - the gateway must keep running without its snapshot
        log.debug("status snapshot not gathered: %s", exc)
        return None
    if collected is not None:
        try:
            collected(facts)
        except Exception as exc:  # noqa: BLE001 - a listener's bug must not stop the snapshots
            log.debug("status snapshot listener failed: %s", exc)
    try:
        await sources.store.set(KEY, json.dumps(snapshot_json(facts, running)))
    except Exception as exc:  # noqa: BLE001
        log.debug("status snapshot not written: %s", exc)
    return facts


class SnapshotWriter:
    """Rewrites the snapshot on change (at most once per MIN_SPACING), when time alone changes the
    verdict, and every SNAPSHOT_SECONDS; logs the backlog line during a VTN outage.

    ``changes``: the event the parts' ``changed`` callback sets (app.py builds it before the parts;
    setting it is cheap, synchronous and safe from any callback on the loop, as often as they like);
    ``listeners``: called with the facts of each snapshot, at their instant (app.py: systemd's
    STATUS line)."""

    def __init__(self, sources: FactSources, changes: Optional[asyncio.Event] = None,
                 listeners: Sequence[Listener] = ()) -> None:
        self.sources = sources
        self._changed = changes if changes is not None else asyncio.Event()
        self.listeners = tuple(listeners)
        self._last = -float("inf")  # loop time of the last write
        self._health: Optional[int] = None  # reasons in the verdict of the last snapshot
        self._oldest: Optional[datetime] = None  # oldest queued sample in the last snapshot
        self.writes = 0

    def changed(self) -> None:
        """Something --status shows has changed: write a snapshot within MIN_SPACING."""
        self._changed.set()

    def _collected(self, facts: GatewayFacts) -> None:
        self._oldest = facts.oldest_queued
        self._health = self._reasons()
        for listener in self.listeners:
            listener(facts)

    def _reasons(self) -> Optional[int]:
        """How many reasons the verdict has now, from the live facts (the queue's oldest sample as of
        the last snapshot: a change of the queue pokes a new one)."""
        try:
            return len(gather(self.sources, utc_now(), self._oldest).health().reasons)
        except Exception:  # noqa: BLE001 - only a hint for when to write; the heartbeat remains
            return None

    def _verdict_due(self) -> Optional[float]:
        """Seconds until time alone changes the verdict (None: it will not)."""
        now = utc_now()
        try:
            at = next_change(gather(self.sources, now, self._oldest).health_facts(), now)
        except Exception:  # noqa: BLE001
            return None
        return None if at is None else (at - now).total_seconds() + VERDICT_MARGIN

    async def write_now(self) -> Optional[GatewayFacts]:
        self._changed.clear()  # a change from now on asks for the next write
        self._last = asyncio.get_running_loop().time()
        facts = await write(self.sources, collected=self._collected)
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

    def _backlog_line(self, notice: BacklogNotice, facts: Optional[GatewayFacts]) -> Optional[str]:
        try:
            now = facts if facts is not None else gather(self.sources, utc_now())
        except Exception:  # noqa: BLE001 - the line waits for the next snapshot
            return None
        return notice.check(time.monotonic(), now.link.online, now.queue_depth,
                            self._oldest if facts is not None else None)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        notice = BacklogNotice()
        while True:
            rest = self._last + MIN_SPACING - loop.time()
            if rest > 0:
                await asyncio.sleep(rest)  # changes during this wait are part of the next write
            facts = await self.write_now()
            line = self._backlog_line(notice, facts)
            if line:
                log.info("%s", line)
            await self._wait()

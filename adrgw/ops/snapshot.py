"""The running gateway's status snapshot, written into the state store for ``--status``.

``--status`` runs as a separate process and must not talk to the gateway (no socket to secure, safe
beside it): it reads the state directory. Events, the opt-out state and the queued samples are
there already; what only the running process knows (registration, last contact with the VTN, last
delivery, the meter's last read) is written here every SNAPSHOT_SECONDS as one JSON value under the
store key ``status_snapshot``, and once more at a clean stop with ``running: false``.

The same loop logs the backlog line while the VTN is unreachable (ratelog.BacklogNotice): both are
"every few seconds, look at the gateway's state".
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from adrgw import __version__
from adrgw.core.ratelog import BacklogNotice

if TYPE_CHECKING:
    from adrgw.app import Gateway

log = logging.getLogger("adrgw")

KEY = "status_snapshot"
# How often the snapshot is rewritten; --status calls a snapshot older than 3 of these "not running".
SNAPSHOT_SECONDS = 10.0


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


async def collect(gateway: "Gateway", running: bool = True) -> dict[str, Any]:
    """The facts only the running process knows, as JSON-ready values (times: ISO 8601 UTC)."""
    link, sampler, samples = gateway.link, gateway.sampler, gateway.samples
    oldest: Optional[datetime] = None
    storage_ok = bool(gateway.store.healthy)
    try:
        oldest = await samples.oldest_owed()
    except Exception:  # noqa: BLE001 - a failing disk is itself a fact to report
        storage_ok = False
    last = sampler.last_sample
    period = gateway.reports.report_period()
    return {
        "written_at": datetime.now(timezone.utc).isoformat(),
        "running": running,
        "pid": os.getpid(),
        "version": __version__,
        "snapshot_seconds": SNAPSHOT_SECONDS,
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
        "level": gateway.device.level if gateway.device.objects else None,
        "active_event": gateway.controller.active_event,
        "opt_out": gateway.controller.opt_out,
        "storage_ok": storage_ok,
    }


async def write(gateway: "Gateway", running: bool = True) -> None:
    """Write one snapshot; a failure is logged at DEBUG (the store's own errors are logged elsewhere)."""
    try:
        facts = await collect(gateway, running)
        await gateway.store.set(KEY, json.dumps(facts))
    except Exception as exc:  # noqa: BLE001 - the gateway must keep running without its snapshot
        log.debug("status snapshot not written: %s", exc)


async def run(gateway: "Gateway") -> None:
    """Rewrite the snapshot every SNAPSHOT_SECONDS and log the backlog line during a VTN outage."""
    notice = BacklogNotice()
    while True:
        await write(gateway)
        try:
            oldest = await gateway.samples.oldest_owed() if len(gateway.samples) else None
        except Exception:  # noqa: BLE001
            oldest = None
        line = notice.check(time.monotonic(), gateway.link.online(), len(gateway.samples), oldest)
        if line:
            log.info("%s", line)
        await asyncio.sleep(SNAPSHOT_SECONDS)

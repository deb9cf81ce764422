"""OpenADR 3.1 USAGE reports at run time: plans from the events, delivery, and the durable ledger.

The schedule and bodies are pure (reports.py); the samples come from the core's Readings port (the
durable sample queue); what the VTN accepted is committed to the ledger (ledger.py) before anything
newer is sent, so nothing is lost across a VTN outage or a kill -9: a report refused or unanswered
is sent again (capped backoff up to ``[ven] retry_max``), and since each report carries every sample
from its plan's start, one PUT after an outage catches up. Implements the core's Reports port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Optional, Sequence

from adrgw.config.settings import MeterSettings, ReportPoint
from adrgw.core.backoff import Backoff
from adrgw.core.ports import Readings
from adrgw.core.ratelog import Summary
from adrgw.openadr3 import ledger as L
from adrgw.openadr3 import reports as R
from adrgw.openadr3 import wire
from adrgw.openadr3.client import Client, VtnError
from adrgw.persist.store import Store, StoreFault

log = logging.getLogger("adrgw.openadr3.reports")

SETTLE_MARGIN = 0.3  # s after a report's end before it is sent: the last sample is stored by then
RETRY_INITIAL = 1.0
PRUNE_EVERY = 600.0
MAX_SAMPLES = 200000  # per stream and report: a week of 3 s samples


class PlanState:
    def __init__(self, plan: R.Plan, report_id: Optional[str] = None, accepted: int = 0,
                 attempted: bool = False) -> None:
        self.plan = plan
        self.report_id = report_id
        self.accepted = accepted
        self.attempted = attempted


class ReportService:
    """The 3.1 adapter's Reports (core.ports.Reports): plans, delivery loop, ledger."""

    def __init__(self, ven_name: str, meter: MeterSettings, points: Sequence[ReportPoint], samples: Readings,
                 store: Store, client: Client, retry_max: float, history_hours: float,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.ven_name = ven_name
        self.on_change = on_change
        self.meter = meter
        self.points = {p.resource_id: p.name for p in points}
        self.samples = samples
        self.store = store
        self.client = client
        self.retry_max = retry_max
        self.history_seconds = history_hours * 3600.0
        self.cadence = float(meter.interval)
        self.settle = max(0.0, float(meter.timeout)) + SETTLE_MARGIN
        self.units = meter.unit.upper() if meter.unit else None
        self.plans: dict[str, PlanState] = {}
        self.finished: set[str] = set()
        self.reports_sent = 0
        self.last_delivery: Optional[datetime] = None
        self._changed = asyncio.Event()
        self._restored = False
        self._forecast_logged: set[str] = set()
        self._failures = Summary()
        self._last_prune = 0.0

    # -- core.ports.Reports

    def rearm(self) -> None:
        """The wall clock was stepped: look at what is due again."""
        self._changed.set()

    def report_period(self) -> Optional[timedelta]:
        """The longest gap between two reports of a running plan (None: no plan runs)."""
        gaps = []
        for state in self.plans.values():
            due = state.plan.due
            gaps += [b - a for a, b in zip((state.plan.lo, *due), due)]
        return timedelta(seconds=max(gaps)) if gaps else None

    # -- plans

    async def restore(self) -> None:
        if self._restored:
            return
        rows = await self.store.call(L.load)
        for plan_id, body, report_id, accepted, _cursor, attempted, done in rows:
            if done:
                self.finished.add(plan_id)
                continue
            try:
                plan = R.Plan.from_json(body)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("dropped an unreadable stored report plan %s (%s)", plan_id, exc)
                continue
            self.plans[plan_id] = PlanState(plan, report_id, accepted, bool(attempted))
        self._restored = True
        if self.plans:
            log.info("report plans from before the restart: %s", ", ".join(sorted(self.plans)))
        self._changed.set()

    async def events_changed(self, events: Mapping[str, tuple[Mapping[str, Any], list[tuple[datetime, Optional[datetime]]]]]) -> None:
        """Every visible event (validated, with its interval spans): plan what they ask for; plans of
        events no longer listed end (the VTN no longer wants their reports)."""
        await self.restore()
        wanted: dict[str, R.Plan] = {}
        for event_id, (event, spans) in events.items():
            for descriptor in event.get("reportDescriptors") or []:
                if R.asks_usage(descriptor) and descriptor.get("historical", True) is False \
                        and event_id not in self._forecast_logged:
                    self._forecast_logged.add(event_id)
                    log.warning("event %s asks for a USAGE forecast (historical false): this VEN measures and "
                                "does not forecast, so it sends none", event_id)
            for plan in R.plans_for(event, spans, self.ven_name, self.meter.resource_id, self.points, self.units):
                wanted[plan.plan_id] = plan
        gone = [p for p in self.plans if p not in wanted]
        for plan_id, plan in wanted.items():
            if plan_id in self.finished:
                continue
            held = self.plans.get(plan_id)
            if held is not None and held.plan == plan:
                continue
            await self.store.call(L.upsert, plan_id, plan.to_json(), plan.lo)
            if held is None:
                self.plans[plan_id] = PlanState(plan)
                log.info("event %s asks for USAGE reports of %s: %d report(s), the first at %s", plan.event_id,
                         ", ".join(r for r, _ in plan.resources), len(plan.due), _iso(plan.due[0]))
            else:
                held.plan = plan
                log.info("event %s changed: its report schedule now has %d report(s)", plan.event_id, len(plan.due))
        if gone:
            await self.store.call(L.finish, gone)
            for plan_id in gone:
                log.info("report plan %s ends: its event is no longer listed by the VTN", plan_id)
                self.plans.pop(plan_id, None)
                self.finished.add(plan_id)
            await self.samples.recount()
        self._changed.set()

    # -- delivery

    async def run(self) -> None:
        """Send every report when it is due, until cancelled; never ends on a VTN failure."""
        await self.restore()
        backoff = Backoff(RETRY_INITIAL, self.retry_max)
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            wait: Optional[float] = None
            try:
                await self._prune()
                for state in list(self.plans.values()):
                    await self._deliver(state)
                backoff.reset()
                if self._failures.total:
                    log.info("reports delivered again after %d failure(s)", self._failures.reset())
            except (VtnError, StoreFault) as exc:
                wait = backoff.next()
                covered = self._failures.hit(loop.time(), type(exc).__name__)
                if covered is not None:
                    log.warning("report delivery failed (%s); retrying in %.1f s, the samples are kept", exc, wait)
            if wait is None:  # no failure: sleep until the next report is due (a change wakes us)
                nexts = [R.next_due(s.plan, s.accepted, self.settle) for s in self.plans.values()]
                soonest = min((n for n in nexts if n is not None), default=None)
                wait = max(0.0, soonest - time.time()) if soonest is not None else 60.0
            try:
                await asyncio.wait_for(self._changed.wait(), min(wait, 60.0))
            except asyncio.TimeoutError:
                pass

    async def _deliver(self, state: PlanState) -> None:
        plan = state.plan
        k = R.due_now(plan, state.accepted, time.time(), self.settle)
        if k is None:
            return
        hi = plan.due[k]
        streams = [stream for _, stream in plan.resources]
        samples = await self.samples.window(streams, plan.lo, hi, MAX_SAMPLES, self.cadence)
        body = R.body(plan, hi, samples, self.cadence, self.ven_name)
        if state.report_id is None and state.attempted:
            state.report_id = await self._find_lost(plan)
        posted = state.report_id is None
        if posted:
            await self.store.call(L.mark_attempted, plan.plan_id)
            state.attempted = True
            answer = await self.client.call("POST", "/reports", body, ok=(200, 201))
        else:
            answer = await self.client.call("PUT", f"/reports/{state.report_id}", body, ok=(200, 201))
        try:
            report_id = wire.created(answer, "report")
        except wire.Invalid as exc:
            raise _Refused(f"the VTN's answer to the report is not a report ({exc})") from None
        done = k + 1 >= len(plan.due)
        await self.store.call(L.accept, plan.plan_id, report_id, k + 1, hi, done, critical=True)
        state.report_id, state.accepted = report_id, k + 1
        count = sum(len(r["intervals"]) for r in body["resources"])
        self.reports_sent += 1
        self.last_delivery = datetime.now(timezone.utc)
        self.on_change()
        log.info("report %s for event %s accepted by the VTN (%s, %d interval(s) up to %s)%s", report_id,
                 plan.event_id, "created" if posted else "updated", count, _iso(hi),
                 "; its last" if done else "")
        if done:
            self.plans.pop(plan.plan_id, None)
            self.finished.add(plan.plan_id)
        await self.samples.recount()

    async def _find_lost(self, plan: R.Plan) -> Optional[str]:
        """The report a POST created whose answer was lost (a crash or a timeout), by its reportName."""
        found = await self.client.list_all("/reports", {"eventID": plan.event_id, "clientName": self.ven_name})
        for item in found:
            if isinstance(item, dict) and item.get("reportName") == plan.report_name:
                try:
                    report_id = wire.created(item, "report")
                except wire.Invalid:
                    continue
                log.info("found report %s of plan %s whose answer was lost (a timeout or a restart): updating it", report_id, plan.plan_id)
                return report_id
        return None

    async def _prune(self) -> None:
        now = time.time()
        if now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        try:
            removed = await self.store.call(L.prune_samples, now - self.history_seconds)
        except Exception as exc:  # noqa: BLE001 - pruning waits for a working disk
            log.debug("sample pruning failed: %s", exc)
            return
        if removed:
            log.debug("pruned %d old sample(s)", removed)


class _Refused(VtnError):
    """The VTN's answer to a report could not be read: sent again later."""


def _iso(ts: float) -> str:
    return wire.iso(datetime.fromtimestamp(ts, timezone.utc))

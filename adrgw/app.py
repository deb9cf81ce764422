"""The one asyncio loop: BACnet device, VTN link, meter sampler and the event timer, tied together.

Data flows one way: VTN -> VtnLink -> EventController (pure schedule) -> BACnet points;
meter -> Sampler -> SampleQueue -> VtnLink reports.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from .bacnet import GatewayDevice, PointRef
from .config import Settings
from .schedule import Event, event_from_oadr, evaluate, merge
from .store import Store
from .telemetry import SampleQueue, Sampler
from .ven import OptResponse, VtnLink

log = logging.getLogger("adrgw")

# SIGINT/SIGTERM: in-flight work gets this long before it is abandoned (DESIGN.md section 1).
SHUTDOWN_GRACE = 5.0
# OpenADR 2.0b response code for an event we could not understand (oadr "not allowed" family).
EVENT_REFUSED = 400

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class EventController:
    """Holds the VTN's events and keeps the level point right, waking exactly at each boundary."""

    def __init__(self, device: GatewayDevice, clock: Clock = utc_now) -> None:
        self.device = device
        self.clock = clock
        self.events: dict[str, Event] = {}
        self._seq = 0
        self._timer: Optional[asyncio.TimerHandle] = None
        self.active_event: Optional[str] = None

    def on_distribution(self, raw_events: list[dict[str, Any]]) -> list[OptResponse]:
        """Merge one oadrDistributeEvent and return the opt response for each event (optIn)."""
        parsed: list[Event] = []
        responses: list[OptResponse] = []
        listed: set[str] = set()
        for raw in raw_events:
            descriptor = raw.get("event_descriptor") if isinstance(raw, dict) else None
            event_id = str(descriptor.get("event_id")) if isinstance(descriptor, dict) else None
            mod = descriptor.get("modification_number", 0) if isinstance(descriptor, dict) else 0
            if event_id:
                listed.add(event_id)
            try:
                event = event_from_oadr(raw)
            except ValueError as exc:
                log.warning("refused malformed event: %s", exc)
                if event_id:
                    responses.append((event_id, mod if isinstance(mod, int) else 0, "optOut", EVENT_REFUSED))
                continue
            parsed.append(event)
            responses.append((event.event_id, event.modification_number, "optIn", 200))
        self.events, changes = merge(self.events, parsed, self._seq, listed)
        self._seq += len(parsed)
        for change in changes:
            event = self.events.get(change.event_id)
            if change.kind in ("new", "modified") and event is not None:
                levels = ", ".join(f"{i.level:g}" for i in event.intervals)
                log.info("event %s %s (modification %d, signal %s): %d interval(s) [%s] from %s to %s",
                         change.event_id, "received" if change.kind == "new" else "modified",
                         change.modification_number, event.signal_name, len(event.intervals), levels,
                         event.start.isoformat() if event.start else "?",
                         event.end.isoformat() if event.end else "open end")
            elif change.kind == "cancelled":
                log.info("event %s cancelled by the VTN (modification %d)", change.event_id,
                         change.modification_number)
            elif change.kind == "removed":
                log.info("event %s no longer listed by the VTN: removed (implied cancellation)",
                         change.event_id)
            elif change.kind == "stale":
                log.warning("event %s: ignored an older modification than %d", change.event_id,
                            change.modification_number)
        self.refresh()
        return responses

    def refresh(self) -> None:
        """Set the points for now and arm a timer for the next interval boundary."""
        now = self.clock()
        state = evaluate(self.events.values(), now)
        if state.event_id != self.active_event:
            if state.event_id:
                log.info("event %s is active", state.event_id)
            elif self.active_event:
                log.info("no event active")
            self.active_event = state.event_id
        self.device.set_level(state.level)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if state.next_change is not None:
            # +1 ms: the loop's clock and the wall clock may disagree by a hair; waking just after
            # the boundary guarantees evaluate() sees the new interval.
            delay = (state.next_change - now).total_seconds() + 0.001
            self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self.refresh)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Gateway:
    """Everything the daemon runs, started and stopped as one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        s = settings
        self.store = Store(s.state.directory)
        self.device = GatewayDevice(s.bacnet, s.points, meter_unit=s.meter.unit)
        self.controller = EventController(self.device)
        self.samples = SampleQueue(self.store, max_samples=max(1, int(s.state.max_backlog_hours * 3600
                                                                         / s.meter.interval)))
        self.link = VtnLink(s.ven, s.meter, self.samples, self.controller.on_distribution, status=self.status)
        self.meter_ref = PointRef(s.meter.address, s.meter.object_type, s.meter.instance, s.meter.property_id)
        self.sampler = Sampler(self._read_meter, self.samples, s.meter.interval, s.meter.scale,
                               describe=str(self.meter_ref),
                               on_sample=lambda sample: self.device.set_meter_value(sample.value),
                               on_failure=self.device.set_meter_fault)
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = asyncio.Event()

    def status(self) -> dict[str, float]:
        """TELEMETRY_STATUS values: the gateway is online whenever it can report at all."""
        return {"online": 1.0}

    async def _read_meter(self) -> float:
        return await self.device.read_present_value(self.meter_ref, self.settings.meter.timeout)

    async def start(self) -> None:
        await self.store.open()
        await self.samples.open()
        await self.device.start()
        self.device.bound_apdu_timeout(self.settings.meter.timeout)
        self.controller.refresh()
        self._tasks = [asyncio.create_task(self.link.run(), name="vtn-link"),
                       asyncio.create_task(self.sampler.run(), name="meter-sampler")]
        self.started.set()
        log.info("gateway running: VEN %r -> %s; meter %s every %g s", self.settings.ven.ven_name,
                 self.settings.ven.vtn_url, self.meter_ref, self.settings.meter.interval)

    async def wait(self) -> None:
        """Return when a task died unexpectedly (raises its error)."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=SHUTDOWN_GRACE)
        self.controller.close()
        await self.device.stop()
        if len(self.samples):
            log.info("%d sample(s) not yet delivered are kept in %s for the next start", len(self.samples),
                     self.store.path)
        await self.store.close()


async def run_until_signal(gateway: Gateway, extra_stop: Optional[Callable[[], Any]] = None) -> int:
    """Run ``gateway`` until SIGINT/SIGTERM; clean shutdown within the grace period; exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        await gateway.start()
        waiter = asyncio.create_task(gateway.wait())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            exc = waiter.exception()
            log.error("gateway task ended unexpectedly: %r", exc)
            code = 1
        else:
            log.info("stopping (signal received)")
        waiter.cancel()
        stopper.cancel()
    finally:
        await asyncio.wait_for(gateway.stop(), SHUTDOWN_GRACE + 1)
        if extra_stop is not None:
            await extra_stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return code

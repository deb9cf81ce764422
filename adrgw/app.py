"""The one asyncio loop: BACnet device, VTN link, meter sampler and the event timer, tied together.

The composition root: every collaborator is built here (or by the protocol adapter chosen from
``[ven] protocol``, adrgw/links.py) and handed in through constructors; the ports are in
adrgw/core/ports.py, the layers in docs/architecture.md. Data flows one way: VTN -> VtnLink ->
Distribution -> EventController (pure schedule) -> BACnet points; meter -> Sampler -> SampleQueue
-> the adapter's reports -> VTN. The readers of the gateway's state (status page, /healthz,
/metrics, --status, systemd's STATUS) get the parts named once in a ``FactSources`` and read them
through ops/facts.py, never this module.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, Callable, Optional

from adrgw.bacnet import points as P
from adrgw.bacnet.points import signal_point_specs
from adrgw.ops import snapshot
from adrgw.bacnet.device import GatewayDevice, PointRef
from adrgw.core.clockwatch import ClockWatch
from adrgw.config.settings import Settings
from adrgw.core.clock import utc_now
from adrgw.core.events import EventController
from adrgw.core.model import ResourceStatus
from adrgw.persist.history import EventHistory, MeterHistory
from adrgw.ops.facts import FactSources, GatewayFacts, Labels, gather
from adrgw.ops.metrics import Metrics
from adrgw.ops.web import StatusServer, WebStartError
from adrgw.core.targeting import Identity
from adrgw.links import make_adapter, sample_ledger
from adrgw.core.gatewaystatus import gateway_status
from adrgw.core.supervise import TaskHealth, supervised
from adrgw.ops.sdnotify import Notifier, status_follower, status_line
from adrgw.persist.store import Store
from adrgw.bacnet.writer import WriteThrough
from adrgw.core.model import Sample
from adrgw.core.telemetry import Sampler
from adrgw.persist.samples import SampleQueue
from adrgw.bacnet.device import MeterReadError

log = logging.getLogger("adrgw")

# SIGINT/SIGTERM: in-flight work gets this long before it is abandoned (docs/architecture.md).
SHUTDOWN_GRACE = 5.0
# Exit code after a BACnet ReinitializeDevice (warmstart/coldstart): a clean stop, non-zero so that
# systemd's Restart=on-failure starts the gateway again (EX_TEMPFAIL, "try again"). Issue 13.
EXIT_REINITIALIZE = 75
# ADR-VTN-Online is re-evaluated this often (it depends on time passing without a poll answer).
VTN_WATCH_SECONDS = 1.0
# The state store is checked this often for faults the writes cannot see (directory removed) and for
# recovery from a fault (disk full, read-only): a fault episode ends within this time of its cause.
STORE_CHECK_SECONDS = 2.0


class Gateway:
    """Everything the daemon runs, started and stopped as one."""

    def __init__(self, settings: Settings, notifier: Optional[Notifier] = None, keeps_state: bool = True) -> None:
        """``notifier``: systemd's notify socket (the command line passes ``Notifier()``, which reads
        $NOTIFY_SOCKET); None: a disabled one (a gateway run in-process by tests and benchmarks).
        ``keeps_state``: False for a demo, whose state directory is removed when it stops (its stop
        line then does not promise the samples to a next start)."""
        self.settings = settings
        self.keeps_state = keeps_state
        s = settings
        self.notifier = notifier if notifier is not None else Notifier(environ={})
        # Set by every part when something the status shows changes: the status snapshot
        # (--status, systemd's STATUS) is rewritten within a second (ops/snapshot.py). Built first,
        # so that each part is given ``changed`` in its constructor.
        self.changes = asyncio.Event()
        changed = self.changes.set
        self.store = Store(s.state.directory, on_change=changed)
        self.device = GatewayDevice(s.bacnet, s.points, meter_unit=s.meter.unit,
                                    extra_points=tuple(signal_point_specs(s.signals)),
                                    on_opt_out=lambda active, source: self.controller.set_opt_out(active),
                                    on_reinitialize=lambda state: self.reinitialize.set())
        self.samples = SampleQueue(self.store, max_samples=max(1, int(s.state.max_backlog_hours * 3600
                                                                         / s.meter.interval)),
                                   ledger=sample_ledger(s), on_change=changed)
        self.tasks = TaskHealth()
        # [http] listen: status page, /metrics, /healthz (web.py); histories for the page (history.py).
        self.meter_history = MeterHistory(self.store, self.samples.ledger)
        self.event_history = EventHistory(self.store)
        self.write_through = WriteThrough(s.writes, lambda: self.device.app, self.store)
        # The protocol adapter first: the core sends the building's opt changes to it, and its link
        # then feeds the core (identity and status are read when called, not now).
        self.adapter = make_adapter(s, self.store, self.samples, self.status, self.tasks, on_change=changed)
        self.reports = self.adapter.reports
        self.controller = EventController(self.device, self.store, s.points.event_level,
                                          apply_test_events=s.points.apply_test_events,
                                          signal_points=s.signals, identity=self.identity, opts=self.adapter.opts,
                                          on_level=self.write_through.set_level,
                                          on_events=self.event_history.observe if s.http.listen is not None else None,
                                          on_change=changed)
        self.link = self.adapter.link(self.controller)
        # ReinitializeDevice: run_until_signal stops everything (relinquishing write-through slots,
        # persisting state) and exits with EXIT_REINITIALIZE.
        self.reinitialize = asyncio.Event()
        self.meter_ref = PointRef(s.meter.address, s.meter.object_type, s.meter.instance, s.meter.property_id)
        self.report_refs = {p.name: PointRef(p.address, p.object_type, p.instance, p.property_id)
                            for p in s.reports}
        self.sampler = Sampler(self._read_meter, self.samples, s.meter.interval, s.meter.scale,
                               describe=str(self.meter_ref), read_errors=(MeterReadError,),
                               on_sample=self._sampled,
                               on_failure=self._meter_failed,
                               extra_read=self._read_report_points if s.reports else None,
                               extra_scales={p.name: p.scale for p in s.reports}, timeout=s.meter.timeout)
        self.clock_watch = ClockWatch([self.controller.refresh, self.sampler.rearm, self.reports.rearm])
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = asyncio.Event()
        self._stopped = False
        self.metrics = Metrics()
        self.web: Optional[StatusServer] = None
        self.web_error: Optional[str] = None
        # What the page, /healthz, /metrics, --status and systemd's STATUS read, named once: each of
        # them gathers the facts from these parts (ops/facts.py), never from this object.
        self.sources = FactSources(
            labels=Labels(device=f"{s.bacnet.device_name} (device {s.bacnet.device_id})",
                          ven_name=s.ven.ven_name, vtn_url=s.ven.vtn_url, meter=str(self.meter_ref),
                          meter_point=f"{s.meter.address} {s.meter.object}", meter_interval=s.meter.interval,
                          meter_unit=s.meter.unit),
            link=self.link, reports=self.reports, samples=self.samples, sampler=self.sampler,
            controller=self.controller, store=self.store, tasks=self.tasks, clock_watch=self.clock_watch,
            writers=lambda: self.write_through.writers,
            gateway_status=lambda: self.device.get_value(P.GATEWAY_STATUS))
        # The status snapshot --status reads: rewritten within a second of any change it shows
        # (``changes``); systemd's STATUS follows each one.
        self.snapshots = snapshot.SnapshotWriter(
            self.sources, self.changes,
            listeners=[status_follower(self.notifier)] if self.notifier.enabled else [])

    def _sampled(self, sample: Sample) -> None:
        self.device.set_meter_value(sample.value)
        if self.settings.http.listen is not None:
            self.meter_history.record(sample)
        self.changes.set()

    def _meter_failed(self, error: str) -> None:
        self.device.set_meter_fault(error)
        self.changes.set()

    async def _start_web(self) -> None:
        """Start the web server; a failure is logged as one error line and never stops the gateway."""
        listen = self.settings.http.listen
        if listen is None:
            return
        self.metrics.requests.install(self.device.app)  # bacpypes3's application: see BacnetRequestCounter
        self.metrics.lag.start()
        web = StatusServer(self.sources, listen, self.meter_history, self.event_history, self.metrics)
        try:
            await web.start()
        except WebStartError as exc:
            self.web_error = str(exc)
            log.error("%s: the status page, /metrics and /healthz are off; BACnet and OpenADR go on", exc)
            return
        self.web = web

    async def _stop_web(self) -> None:
        if self.web is not None:
            await self.web.stop()
            self.web = None
        await self.metrics.lag.stop()
        await self.meter_history.flush()
        await self.event_history.flush()

    def identity(self) -> Identity:
        """Who eiTarget may name: our venID (once registered), our resources, groups and parties."""
        s = self.settings
        return Identity(ven_id=self.link.state().ven_id,
                        resource_ids=frozenset([s.meter.resource_id] + [p.resource_id for p in s.reports]),
                        group_ids=frozenset(s.ven.group_ids), party_ids=frozenset(s.ven.party_ids))

    def facts(self) -> GatewayFacts:
        """The gateway's facts now, without the store's oldest queued sample (ops/facts.py)."""
        return gather(self.sources, utc_now())

    def status_line(self) -> str:
        """One line for systemd's STATUS (``systemctl status``): registration and reports."""
        return status_line(self.facts())

    def status(self) -> ResourceStatus:
        """For the VTN (2.0b TELEMETRY_STATUS): online (the gateway reports, so it is), manual override
        (ADR-Opt-Out active) and the level on ADR-Event-Level (oadrLoadControlState level offset)."""
        return ResourceStatus(online=True, manual_override=self.controller.opt_out, level=float(self.device.level))

    def gateway_status(self) -> int:
        """ADR-Gateway-Status's present value now (gatewaystatus.py decides)."""
        return gateway_status(self.link.state().online, self.sampler.failures, self.store.healthy)

    async def _watch_vtn(self) -> None:
        while True:
            self.device.set_value(P.VTN_ONLINE, self.link.state().online)
            self.device.set_value(P.GATEWAY_STATUS, self.gateway_status())
            await asyncio.sleep(VTN_WATCH_SECONDS)

    async def _maintain_store(self) -> None:
        """Detect and end storage fault episodes; once the store works, commit what waited in memory."""
        while True:
            await asyncio.sleep(STORE_CHECK_SECONDS)
            if await self.store.check():
                await self.controller.persist_pending()

    async def _read_report_points(self) -> dict[str, Any]:
        return await self.device.read_many(self.report_refs, self.settings.meter.timeout)

    async def _read_meter(self) -> float:
        return await self.device.read_present_value(self.meter_ref, self.settings.meter.timeout)

    async def start(self) -> None:
        await self.store.open()
        await self.samples.open()
        await self.controller.restore()
        if self.settings.http.listen is not None:
            await self.meter_history.open()
            await self.event_history.open()
        await self.device.start()
        self.device.bound_apdu_timeout(self.settings.meter.timeout)
        await self.write_through.start()
        self.controller.refresh()  # stored events drive the points before the VTN answers
        self.device.set_value(P.GATEWAY_STATUS, self.gateway_status())
        self._tasks = [asyncio.create_task(supervised(name, factory, self.tasks), name=name)
                       for name, factory in (("vtn-link", self.link.run), ("meter-sampler", self.sampler.run),
                                             ("vtn-watch", self._watch_vtn), ("store-check", self._maintain_store),
                                             ("clock-watch", self.clock_watch.run),
                                             ("status-snapshot", self.snapshots.run))]
        await self._start_web()
        self.started.set()
        log.info("gateway running: VEN %r -> %s; meter %s every %g s", self.settings.ven.ven_name,
                 self.settings.ven.vtn_url, self.meter_ref, self.settings.meter.interval)

    async def wait(self) -> None:
        """Return when a task died unexpectedly (raises its error)."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=SHUTDOWN_GRACE)
        await self._stop_web()
        self.controller.close()
        await self.write_through.stop()  # relinquish before the BACnet stack goes away
        await self.device.stop()
        if len(self.samples) and self.keeps_state:
            oldest = None
            try:
                oldest = await self.samples.oldest_owed()
            except Exception:  # noqa: BLE001 - only for the log line
                pass
            log.info("%d sample(s) not yet delivered (oldest %s) are kept in %s for the next start",
                     len(self.samples), oldest.isoformat() if oldest else "unknown", self.store.path)
        await snapshot.write(self.sources, running=False)  # --status then says "stopped", not "not answering"
        await self.store.close()


async def run_until_signal(gateway: Gateway, extra_stop: Optional[Callable[[], Any]] = None) -> int:
    """Run ``gateway`` until SIGINT/SIGTERM; clean shutdown within the grace period; exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP is ignored (with a log line): the configuration is only read at start, so a changed
    # config.ini needs a restart (systemctl restart), which also re-checks it.
    loop.add_signal_handler(signal.SIGHUP, lambda: log.warning(
        "SIGHUP ignored: restart the gateway to apply configuration changes"))
    notifier = gateway.notifier
    watchdog: Optional[asyncio.Task[None]] = None
    code = 0
    try:
        await gateway.start()
        # READY once the BACnet device is up, not when the VTN answers: the building's points work
        # (from the stored schedule) while the VTN may still be unreachable.
        notifier.ready(gateway.status_line())
        watchdog = asyncio.create_task(notifier.run_watchdog(gateway.status_line, alive=lambda: gateway.tasks.alive),
                                       name="sd-watchdog")
        waiter = asyncio.create_task(gateway.wait())
        stopper = asyncio.create_task(stop.wait())
        reinit = asyncio.create_task(gateway.reinitialize.wait())
        done, _ = await asyncio.wait({waiter, stopper, reinit}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            exc = waiter.exception()
            log.error("gateway task ended unexpectedly: %r", exc)
            code = 1
        elif reinit in done:
            log.warning("stopping for ReinitializeDevice: exit code %d (systemd restarts the gateway)",
                        EXIT_REINITIALIZE)
            code = EXIT_REINITIALIZE
        else:
            log.info("stopping (signal received)")
        waiter.cancel()
        stopper.cancel()
        reinit.cancel()
    finally:
        notifier.stopping()
        if watchdog is not None:
            watchdog.cancel()
        await asyncio.wait_for(gateway.stop(), SHUTDOWN_GRACE + 1)
        if extra_stop is not None:
            await extra_stop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        notifier.close()
    log.info("stopped")
    return code

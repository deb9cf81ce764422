"""Prometheus metrics (``/metrics``), made with prometheus_client from the gateway's facts at scrape time.

Why a collector and not counters incremented all over the code: the gateway's parts already count
what they do (Sampler, SampleQueue, the link, the reports, WriteThrough); a scrape renders the facts
gathered from them once for that scrape (facts.py), so nothing is counted twice and the page,
/healthz, --status and /metrics read the same numbers. Two things have no owner elsewhere and live
here: the event-loop lag probe and the count of BACnet requests the device served.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Iterable, Optional

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from adrgw.core.schedule import STATUS_STATES
from adrgw.ops.facts import GatewayFacts

log = logging.getLogger("adrgw.metrics")

# The loop-lag probe sleeps this long and measures how late it wakes up (a blocked loop shows here).
LAG_PROBE_SECONDS = 0.5
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


# -- BACnet requests served ---------------------------------------------------------------------


class BacnetRequestCounter:
    """Counts the requests the gateway's BACnet application handles, by service (e.g. ReadPropertyRequest).

    bacpypes3 has no counter of its own: this wraps the application's ``indication`` (the single
    entry point for incoming requests) on the instance, as bacnet/device.py does for its write guard.
    Setting an attribute on a library object after it was built is the only way in here (bacpypes3
    builds its application itself); our own objects take their collaborators in their constructors.
    """

    def __init__(self) -> None:
        self.by_service: dict[str, int] = {}

    def install(self, app: Any) -> None:
        original = app.indication

        async def counted(apdu: Any) -> None:
            name = type(apdu).__name__
            self.by_service[name] = self.by_service.get(name, 0) + 1
            await original(apdu)

        object.__setattr__(app, "indication", counted)


# -- event-loop lag -----------------------------------------------------------------------------


class LoopLagProbe:
    """Sleeps LAG_PROBE_SECONDS in a loop and records how late each wake-up was."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.last: float = 0.0
        self._task: Optional[asyncio.Task[None]] = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-probe")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            self.last = max(0.0, loop.time() - before - LAG_PROBE_SECONDS)
            self.histogram.observe(self.last)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


# -- the collector ------------------------------------------------------------------------------


def _ts(value: Optional[datetime]) -> float:
    return value.timestamp() if value is not None else 0.0


class GatewayCollector(Collector):
    """Renders the facts of the scrape in progress (``facts``: set by Metrics.render)."""

    def __init__(self, requests: BacnetRequestCounter) -> None:
        self.requests = requests
        self.facts: Optional[GatewayFacts] = None

    def collect(self) -> Iterable[Any]:
        f = self.facts
        if f is None:
            return
        now = f.at
        state = f.schedule
        n = f.samples

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, value=value)

        yield gauge("adrgw_event_level", "Signal level of the active event interval (ADR-Event-Level), 0 outside "
                    "events", state.level)
        status = GaugeMetricFamily("adrgw_event_status", "Event status now (1 for the current one)",
                                   labels=["status"])
        for name in STATUS_STATES:
            status.add_metric([name], 1.0 if state.status == name else 0.0)
        yield status
        yield gauge("adrgw_opt_out", "1 while ADR-Opt-Out is active", 1.0 if f.opt_out else 0.0)
        yield counter("adrgw_samples_taken", "Meter reads that returned a value", float(n.taken))
        yield counter("adrgw_samples_stored", "Samples written to the durable report queue", float(n.stored))
        yield counter("adrgw_samples_delivered", "Samples the VTN acknowledged", float(n.delivered))
        yield counter("adrgw_samples_dropped", "Undelivered samples dropped because the backlog was full",
                      float(n.dropped))
        yield counter("adrgw_meter_read_failures", "Meter reads that failed (no sample for that instant)",
                      float(n.read_failures))
        yield gauge("adrgw_report_queue_depth", "Samples waiting for the VTN's acknowledgement",
                    float(f.queue_depth))
        oldest = f.oldest_queued
        yield gauge("adrgw_report_queue_oldest_age_seconds", "Age of the oldest queued sample (0 when empty)",
                    max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        yield counter("adrgw_reports_sent", "Telemetry reports (oadrUpdateReport) the VTN acknowledged",
                      float(f.reports_sent))
        yield gauge("adrgw_vtn_online", "1 when the VTN answered a poll within 3 poll periods",
                    1.0 if f.link.online else 0.0)
        yield gauge("adrgw_vtn_registered", "1 while registered with the VTN", 1.0 if f.link.registered else 0.0)
        yield gauge("adrgw_vtn_last_poll_timestamp_seconds", "When the VTN last answered a poll (0: never)",
                    _ts(f.link.last_contact))
        yield gauge("adrgw_vtn_last_report_timestamp_seconds", "When the VTN last acknowledged a report (0: never)",
                    _ts(f.last_delivery))
        yield counter("adrgw_vtn_registration_attempts", "Registration attempts since start",
                      float(f.link.attempts))
        served = CounterMetricFamily("adrgw_bacnet_requests_served", "BACnet requests the gateway's device "
                                     "handled, by service", labels=["service"])
        for service, count in sorted(self.requests.by_service.items()):
            served.add_metric([service], float(count))
        yield served
        writes = CounterMetricFamily("adrgw_write_through_writes", "Write-through writes sent (value or "
                                     "relinquish), by target", labels=["target"])
        confirmed = CounterMetricFamily("adrgw_write_through_confirmations", "Write-through writes confirmed "
                                        "by reading priorityArray back, by target", labels=["target"])
        for w in f.writes:
            writes.add_metric([w.name], float(w.attempts))
            confirmed.add_metric([w.name], float(w.confirmations))
        yield writes
        yield confirmed
        # Issue 11's fault counters: what could not be sampled or stored, and how often things broke.
        yield counter("adrgw_samples_missed", "Cadence instants without a sample because the process was "
                      "stalled or the wall clock jumped ahead", float(n.missed))
        yield counter("adrgw_samples_late_discarded", "Readings discarded because they finished more than the "
                      "read timeout after their instant", float(n.late_discarded))
        yield counter("adrgw_samples_unstored", "Samples that could not be stored (storage fault): not delivered",
                      float(n.unstored))
        yield gauge("adrgw_storage_failing", "1 during a storage fault episode (disk full, I/O error, read-only, "
                    "removed)", 0.0 if f.storage_fault is None else 1.0)
        yield counter("adrgw_storage_fault_episodes", "Storage fault episodes since start",
                      float(f.storage_episodes))
        yield counter("adrgw_task_restarts", "Supervised tasks that ended unexpectedly and were restarted",
                      float(f.task_restarts))
        yield counter("adrgw_clock_steps", "Wall-clock steps detected (the schedule and sampler were re-armed)",
                      float(f.clock_steps))
        if f.gateway_status is not None:
            yield gauge("adrgw_gateway_status", "ADR-Gateway-Status present value (state number)",
                        float(f.gateway_status))
        yield gauge("adrgw_healthy", "1 when the health verdict (/healthz, --status) is healthy",
                    1.0 if f.health().healthy else 0.0)


class Metrics:
    """The registry /metrics exposes, with the loop-lag probe and the BACnet request counter."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = BacnetRequestCounter()
        self.collector = GatewayCollector(self.requests)
        self.registry.register(self.collector)
        self.lag = LoopLagProbe(Histogram("adrgw_event_loop_lag_seconds", "How late a 0.5 s sleep of the "
                                          "event loop woke up", buckets=LAG_BUCKETS, registry=self.registry))

    def render(self, facts: GatewayFacts) -> bytes:
        """The exposition of ``facts`` (gathered for this scrape: facts.collect), with the lag
        histogram and the BACnet request counts. Synchronous: no other scrape can interleave."""
        self.collector.facts = facts
        try:
            return generate_latest(self.registry)
        finally:
            self.collector.facts = None

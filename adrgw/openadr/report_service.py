"""The OpenADR 2.0b report service at run time: what we offer (oadrRegisterReport), the VTN's report
requests (oadrCreateReport, oadrRegisteredReport, oadrCancelReport), and delivery of every running
request on its own schedule (oadrUpdateReport).

Which intervals are due and when is pure logic in ``reports.py``; durable state (requests, cursors,
the delivered watermark) is in the Store (``report_store.py``); the samples come from the core's
Readings port (the durable sample queue); messages go through the ``Transport`` the adapter builds
(openleadr's client, our bounded HTTP). One delivery task serves every request, one bounded batch at a time: a batch whose
acknowledgement is lost is sent again (only that batch), a cursor moves only once the VTN answered
oadrUpdatedReport 200, and the move is committed to disk before anything newer is sent (when the disk
refuses, the cursor is kept in memory and the commit retried).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Optional

from openleadr import enums, objects, utils

from adrgw.openadr import report_store as S
from adrgw.openadr import reports as R
from adrgw.persist.store import Store, StoreFault
from adrgw.config.settings import MeterSettings, ReportPoint
from adrgw.openadr.config import measurement_unit
from adrgw.core.ratelog import DeliverySummary
from adrgw.core.model import ResourceStatus as GatewayState
from adrgw.core.ports import Readings, StatusSource
from adrgw.openadr.oadr_report import OutInterval, OutReport, ResourceStatus, update_report
from adrgw.openadr.payloads import response_code as _response_code

log = logging.getLogger("adrgw.reports")

# Intervals per oadrUpdateReport when a backlog is sent: 1 h of 10 s samples, ~60 kB of XML.
MAX_BATCH = 360
# A report due at T carries instants before T; the read of the last one (T - granularity) has
# been stored by T - granularity + [meter] timeout. Sent that late, plus this margin.
SETTLE_MARGIN = 0.2
# Retry delays after a failed delivery or storage error: doubled from 1 s up to [ven] retry_max.
RETRY_INITIAL = 1.0
# Delivered samples are pruned at most this often (seconds).
PRUNE_EVERY = 600.0

REPORT_NAMES = {R.USAGE: enums.REPORT_NAME.TELEMETRY_USAGE, R.HISTORY: enums.REPORT_NAME.HISTORY_USAGE,
                R.STATUS: enums.REPORT_NAME.TELEMETRY_STATUS}


class ReportNotAcknowledged(Exception):
    """The VTN answered an oadrUpdateReport with something else than oadrUpdatedReport 200."""


@dataclass
class Transport:
    """What the report service needs of the VTN link (built by the adapter, adrgw/openadr/adapter.py)."""

    exchange: Callable[[str, str], Awaitable[tuple[str, dict[str, Any]]]]  # (service, message) -> reply
    create_message: Callable[..., str]
    ven_id: Callable[[], Optional[str]]
    registered: asyncio.Event
    reregister: Callable[[], None]  # the VTN no longer knows us
    errors: tuple[type[BaseException], ...]  # exchange failures (VtnError)
    not_registered: type[BaseException]


class ReportService:
    def __init__(self, meter: MeterSettings, points: tuple[ReportPoint, ...], samples: Readings,
                 store: Store, transport: Transport, status: Optional[StatusSource] = None,
                 status_report: bool = False, history_hours: float = 168.0, retry_max: float = 60.0,
                 on_change: Callable[[], None] = lambda: None) -> None:
        """``on_change``: called after each acknowledged report (the status snapshot follows)."""
        self.meter = meter
        self.points = points
        self.samples = samples
        self.store = store
        self.transport = transport
        self.status: StatusSource = status or (lambda: GatewayState(online=True, manual_override=False))
        self.status_report = status_report
        self.history_seconds = history_hours * 3600.0
        self.retry_max = retry_max
        self.cadence = float(meter.interval)
        self.timeout = float(meter.timeout)
        resource = meter.resource_id
        self.usage_id = f"TELEMETRY_USAGE_{resource}"
        self.history_id = f"HISTORY_USAGE_{resource}"
        self.status_id = f"TELEMETRY_STATUS_{resource}"
        self.meter_r_id = f"{resource}_{meter.measurement}"
        self.status_r_id = f"{resource}_status"
        streams = {self.meter_r_id: "", **{p.name: p.name for p in points}}
        self.offered = [R.OfferedReport(self.usage_id, R.USAGE, streams),
                        R.OfferedReport(self.history_id, R.HISTORY, streams)]
        if status_report:
            self.offered.append(R.OfferedReport(self.status_id, R.STATUS, {self.status_r_id: ""}))
        self.table = R.RequestTable()
        self.delivered: dict[str, float] = {}
        self._uncommitted: dict[str, tuple[float, Optional[str], bool]] = {}
        self._changed = asyncio.Event()
        self._restored = False
        self._last_prune = 0.0
        self._served: dict[str, float] = {}
        self._in_flight: dict[str, float] = {}  # request id -> end of the batch whose answer never came
        self._rewinds: set[asyncio.Task[None]] = set()
        # One report exchange at a time, and never beside a change of the request table: a request
        # replaced (same reportSpecifierID) while its report is in flight would hand the new request a
        # cursor from before that report, and the VTN would get its intervals twice.
        self._sending = asyncio.Lock()
        self.reports_sent = 0
        self.delivery_log = DeliverySummary()  # one INFO line per report, at most one a minute
        self.last_delivery: Optional[datetime] = None
        self.on_change = on_change

    def report_period(self) -> Optional[timedelta]:
        """The longest a sample is meant to wait before it is sent: the longest reportBackDuration of
        the running telemetry requests (None: none runs). The health verdict's "queue growing" rule."""
        backs = [r.back for r in self.table.requests.values() if r.kind == R.USAGE]
        return timedelta(seconds=max(backs)) if backs else None

    def rearm(self) -> None:
        """The wall clock was stepped (clockwatch.py). After a step back, new samples are stamped on
        the new timeline, before the cursors, and would never be reported: every telemetry and status
        cursor (and the delivered watermark) ahead of now comes back to now's last instant. The VTN
        may then get an instant it already had from the old timeline, with the new reading."""
        now = time.time()
        rewound: list[tuple[str, float]] = []
        for request_id, request in self.table.requests.items():
            cursor = self.table.cursors.get(request_id)
            if request.kind == R.HISTORY or cursor is None or cursor <= now:
                continue
            back = math.floor(now / request.granularity) * request.granularity
            self.table.cursors[request_id] = back
            rewound.append((request_id, back))
            self._in_flight.pop(request_id, None)
            self._uncommitted.pop(request_id, None)
        if not rewound:
            return
        marks = {spec: min(ts, now) for spec, ts in self.delivered.items() if ts > now}
        self.delivered.update(marks)
        log.warning("wall clock stepped back: %d report request(s) continue from %s on the new timeline",
                    len(rewound), _iso(min(c for _, c in rewound)))
        task = asyncio.get_running_loop().create_task(self._save_rewind(rewound, marks))
        self._rewinds.add(task)
        task.add_done_callback(self._rewinds.discard)
        self._changed.set()

    async def _save_rewind(self, cursors: list[tuple[str, float]], marks: dict[str, float]) -> None:
        try:
            await self.store.call(S.rewind_report_cursors, cursors, marks, critical=True)
            await self.samples.recount()
        except Exception as exc:  # noqa: BLE001 - a failing disk: the cursors run from memory
            log.error("could not save the rewound report cursors (%s); they run from memory", exc)

    def settle(self, request: R.ReportRequest) -> float:
        return max(0.0, self.timeout - request.granularity) + SETTLE_MARGIN

    def _streams(self, specifier_id: str) -> dict[str, str]:
        return next((o.streams for o in self.offered if o.specifier_id == specifier_id), {})

    # -- offered reports (oadrRegisterReport) ---------------------------------------------------

    def _description(self, r_id: str, resource_id: str, measurement_name: str,
                     unit_scale: tuple[str, str]) -> objects.ReportDescription:
        unit, scale = unit_scale
        base = enums.MEASUREMENTS[measurement_name.upper()]
        measurement = objects.Measurement(name=base.name, description=base.description, unit=unit,
                                          acceptable_units=base.acceptable_units, scale=scale,
                                          power_attributes=base.power_attributes)
        target = objects.Target(resource_id=resource_id)
        period = timedelta(seconds=self.cadence)
        return objects.ReportDescription(
            r_id=r_id, market_context=None, reading_type=enums.READING_TYPE.DIRECT_READ,
            report_subject=target, report_data_source=target, report_type=enums.REPORT_TYPE.READING,
            sampling_rate=objects.SamplingRate(min_period=period, max_period=period, on_change=False),
            measurement=measurement)

    def metadata_reports(self) -> list[objects.Report]:
        """METADATA_TELEMETRY_USAGE and METADATA_HISTORY_USAGE (the [meter] and every [report.NAME]),
        and METADATA_TELEMETRY_STATUS when [ven] status_report is on."""
        m = self.meter
        now = datetime.now(timezone.utc)
        descriptions = [self._description(self.meter_r_id, m.resource_id, m.measurement,
                                         measurement_unit(m.measurement, m.unit))]
        descriptions += [self._description(p.name, p.resource_id, p.measurement,
                                          measurement_unit(p.measurement, p.unit))
                         for p in self.points]
        out = [objects.Report(report_specifier_id=self.usage_id, report_name=enums.REPORT_NAME.METADATA_TELEMETRY_USAGE,
                              report_descriptions=descriptions, created_date_time=now,
                              duration=timedelta(hours=1), dtstart=now),
               objects.Report(report_specifier_id=self.history_id, report_name=enums.REPORT_NAME.METADATA_HISTORY_USAGE,
                              report_descriptions=descriptions, created_date_time=now,
                              duration=timedelta(seconds=max(1, round(self.history_seconds))), dtstart=now)]
        if self.status_report:
            target = objects.Target(resource_id=m.resource_id)
            period = timedelta(seconds=max(self.cadence, 10))
            out.append(objects.Report(
                report_specifier_id=self.status_id, report_name=enums.REPORT_NAME.METADATA_TELEMETRY_STATUS,
                report_descriptions=[objects.ReportDescription(
                    r_id=self.status_r_id, market_context=None, reading_type=enums.READING_TYPE.X_NOT_APPLICABLE,
                    report_subject=target, report_data_source=target,
                    report_type=enums.REPORT_TYPE.X_RESOURCE_STATUS,
                    sampling_rate=objects.SamplingRate(min_period=period, max_period=timedelta(hours=1),
                                                       on_change=False), measurement=None)],
                created_date_time=now, duration=timedelta(hours=1), dtstart=now))
        return out

    async def register_reports(self) -> None:
        """Offer our reports (oadrRegisterReport); take the requests in the oadrRegisteredReport."""
        t = self.transport
        _, payload = await t.exchange("EiReport", t.create_message(
            "oadrRegisterReport", request_id=utils.generate_id(), ven_id=t.ven_id(),
            reports=self.metadata_reports(), report_request_id=0))
        requests = payload.get("report_requests") or []
        if requests:
            await self.handle_create_report(payload)
        elif not self.table.requests:
            log.warning("the VTN did not request the telemetry report yet; samples are kept until it does")

    # -- report requests ------------------------------------------------------------------------

    async def restore(self) -> None:
        """Load the running requests, their cursors and the delivered watermarks from the store."""
        if self._restored:
            return
        try:
            await self.store.call(S.create_tables)
            rows, delivered = await self.store.call(S.load_report_requests)
        except Exception as exc:  # noqa: BLE001 - a broken store must not stop the VTN link; retried
            log.error("could not read the report requests from the state store (%s); retrying later", exc)
            return
        for specifier, ts in delivered.items():
            self.delivered[specifier] = max(ts, self.delivered.get(specifier, ts))
        running = {r.specifier_id for r in self.table.requests.values()}
        for body, cursor in rows:
            try:
                request = R.ReportRequest.from_json(json.loads(body))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("dropped an unreadable stored report request (%s)", exc)
                continue
            if request.specifier_id in running:
                continue  # the VTN asked again meanwhile: its new request replaced this one
            self.table.requests[request.request_id] = request
            self.table.cursors[request.request_id] = R.FROM_START if cursor is None else cursor
        self._restored = True
        if self.table.requests:
            log.info("report requests from before the restart: %s", ", ".join(self.table.pending()))

    async def handle_create_report(self, payload: dict[str, Any]) -> None:
        """oadrCreateReport (or the requests in oadrRegisteredReport): accept all or refuse all,
        and answer oadrCreatedReport with the running requests in oadrPendingReports."""
        await self.restore()
        raw = payload.get("report_requests") or []
        if not isinstance(raw, list):
            raw = [raw]
        async with self._sending:  # a replaced request's report in flight ends first (its cursor carries on)
            code, description = self.accept(raw)
            if code == R.OK:
                await self._save_table()
        t = self.transport
        request_id = payload.get("request_id") or (payload.get("response") or {}).get("request_id") \
            or utils.generate_id()
        await t.exchange("EiReport", t.create_message(
            "oadrCreatedReport", response={"response_code": code, "response_description": description,
                                           "request_id": request_id},
            ven_id=t.ven_id(), pending_reports=[{"report_request_id": r} for r in self.table.pending()]))

    def accept(self, raw: list[Any]) -> tuple[int, str]:
        parsed = [R.parse_request(r, self.offered, self.cadence) for r in raw]
        refused = [p for p in parsed if isinstance(p, R.Refusal)]
        if refused:
            log.warning("refused the VTN's report request(s): %s", "; ".join(r.description for r in refused))
            return refused[0].code, refused[0].description[:200]
        accepted = [p for p in parsed if isinstance(p, R.ReportRequest)]
        for replaced, request, _cursor in self.table.accept(accepted, time.time(), self.delivered):
            log.info("VTN requested %s (reportRequestID %s%s): rIDs %s, granularity %g s, report every %g s%s",
                     request.specifier_id, request.request_id,
                     f", replacing {replaced}" if replaced and replaced != request.request_id else "",
                     ", ".join(request.r_ids), request.granularity, request.back,
                     "" if request.start is None else
                     f", interval {_iso(request.start)} .. {_iso(request.end) if request.end else 'open'}")
            self._uncommitted.pop(request.request_id, None)
            if replaced:
                self._uncommitted.pop(replaced, None)
        self._changed.set()
        return R.OK, "OK"

    async def handle_cancel_report(self, payload: dict[str, Any]) -> None:
        """oadrCancelReport: stop at once, or with reportToFollow after one last report."""
        await self.restore()
        ids = payload.get("report_request_id") or []
        ids = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        async with self._sending:
            running_before = set(self.table.requests)
            self.cancel(ids, bool(payload.get("report_to_follow")))
            await self._save_table()
        t = self.transport
        code = R.OK if any(i in running_before for i in ids) else R.INVALID_ID
        await t.exchange("EiReport", t.create_message(
            "oadrCanceledReport", response={"response_code": code,
                                            "response_description": "OK" if code == R.OK else "unknown reportRequestID",
                                            "request_id": payload.get("request_id")},
            ven_id=t.ven_id(), report_request_id=ids,
            pending_reports=[{"report_request_id": r} for r in self.table.pending()]))

    def cancel(self, ids: list[str], report_to_follow: bool) -> None:
        for request_id in ids:
            request = self.table.cancel(request_id, report_to_follow)
            if request is None:
                log.warning("VTN cancelled report request %s, which is not running", request_id)
                continue
            log.info("VTN cancelled report request %s (%s)%s", request_id, request.specifier_id,
                     "; one last report follows" if report_to_follow else "")
        self._changed.set()

    async def _save_table(self) -> None:
        """Persist the request table as it is now (requests and cursors)."""
        rows = [(rid, r.kind, json.dumps(r.to_json()),
                 None if not math.isfinite(self.table.cursors[rid]) else self.table.cursors[rid])
                for rid, r in self.table.requests.items()]

        def _save(db: Any) -> None:
            running = [row[0] for row in rows]
            stored = [r[0] for r in db.execute("SELECT request_id FROM report_requests").fetchall()]
            S.save_report_requests(db, [r for r in stored if r not in running], rows)

        try:
            await self.store.call(_save)
        except Exception as exc:  # noqa: BLE001 - a full or broken disk must not stop the service
            log.error("could not save the report requests to the state store (%s); they run from memory", exc)

    # -- delivery -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver every running request on its schedule, forever. Failures are logged, backed off
        and retried; they never end the task."""
        delay = RETRY_INITIAL
        failures = 0
        while True:
            await self.transport.registered.wait()
            # While the state store is failing, hold delivery back: a cursor that cannot be committed
            # would make the VTN get that batch again after a restart (issue 11). The store logs the
            # fault episode itself, once, at ERROR.
            await self.store.wait_healthy()
            try:
                await self.restore()
                progressed = await self.step(time.time())
            except self.transport.errors as exc:
                failures += 1
                if isinstance(exc, self.transport.not_registered):
                    self.transport.reregister()
                if failures == 1 or failures % 20 == 0:
                    log.warning("report delivery failed (%d in a row, %d sample(s) kept): %s; retry in %.1f s",
                                failures, len(self.samples), exc, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.retry_max, delay * 2)
                continue
            except ReportNotAcknowledged as exc:
                failures += 1
                log.warning("report not acknowledged (%d in a row): %s; retry in %.1f s", failures, exc, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.retry_max, delay * 2)
                continue
            except StoreFault:
                # Already logged by the store (one ERROR per episode); acknowledged cursors stay in
                # memory, so nothing is sent twice by this process. Back off, then wait for recovery.
                failures += 1
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.retry_max, delay * 2)
                continue
            except Exception as exc:  # noqa: BLE001 - storage (sqlite/OSError): log, back off, retry
                failures += 1
                log.error("report delivery: state store error (%s: %s); retry in %.1f s",
                          type(exc).__name__, exc, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.retry_max, delay * 2)
                continue
            if failures:
                log.info("report delivery works again after %d failure(s)", failures)
            failures, delay = 0, RETRY_INITIAL
            if progressed:
                continue
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        now = time.time()
        wakes = [R.next_wake(r, now, self.settle(r)) for r in self.table.requests.values()]
        timeout = min(wakes) - now if wakes else 3600.0
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), max(0.0, timeout))
        except asyncio.TimeoutError:
            pass

    async def step(self, now: float) -> bool:
        """Do the one next thing that is due (commit, send one batch, end a request); True when
        something was done (call again at once)."""
        if self._uncommitted:
            await self._commit_pending()
            return True
        if now - self._last_prune > PRUNE_EVERY:
            self._last_prune = now
            pruned = await self.store.call(S.prune_samples, now - self.history_seconds)
            if pruned:
                log.info("removed %d sample(s) older than [state] history_hours that no report owes", pruned)
        # least recently served first: a long backlog of one request does not starve the others
        for request_id in sorted(self.table.requests, key=lambda rid: (self._served.get(rid, 0.0), rid)):
            request = self.table.requests[request_id]
            cursor = self.table.cursors[request_id]
            if R.finished(request, cursor):
                self._end(request_id, cursor, "its reportInterval is over")
                await self._commit_pending()
                return True
            span = R.window(request, cursor, now, self.settle(request))
            if span is None:
                if request.final:
                    self._end(request_id, cursor, "cancelled")
                    await self._commit_pending()
                    return True
                continue
            self._served[request_id] = time.monotonic()
            async with self._sending:
                if self.table.requests.get(request_id) is not request:
                    return True  # replaced or cancelled while waiting: look again
                if request.kind == R.STATUS:
                    await self._send_status(request, span[1])
                    return True
                await self._send_batch(request, span)
            return True
        return False

    def _end(self, request_id: str, cursor: float, why: str) -> None:
        request = self.table.requests[request_id]
        log.info("report request %s (%s) ended: %s", request_id, request.specifier_id, why)
        self.table.finish(request_id)
        self._in_flight.pop(request_id, None)
        self._uncommitted[request_id] = (cursor, None, True)

    async def _commit_pending(self) -> None:
        """Write acknowledged cursors (and ended requests) to the store; on failure they stay in
        memory (nothing is sent twice while the process lives) and this is retried first."""
        for request_id, (cursor, specifier, finished) in list(self._uncommitted.items()):
            stored = cursor if math.isfinite(cursor) else -1e300
            # critical: on a full disk the store releases its reserve so the acknowledgement commits.
            await self.store.call(S.commit_report_cursor, request_id, stored, specifier, finished, critical=True)
            del self._uncommitted[request_id]
            if specifier is not None:
                self.delivered[specifier] = max(self.delivered.get(specifier, stored), stored)
        await self.samples.recount()

    async def _send_batch(self, request: R.ReportRequest, span: tuple[float, float]) -> None:
        lo, hi = span
        # At-least-once with bounded duplicates (issue 11): after a failed or timed-out attempt the
        # VTN may have taken that report, so exactly that batch goes out again; intervals that came
        # due meanwhile wait for the next report instead of riding along (and being duplicated too).
        cap = self._in_flight.get(request.request_id)
        if cap is not None and lo < cap:
            hi = min(hi, cap)
        streams = self._streams(request.specifier_id)
        wanted = sorted({streams[r] for r in request.r_ids if r in streams})
        oldest = await self.samples.oldest(wanted)
        lo_eff = max(lo, oldest) if oldest is not None else hi
        if lo_eff >= hi:
            samples: dict[str, dict[float, float]] = {}
        else:
            samples = await self.samples.window(wanted, lo_eff, hi, MAX_BATCH, request.granularity)
            # a stream cut by the limit is complete only up to its last fetched instant
            for values in samples.values():
                if len(values) >= MAX_BATCH:
                    hi = min(hi, max(values) + 1e-3)
        intervals, cursor = R.select(request, streams, samples, lo_eff, hi, MAX_BATCH)
        if intervals:
            self._in_flight[request.request_id] = hi
            await self._deliver(request, [OutInterval(_dt(i.instant), timedelta(seconds=request.granularity),
                                                      i.r_id, value=i.value) for i in intervals])
        self._in_flight.pop(request.request_id, None)
        self.table.cursors[request.request_id] = cursor
        self._uncommitted[request.request_id] = (cursor, request.specifier_id if request.kind == R.USAGE else None,
                                                 False)
        if request.final and cursor >= hi:
            self._end(request.request_id, cursor, "cancelled, last report sent")
        elif R.finished(request, cursor):
            self._end(request.request_id, cursor, "its reportInterval is over")
        await self._commit_pending()

    async def _send_status(self, request: R.ReportRequest, due: float) -> None:
        """TELEMETRY_STATUS: the status now, once per report time. A current fact, not history: a
        status report that cannot be delivered is not kept (the next one supersedes it)."""
        self.table.cursors[request.request_id] = due
        if request.final:
            self._end(request.request_id, due, "cancelled, last report sent")
        values = self.status()
        status = ResourceStatus(online=values.online, manual_override=values.manual_override,
                                level_offset=values.level)
        try:
            await self._deliver(request, [OutInterval(_dt(due), timedelta(seconds=request.back), self.status_r_id,
                                                      status=status)])
        except (ReportNotAcknowledged, *self.transport.errors) as exc:
            if isinstance(exc, self.transport.not_registered):
                raise
            log.debug("status report not delivered: %s", exc)
        await self._commit_pending()

    async def _deliver(self, request: R.ReportRequest, intervals: list[OutInterval]) -> None:
        t = self.transport
        first, last = intervals[0].dtstart, intervals[-1].dtstart
        report = OutReport(report_id=utils.generate_id(), report_request_id=request.request_id,
                           report_specifier_id=request.specifier_id, report_name=REPORT_NAMES[request.kind],
                           dtstart=first, duration=last - first + intervals[-1].duration,
                           created=datetime.now(timezone.utc), intervals=intervals)
        message = update_report(t.create_message, t.ven_id() or "", utils.generate_id(), [report])
        message_type, payload = await t.exchange("EiReport", message)
        code = _response_code(payload)
        if message_type == "oadrRequestReregistration" or code in (452, 463):
            raise t.not_registered(f"report refused: {message_type} {code}")
        if message_type != "oadrUpdatedReport" or code not in (None, 200):
            raise ReportNotAcknowledged(f"{message_type or 'empty reply'} {code}")
        self.reports_sent += 1
        self.last_delivery = datetime.now(timezone.utc)
        self.on_change()
        if request.kind != R.STATUS:
            line = self.delivery_log.delivered(time.monotonic(), len(intervals), first, last)
            if line is not None:
                log.info("%s (%s)", line, request.specifier_id)
            else:
                log.debug("report delivered: %s %d interval(s) %s .. %s", request.specifier_id, len(intervals),
                          first.isoformat(), last.isoformat())
        cancel = payload.get("cancel_report")
        if isinstance(cancel, dict):
            ids = cancel.get("report_request_id") or []
            self.cancel([ids] if isinstance(ids, str) else [str(i) for i in ids], bool(cancel.get("report_to_follow")))
            await self._save_table()


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def _iso(t: Optional[float]) -> str:
    return _dt(t).isoformat() if t is not None else ""

"""A VTN written from the OpenADR 2.0b schema (raw XML, aiohttp), not from openleadr's server.

Why: openleadr's ``OpenADRServer`` shares openleadr's reading of the specification (and its bugs)
with the gateway's client, so a test against it alone cannot show that the gateway speaks 2.0b. This
VTN builds its messages from plain XML templates checked against the oadr_20b.xsd that openleadr
ships, parses what it receives with lxml (never with openleadr), and validates every received
message against the same XSD.

API (stable: later changes are additive only; extend by subclassing)
--------------------------------------------------------------------
``SchemaVtn(host="127.0.0.1", port=None, vtn_id="SCHEMA-VTN", poll_freq=timedelta(seconds=1),
ven_id="schema-ven-1", registration_id="schema-reg-1")``

* ``await vtn.start()`` / ``await vtn.stop()``; ``vtn.url`` is the VEN's ``vtn_url``
  (``http://127.0.0.1:PORT/OpenADR2/Simple/2.0b``). ``port=None`` picks a free loopback port.
* ``vtn.received``: every message received, oldest first, as ``Received`` (service, name, body,
  tree, schema errors, time). ``vtn.messages(name)`` filters by message name;
  ``vtn.schema_errors()`` lists (name, error) for every received message that failed the XSD;
  ``vtn.assert_valid()`` raises AssertionError listing them (and any invalid message this VTN
  produced itself, which would be a bug in this file).
* Registration (EiRegisterParty): oadrQueryRegistration -> oadrCreatedPartyRegistration (vtnID,
  profiles, poll freq; venID/registrationID only once registered); oadrCreatePartyRegistration ->
  registered as ``vtn.ven_id`` / ``vtn.registration_id`` (``vtn.registrations`` keeps each request
  parsed: ven_name, ven_id, registration_id, transport_address, http_pull); oadrCancelPartyRegistration
  -> oadrCanceledPartyRegistration; oadrResponse -> empty 200. ``vtn.accept_registration = False``
  answers registrations with responseCode 452.
* Polling (OadrPoll): ``vtn.push(xml, expect_invalid=False)`` queues a full message (a string from
  one of the builders below, or any raw XML string; ``expect_invalid=True`` for a deliberately
  non-2.0b one) for the next oadrPoll; an empty queue answers oadrResponse 200.
* Builders (return full oadrPayload strings): ``distribute_event(*event_xml(...))``,
  ``create_report(*report_request_xml(...))``, ``cancel_report(request_ids, report_to_follow)``,
  ``request_reregistration()``, ``cancel_party_registration()``. Fragments: ``event_xml(...)``,
  ``report_request_xml(...)`` (module-level, pure).
* Events (EiEvent): ``vtn.events`` (event_id -> oadrEvent fragment) answers oadrRequestEvent with
  oadrDistributeEvent; oadrCreatedEvent is recorded in ``vtn.event_responses`` (event_id,
  modification_number, opt_type, response_code) and answered oadrResponse 200.
* Reports (EiReport): oadrRegisterReport -> ``vtn.offered`` (``OfferedReport`` per metadata report)
  and oadrRegisteredReport carrying ``vtn.on_register_report(offered)`` report requests (a callable
  returning ``report_request_xml`` fragments; default: none); oadrUpdateReport -> each report parsed
  into ``vtn.reports`` (``ParsedReport``), answered oadrUpdatedReport 200 (carrying an
  oadrCancelReport once when ``vtn.cancel_in_next_ack = ([ids], report_to_follow)``); oadrCreatedReport ->
  ``vtn.created_reports`` (``AckedReport``: response code, description, pending reportRequestIDs),
  oadrCanceledReport -> ``vtn.canceled_reports``; both answered oadrResponse 200.
* Opts (EiOpt): oadrCreateOpt -> ``vtn.opts`` (``ParsedOpt``) and oadrCreatedOpt; oadrCancelOpt ->
  ``vtn.opt_cancels`` (optID) and oadrCanceledOpt.
* Faults: ``vtn.fail(name, status=500, times=1)`` answers the next ``times`` messages named
  ``name`` with that HTTP status without handling them; ``vtn.delay(name, seconds, times=1)`` handles
  (and records) the next ones, then waits ``seconds`` before answering (longer than the VEN's
  request_timeout = the answer is lost after the VTN took the message).
* ``await vtn.wait_until(predicate, timeout, what)`` polls ``predicate()``; raises AssertionError.
* Subclass hooks: ``handle_<messageName>(self, received) -> Optional[str]`` (reply body; None = empty
  200) for any message; unknown names answer HTTP 400.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional, Sequence
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

log = logging.getLogger("tests.schema_vtn")

NS = {
    "oadr": "http://openadr.org/oadr-2.0b/2012/07",
    "ei": "http://docs.oasis-open.org/ns/energyinterop/201110",
    "pyld": "http://docs.oasis-open.org/ns/energyinterop/201110/payloads",
    "emix": "http://docs.oasis-open.org/ns/emix/2011/06",
    "xcal": "urn:ietf:params:xml:ns:icalendar-2.0",
    "strm": "urn:ietf:params:xml:ns:icalendar-2.0:stream",
    "power": "http://docs.oasis-open.org/ns/emix/2011/06/power",
    "scale": "http://docs.oasis-open.org/ns/emix/2011/06/siscale",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
_XMLNS = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items())


def _schema_path() -> str:
    import openleadr

    return os.path.join(os.path.dirname(openleadr.__file__), "schema", "oadr_20b.xsd")


_SCHEMA: Optional[etree.XMLSchema] = None


def schema() -> etree.XMLSchema:
    """The oadr_20b.xsd openleadr ships (loaded once)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = etree.XMLSchema(etree.parse(_schema_path()))
    return _SCHEMA


def validate(body: bytes | str) -> list[str]:
    """Schema errors of one message ([] when valid). A DTD or an unparsable body is an error too."""
    data = body.encode() if isinstance(body, str) else body
    try:
        tree = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        return [f"not XML: {exc}"]
    xsd = schema()
    if xsd.validate(tree):
        return []
    return [f"line {e.line}: {e.message}" for e in xsd.error_log]


# ---------------------------------------------------------------------------------------------
# ISO 8601 values as xcal uses them


_DURATION = re.compile(r"^(-)?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"not an xcal duration: {text!r}")
    sign, weeks, days, hours, minutes, seconds = m.groups()
    value = timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                      minutes=int(minutes or 0), seconds=float(seconds or 0))
    return -value if sign else value


def format_duration(value: timedelta) -> str:
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"{sign}P" + (f"{int(days)}D" if days else "") + "T"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    if seconds or out.endswith("T"):
        out += f"{seconds:g}S"
    return out


def parse_datetime(text: str) -> datetime:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def format_datetime(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------
# What the VTN records


@dataclass
class Received:
    service: str  # EiRegisterParty, OadrPoll, EiEvent, EiReport, EiOpt
    name: str  # message name, e.g. oadrUpdateReport ('' when the body was not a message)
    body: bytes
    tree: Optional[Any]  # the oadrSignedObject's message element (lxml), None when unparsable
    errors: list[str]  # XSD errors, [] when valid
    at: float = field(default_factory=time.time)

    def text(self, path: str) -> Optional[str]:
        """Text of the first element at ``path`` (XPath with the NS prefixes) below the message."""
        if self.tree is None:
            return None
        found = self.tree.xpath(path, namespaces=NS)
        if not found:
            return None
        item = found[0]
        return (item if isinstance(item, str) else item.text or "").strip()


@dataclass
class ReportValue:
    dtstart: Optional[datetime]
    duration: Optional[timedelta]
    uid: Optional[str]
    r_id: str
    value: Optional[float]  # ei:payloadFloat
    status: Optional[dict[str, Any]]  # oadrPayloadResourceStatus: online, manual_override, load_control


@dataclass
class ParsedReport:
    report_id: str  # ei:eiReportID
    report_request_id: str
    report_specifier_id: str
    report_name: Optional[str]
    created: Optional[datetime]
    dtstart: Optional[datetime]
    duration: Optional[timedelta]
    intervals: list[ReportValue]
    at: float  # when the VTN received it (epoch seconds)
    message_bytes: int  # size of the oadrUpdateReport that carried it


@dataclass
class OfferedReport:
    report_specifier_id: str
    report_name: str
    r_ids: dict[str, dict[str, Any]]  # rID -> report_type, reading_type, resource_id, min/max period


@dataclass
class AckedReport:
    response_code: Optional[int]
    response_description: Optional[str]
    pending: list[str]  # reportRequestIDs in oadrPendingReports (oadrCreatedReport) / pending list
    report_request_id: Optional[str] = None  # oadrCanceledReport: none in the schema; kept for symmetry
    at: float = field(default_factory=time.time)


@dataclass
class ParsedOpt:
    opt_id: str
    opt_type: str
    opt_reason: str
    event_id: Optional[str]
    modification_number: Optional[int]
    ven_id: Optional[str]
    at: float = field(default_factory=time.time)


# ---------------------------------------------------------------------------------------------
# Templates (pure)

_ids = itertools.count(1)


def new_id(prefix: str = "id") -> str:
    return f"{prefix}-{next(_ids)}"


def payload(message: str) -> str:
    """Wrap one message element in oadrPayload/oadrSignedObject (unsigned)."""
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<oadr:oadrPayload {_XMLNS}>'
            f'<oadr:oadrSignedObject oadr:Id="signedObject">{message}</oadr:oadrSignedObject></oadr:oadrPayload>')


def _response(code: int = 200, description: str = "OK", request_id: Optional[str] = None) -> str:
    rid = f"<pyld:requestID>{escape(request_id)}</pyld:requestID>" if request_id else "<pyld:requestID/>"
    return (f"<ei:eiResponse><ei:responseCode>{code}</ei:responseCode>"
            f"<ei:responseDescription>{escape(description)}</ei:responseDescription>{rid}</ei:eiResponse>")


def _properties(dtstart: datetime, duration: timedelta) -> str:
    return (f"<xcal:properties><xcal:dtstart><xcal:date-time>{format_datetime(dtstart)}</xcal:date-time>"
            f"</xcal:dtstart><xcal:duration><xcal:duration>{format_duration(duration)}</xcal:duration>"
            f"</xcal:duration></xcal:properties>")


def _target(targets: Optional[dict[str, Sequence[str]]]) -> str:
    """ei:eiTarget in schema order (groupID, groupName, resourceID, venID, partyID)."""
    if not targets:
        return "<ei:eiTarget/>"
    inner = ""
    for key, tag in (("group_id", "groupID"), ("group_name", "groupName"), ("resource_id", "resourceID"),
                     ("ven_id", "venID"), ("party_id", "partyID")):
        inner += "".join(f"<ei:{tag}>{escape(v)}</ei:{tag}>" for v in targets.get(key, ()))
    return f"<ei:eiTarget>{inner}</ei:eiTarget>"


@dataclass
class Signal:
    """One eiEventSignal: levels are consecutive intervals of ``interval`` length from the event start."""

    levels: Sequence[float]
    interval: timedelta
    signal_name: str = "SIMPLE"
    signal_type: str = "level"
    signal_id: Optional[str] = None
    current_value: Optional[float] = 0.0


def event_xml(event_id: str, start: datetime, signals: Sequence[Signal], *, modification_number: int = 0,
              status: str = "far", priority: Optional[int] = 0, test_event: Optional[bool] = None,
              market_context: str = "http://schema-vtn.example/market",
              targets: Optional[dict[str, Sequence[str]]] = None, response_required: str = "always",
              created: Optional[datetime] = None, duration: Optional[timedelta] = None) -> str:
    """An oadr:oadrEvent fragment. ``targets``: keys group_id, group_name, resource_id, ven_id,
    party_id, each a list of values; None or {} gives an empty eiTarget (every VEN)."""
    if duration is None:
        duration = max((s.interval * len(s.levels) for s in signals), default=timedelta(0))
    created = created or datetime.now(timezone.utc)
    desc = (f"<ei:eventDescriptor><ei:eventID>{escape(event_id)}</ei:eventID>"
            f"<ei:modificationNumber>{modification_number}</ei:modificationNumber>"
            + (f"<ei:priority>{priority}</ei:priority>" if priority is not None else "")
            + f"<ei:eiMarketContext><emix:marketContext>{escape(market_context)}</emix:marketContext>"
            f"</ei:eiMarketContext><ei:createdDateTime>{format_datetime(created)}</ei:createdDateTime>"
            f"<ei:eventStatus>{status}</ei:eventStatus>"
            + (f"<ei:testEvent>{'true' if test_event else 'false'}</ei:testEvent>" if test_event is not None else "")
            + "</ei:eventDescriptor>")
    active = f"<ei:eiActivePeriod>{_properties(start, duration)}<xcal:components xsi:nil=\"true\"/></ei:eiActivePeriod>"
    sigs = ""
    for signal in signals:
        intervals = "".join(
            f"<ei:interval><xcal:duration><xcal:duration>{format_duration(signal.interval)}</xcal:duration>"
            f"</xcal:duration><xcal:uid><xcal:text>{n}</xcal:text></xcal:uid><ei:signalPayload><ei:payloadFloat>"
            f"<ei:value>{float(level)!r}</ei:value></ei:payloadFloat></ei:signalPayload></ei:interval>"
            for n, level in enumerate(signal.levels))
        current = (f"<ei:currentValue><ei:payloadFloat><ei:value>{float(signal.current_value)!r}</ei:value>"
                   f"</ei:payloadFloat></ei:currentValue>" if signal.current_value is not None else "")
        sigs += (f"<ei:eiEventSignal><strm:intervals>{intervals}</strm:intervals>"
                 f"<ei:signalName>{escape(signal.signal_name)}</ei:signalName>"
                 f"<ei:signalType>{escape(signal.signal_type)}</ei:signalType>"
                 f"<ei:signalID>{escape(signal.signal_id or new_id('signal'))}</ei:signalID>{current}"
                 f"</ei:eiEventSignal>")
    return (f"<oadr:oadrEvent><ei:eiEvent>{desc}{active}<ei:eiEventSignals>{sigs}</ei:eiEventSignals>"
            f"{_target(targets)}</ei:eiEvent><oadr:oadrResponseRequired>{response_required}"
            f"</oadr:oadrResponseRequired></oadr:oadrEvent>")


def report_request_xml(report_request_id: str, report_specifier_id: str, r_ids: Iterable[str],
                       granularity: timedelta, report_back_duration: timedelta,
                       report_interval: Optional[tuple[datetime, timedelta]] = None,
                       reading_type: str = "x-notApplicable") -> str:
    """An oadr:oadrReportRequest fragment (for oadrCreateReport or oadrRegisteredReport)."""
    interval = (f"<ei:reportInterval>{_properties(*report_interval)}</ei:reportInterval>"
                if report_interval is not None else "")
    payloads = "".join(f"<ei:specifierPayload><ei:rID>{escape(r)}</ei:rID>"
                       f"<ei:readingType>{escape(reading_type)}</ei:readingType></ei:specifierPayload>"
                       for r in r_ids)
    return (f"<oadr:oadrReportRequest><ei:reportRequestID>{escape(report_request_id)}</ei:reportRequestID>"
            f"<ei:reportSpecifier><ei:reportSpecifierID>{escape(report_specifier_id)}</ei:reportSpecifierID>"
            f"<xcal:granularity><xcal:duration>{format_duration(granularity)}</xcal:duration></xcal:granularity>"
            f"<ei:reportBackDuration><xcal:duration>{format_duration(report_back_duration)}</xcal:duration>"
            f"</ei:reportBackDuration>{interval}{payloads}</ei:reportSpecifier></oadr:oadrReportRequest>")


# ---------------------------------------------------------------------------------------------
# Parsing (lxml, never openleadr)


def _float(text: Optional[str]) -> Optional[float]:
    return float(text) if text not in (None, "") else None


def _bool(text: Optional[str]) -> Optional[bool]:
    return None if text is None else text.strip() in ("true", "1")


def _first(node: Any, path: str) -> Optional[str]:
    found = node.xpath(path, namespaces=NS)
    if not found:
        return None
    item = found[0]
    return (item if isinstance(item, str) else item.text or "").strip()


def parse_report_value(interval: Any) -> list[ReportValue]:
    dtstart = _first(interval, "xcal:dtstart/xcal:date-time")
    duration = _first(interval, "xcal:duration/xcal:duration")
    uid = _first(interval, "xcal:uid/xcal:text")
    out = []
    for rp in interval.xpath("oadr:oadrReportPayload", namespaces=NS):
        status = None
        rs = rp.xpath("oadr:oadrPayloadResourceStatus", namespaces=NS)
        if rs:
            lcs: dict[str, dict[str, Optional[float]]] = {}
            for kind in rs[0].xpath("oadr:oadrLoadControlState/*", namespaces=NS):
                lcs[etree.QName(kind).localname] = {etree.QName(v).localname: _float(v.text) for v in kind}
            status = {"online": _bool(_first(rs[0], "oadr:oadrOnline")),
                      "manual_override": _bool(_first(rs[0], "oadr:oadrManualOverride")),
                      "load_control": lcs or None}
        out.append(ReportValue(
            dtstart=parse_datetime(dtstart) if dtstart else None,
            duration=parse_duration(duration) if duration else None, uid=uid,
            r_id=_first(rp, "ei:rID") or "", value=_float(_first(rp, "ei:payloadFloat/ei:value")), status=status))
    return out


def parse_reports(message: Any, at: float, size: int) -> list[ParsedReport]:
    reports = []
    for report in message.xpath("oadr:oadrReport", namespaces=NS):
        dtstart = _first(report, "xcal:dtstart/xcal:date-time")
        duration = _first(report, "xcal:duration/xcal:duration")
        created = _first(report, "ei:createdDateTime")
        intervals = [v for i in report.xpath("strm:intervals/ei:interval", namespaces=NS)
                     for v in parse_report_value(i)]
        reports.append(ParsedReport(
            report_id=_first(report, "ei:eiReportID") or "",
            report_request_id=_first(report, "ei:reportRequestID") or "",
            report_specifier_id=_first(report, "ei:reportSpecifierID") or "",
            report_name=_first(report, "ei:reportName"), created=parse_datetime(created) if created else None,
            dtstart=parse_datetime(dtstart) if dtstart else None,
            duration=parse_duration(duration) if duration else None, intervals=intervals, at=at,
            message_bytes=size))
    return reports


def parse_offered(message: Any) -> list[OfferedReport]:
    offered = []
    for report in message.xpath("oadr:oadrReport", namespaces=NS):
        r_ids: dict[str, dict[str, Any]] = {}
        for d in report.xpath("oadr:oadrReportDescription", namespaces=NS):
            r_ids[_first(d, "ei:rID") or ""] = {
                "report_type": _first(d, "ei:reportType"), "reading_type": _first(d, "ei:readingType"),
                "resource_id": _first(d, "ei:reportDataSource/ei:resourceID"),
                "min_period": _first(d, "oadr:oadrSamplingRate/oadr:oadrMinPeriod"),
                "max_period": _first(d, "oadr:oadrSamplingRate/oadr:oadrMaxPeriod")}
        offered.append(OfferedReport(_first(report, "ei:reportSpecifierID") or "",
                                     _first(report, "ei:reportName") or "", r_ids))
    return offered


def _ack(message: Any) -> AckedReport:
    code = _first(message, "ei:eiResponse/ei:responseCode")
    return AckedReport(
        response_code=int(code) if code and code.isdigit() else None,
        response_description=_first(message, "ei:eiResponse/ei:responseDescription"),
        pending=[p.text.strip() for p in message.xpath("oadr:oadrPendingReports/ei:reportRequestID",
                                                        namespaces=NS) if p.text])


# ---------------------------------------------------------------------------------------------
# The VTN


class SchemaVtn:
    """OpenADR 2.0b VTN (simple HTTP pull) from raw XML; see the module docstring for the API."""

    SERVICES = ("EiRegisterParty", "OadrPoll", "EiEvent", "EiReport", "EiOpt")

    def __init__(self, host: str = "127.0.0.1", port: Optional[int] = None, vtn_id: str = "SCHEMA-VTN",
                 poll_freq: timedelta = timedelta(seconds=1), ven_id: str = "schema-ven-1",
                 registration_id: str = "schema-reg-1") -> None:
        from adrgw.demo.embedded import free_port

        self.host = host
        self.port = port or free_port()
        self.vtn_id = vtn_id
        self.poll_freq = poll_freq
        self.assigned_ven_id = ven_id
        self.assigned_registration_id = registration_id
        self.ven_id: Optional[str] = None  # set once a VEN registered
        self.registration_id: Optional[str] = None
        self.accept_registration = True
        self.received: list[Received] = []
        self.own_errors: list[tuple[str, str]] = []  # invalid messages this VTN produced (a bug here)
        self.registrations: list[dict[str, Any]] = []
        self.queue: list[str] = []
        self.events: dict[str, str] = {}
        self.event_responses: list[tuple[str, int, str, int]] = []
        self.offered: list[OfferedReport] = []
        self.on_register_report: Callable[[list[OfferedReport]], list[str]] = lambda offered: []
        self.reports: list[ParsedReport] = []
        self.created_reports: list[AckedReport] = []
        self.canceled_reports: list[AckedReport] = []
        self.opts: list[ParsedOpt] = []
        self.opt_cancels: list[str] = []
        self._faults: dict[str, list[tuple[str, float]]] = {}
        self._invalid_ok: list[str] = []
        # (reportRequestIDs, reportToFollow): an oadrCancelReport inside the next oadrUpdatedReport
        self.cancel_in_next_ack: Optional[tuple[list[str], bool]] = None
        self._runner: Optional[web.AppRunner] = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/OpenADR2/Simple/2.0b"

    async def start(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        for service in self.SERVICES:
            app.router.add_post(f"/OpenADR2/Simple/2.0b/{service}", self._endpoint(service))
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("schema VTN listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- recording and assertions ---------------------------------------------------------------

    def messages(self, name: str) -> list[Received]:
        return [r for r in self.received if r.name == name]

    def schema_errors(self) -> list[tuple[str, str]]:
        return [(r.name or r.service, e) for r in self.received for e in r.errors]

    def assert_valid(self) -> None:
        problems = self.schema_errors() + [(f"(schema VTN's own) {n}", e) for n, e in self.own_errors]
        assert not problems, f"{len(problems)} schema error(s): {problems[:10]}"

    async def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"schema VTN: timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.05)

    # -- faults ---------------------------------------------------------------------------------

    def fail(self, name: str, status: int = 500, times: int = 1) -> None:
        self._faults.setdefault(name, []).extend([("fail", float(status))] * times)

    def delay(self, name: str, seconds: float, times: int = 1) -> None:
        self._faults.setdefault(name, []).extend([("delay", seconds)] * times)

    # -- builders (full messages for push) --------------------------------------------------------

    def distribute_event(self, *events: str, request_id: Optional[str] = None) -> str:
        return payload(f'<oadr:oadrDistributeEvent ei:schemaVersion="2.0b">'
                       f"<pyld:requestID>{escape(request_id or new_id('dist'))}</pyld:requestID>"
                       f"<ei:vtnID>{escape(self.vtn_id)}</ei:vtnID>{''.join(events)}</oadr:oadrDistributeEvent>")

    def create_report(self, *report_requests: str, request_id: Optional[str] = None) -> str:
        return payload(f'<oadr:oadrCreateReport ei:schemaVersion="2.0b">'
                       f"<pyld:requestID>{escape(request_id or new_id('create'))}</pyld:requestID>"
                       f"{''.join(report_requests)}<ei:venID>{escape(self.ven_id or '')}</ei:venID>"
                       f"</oadr:oadrCreateReport>")

    def cancel_report(self, report_request_ids: Sequence[str] | str, report_to_follow: bool,
                      request_id: Optional[str] = None) -> str:
        ids = [report_request_ids] if isinstance(report_request_ids, str) else list(report_request_ids)
        return payload(f'<oadr:oadrCancelReport ei:schemaVersion="2.0b">'
                       f"<pyld:requestID>{escape(request_id or new_id('cancel'))}</pyld:requestID>"
                       + "".join(f"<ei:reportRequestID>{escape(i)}</ei:reportRequestID>" for i in ids)
                       + f"<pyld:reportToFollow>{'true' if report_to_follow else 'false'}</pyld:reportToFollow>"
                       f"<ei:venID>{escape(self.ven_id or '')}</ei:venID></oadr:oadrCancelReport>")

    def request_reregistration(self) -> str:
        return payload(f'<oadr:oadrRequestReregistration ei:schemaVersion="2.0b">'
                       f"<ei:venID>{escape(self.ven_id or '')}</ei:venID></oadr:oadrRequestReregistration>")

    def cancel_party_registration(self, request_id: Optional[str] = None) -> str:
        return payload(f'<oadr:oadrCancelPartyRegistration ei:schemaVersion="2.0b">'
                       f"<pyld:requestID>{escape(request_id or new_id('cpr'))}</pyld:requestID>"
                       f"<ei:registrationID>{escape(self.registration_id or '')}</ei:registrationID>"
                       f"<ei:venID>{escape(self.ven_id or '')}</ei:venID></oadr:oadrCancelPartyRegistration>")

    def push(self, message: str, expect_invalid: bool = False) -> None:
        """Queue a full message (builder output or raw XML) for the VEN's next oadrPoll.
        ``expect_invalid``: a deliberately non-2.0b message (hostile-input tests); it is not counted
        as this VTN's own schema error."""
        self.queue.append(message)
        if expect_invalid:
            self._invalid_ok.append(message)

    def _response_message(self, code: int = 200, description: str = "OK",
                          request_id: Optional[str] = None) -> str:
        return payload(f'<oadr:oadrResponse ei:schemaVersion="2.0b">{_response(code, description, request_id)}'
                       f"<ei:venID>{escape(self.ven_id or '')}</ei:venID></oadr:oadrResponse>")

    # -- transport ------------------------------------------------------------------------------

    def _endpoint(self, service: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            received = self._record(service, body)
            faults = self._faults.get(received.name) or []
            fault = faults.pop(0) if faults else None
            if fault is not None and fault[0] == "fail":
                return web.Response(status=int(fault[1]), text="injected failure")
            handler = getattr(self, f"handle_{received.name}", None)
            if handler is None:
                return web.Response(status=400, text=f"unexpected message {received.name!r} on {service}")
            reply = handler(received)
            if fault is not None and fault[0] == "delay":
                await asyncio.sleep(fault[1])
            if reply is None:
                return web.Response(status=200)
            errors = [] if reply in self._invalid_ok else validate(reply)
            if errors:
                self.own_errors.extend((received.name, e) for e in errors)
            return web.Response(status=200, body=reply.encode(), content_type="application/xml")

        return handle

    def _record(self, service: str, body: bytes) -> Received:
        errors = validate(body)
        tree = name = None
        try:
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
            found = root.xpath("oadr:oadrSignedObject/*", namespaces=NS)
            if found:
                tree = found[0]
                name = etree.QName(tree).localname
        except etree.XMLSyntaxError:
            pass
        received = Received(service, name or "", body, tree, errors)
        if errors:
            log.error("schema VTN: %s failed the XSD: %s", received.name or service, errors[:3])
        self.received.append(received)
        return received

    # -- EiRegisterParty -----------------------------------------------------------------------

    def _created_party_registration(self, request_id: Optional[str], code: int = 200,
                                    description: str = "OK") -> str:
        ids = ""
        if self.registration_id and code == 200:
            ids = (f"<ei:registrationID>{escape(self.registration_id)}</ei:registrationID>"
                   f"<ei:venID>{escape(self.ven_id or '')}</ei:venID>")
        return payload(
            f'<oadr:oadrCreatedPartyRegistration ei:schemaVersion="2.0b">{_response(code, description, request_id)}'
            f"{ids}<ei:vtnID>{escape(self.vtn_id)}</ei:vtnID><oadr:oadrProfiles><oadr:oadrProfile>"
            f"<oadr:oadrProfileName>2.0b</oadr:oadrProfileName><oadr:oadrTransports><oadr:oadrTransport>"
            f"<oadr:oadrTransportName>simpleHttp</oadr:oadrTransportName></oadr:oadrTransport>"
            f"</oadr:oadrTransports></oadr:oadrProfile></oadr:oadrProfiles><oadr:oadrRequestedOadrPollFreq>"
            f"<xcal:duration>{format_duration(self.poll_freq)}</xcal:duration></oadr:oadrRequestedOadrPollFreq>"
            f"</oadr:oadrCreatedPartyRegistration>")

    def handle_oadrQueryRegistration(self, r: Received) -> Optional[str]:
        return self._created_party_registration(r.text("pyld:requestID"))

    def handle_oadrCreatePartyRegistration(self, r: Received) -> Optional[str]:
        self.registrations.append({
            "ven_name": r.text("oadr:oadrVenName"), "ven_id": r.text("ei:venID"),
            "registration_id": r.text("ei:registrationID"),
            "transport_address": r.text("oadr:oadrTransportAddress"),
            "http_pull": _bool(r.text("oadr:oadrHttpPullModel")), "at": r.at})
        if not self.accept_registration:
            return self._created_party_registration(r.text("pyld:requestID"), 452, "registration refused")
        self.ven_id, self.registration_id = self.assigned_ven_id, self.assigned_registration_id
        return self._created_party_registration(r.text("pyld:requestID"))

    def handle_oadrCancelPartyRegistration(self, r: Received) -> Optional[str]:
        reply = payload(
            f'<oadr:oadrCanceledPartyRegistration ei:schemaVersion="2.0b">'
            f"{_response(200, 'OK', r.text('pyld:requestID'))}"
            f"<ei:registrationID>{escape(r.text('ei:registrationID') or '')}</ei:registrationID>"
            f"<ei:venID>{escape(r.text('ei:venID') or '')}</ei:venID></oadr:oadrCanceledPartyRegistration>")
        self.ven_id = self.registration_id = None
        return reply

    def handle_oadrCanceledPartyRegistration(self, r: Received) -> Optional[str]:
        return None

    def handle_oadrResponse(self, r: Received) -> Optional[str]:
        return None

    # -- OadrPoll -------------------------------------------------------------------------------

    def handle_oadrPoll(self, r: Received) -> Optional[str]:
        if self.queue:
            return self.queue.pop(0)
        return self._response_message()

    # -- EiEvent --------------------------------------------------------------------------------

    def handle_oadrRequestEvent(self, r: Received) -> Optional[str]:
        return self.distribute_event(*self.events.values())

    def handle_oadrCreatedEvent(self, r: Received) -> Optional[str]:
        assert r.tree is not None
        # eiCreatedEvent is in the payloads (pyld) namespace in 2.0b
        for resp in r.tree.xpath("pyld:eiCreatedEvent/ei:eventResponses/ei:eventResponse", namespaces=NS):
            code = _first(resp, "ei:responseCode")
            mod = _first(resp, "ei:qualifiedEventID/ei:modificationNumber")
            self.event_responses.append((_first(resp, "ei:qualifiedEventID/ei:eventID") or "",
                                         int(mod) if mod and mod.isdigit() else -1,
                                         _first(resp, "ei:optType") or "",
                                         int(code) if code and code.isdigit() else -1))
        return self._response_message(request_id=r.text("pyld:eiCreatedEvent/ei:eiResponse/pyld:requestID"))

    # -- EiReport -------------------------------------------------------------------------------

    def handle_oadrRegisterReport(self, r: Received) -> Optional[str]:
        assert r.tree is not None
        self.offered = parse_offered(r.tree)
        requests = "".join(self.on_register_report(self.offered))
        return payload(f'<oadr:oadrRegisteredReport ei:schemaVersion="2.0b">'
                       f"{_response(200, 'OK', r.text('pyld:requestID'))}{requests}"
                       f"<ei:venID>{escape(self.ven_id or '')}</ei:venID></oadr:oadrRegisteredReport>")

    def handle_oadrUpdateReport(self, r: Received) -> Optional[str]:
        assert r.tree is not None
        self.reports.extend(parse_reports(r.tree, r.at, len(r.body)))
        cancel = ""
        if self.cancel_in_next_ack is not None:
            ids, follow = self.cancel_in_next_ack
            self.cancel_in_next_ack = None
            cancel = (f"<oadr:oadrCancelReport><pyld:requestID>{new_id('ackcancel')}</pyld:requestID>"
                      + "".join(f"<ei:reportRequestID>{escape(i)}</ei:reportRequestID>" for i in ids)
                      + f"<pyld:reportToFollow>{'true' if follow else 'false'}</pyld:reportToFollow>"
                      f"<ei:venID>{escape(self.ven_id or '')}</ei:venID></oadr:oadrCancelReport>")
        return payload(f'<oadr:oadrUpdatedReport ei:schemaVersion="2.0b">'
                       f"{_response(200, 'OK', r.text('pyld:requestID'))}{cancel}"
                       f"<ei:venID>{escape(self.ven_id or '')}</ei:venID></oadr:oadrUpdatedReport>")

    def handle_oadrCreatedReport(self, r: Received) -> Optional[str]:
        assert r.tree is not None
        self.created_reports.append(_ack(r.tree))
        return self._response_message(request_id=r.text("ei:eiResponse/pyld:requestID"))

    def handle_oadrCanceledReport(self, r: Received) -> Optional[str]:
        assert r.tree is not None
        self.canceled_reports.append(_ack(r.tree))
        return self._response_message(request_id=r.text("ei:eiResponse/pyld:requestID"))

    # -- EiOpt ----------------------------------------------------------------------------------

    def handle_oadrCreateOpt(self, r: Received) -> Optional[str]:
        mod = r.text("ei:qualifiedEventID/ei:modificationNumber")
        opt_id = r.text("ei:optID") or ""
        self.opts.append(ParsedOpt(opt_id, r.text("ei:optType") or "", r.text("ei:optReason") or "",
                                   r.text("ei:qualifiedEventID/ei:eventID"),
                                   int(mod) if mod and mod.isdigit() else None, r.text("ei:venID")))
        return payload(f'<oadr:oadrCreatedOpt ei:schemaVersion="2.0b">'
                       f"{_response(200, 'OK', r.text('pyld:requestID'))}"
                       f"<ei:optID>{escape(opt_id)}</ei:optID></oadr:oadrCreatedOpt>")

    def handle_oadrCancelOpt(self, r: Received) -> Optional[str]:
        opt_id = r.text("ei:optID") or ""
        self.opt_cancels.append(opt_id)
        return payload(f'<oadr:oadrCanceledOpt ei:schemaVersion="2.0b">'
                       f"{_response(200, 'OK', r.text('pyld:requestID'))}"
                       f"<ei:optID>{escape(opt_id)}</ei:optID></oadr:oadrCanceledOpt>")

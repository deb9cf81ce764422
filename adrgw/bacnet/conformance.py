"""What the gateway's BACnet device claims, and that it answers every request: the one place for the
bacpypes3 0.0.110 / BAC0 2026.7.25 conformance workarounds (issue 13). Each is named and pinned by a
test in tests/test_conformance.py:

* ``SERVED_CONFIRMED`` / ``SERVED_UNCONFIRMED`` / ``services_supported``: bacpypes3's
  ``Application.get_services_supported`` maps unconfirmed service choices through the *confirmed*
  service table (Who-Is 8 becomes AddListElement, I-Am 0 AcknowledgeAlarm...) and claims every
  service it has a ``do_`` helper for (ReadRange, which fails). Protocol-services-supported is built
  from these two tables instead, and the ``RequestGate`` refuses everything else, so the bits and
  the behaviour cannot disagree.
* ``RequestGate``: measured without it, bacpypes3 0.0.110 leaves ConfirmedTextMessage (19),
  SubscribeCOVPropertyMultiple (41) and undefined service choices (45) unanswered (its decoder fails
  before a Reject can be built) and answers ReadRange with operational-problem after logging a
  NotImplementedError. The gate sits on the application service access point and answers every
  confirmed request outside ``SERVED_CONFIRMED`` with Reject(unrecognized-service). It also
  applies DeviceCommunicationControl (``devmgmt.CommunicationControl``): bacpypes3's own DCC filter
  keeps answering Who-Is/Who-Has while disabled. And it answers a confirmed request that cannot be
  decoded with Reject: bacpypes3's ``ServerSSM.request`` sends its Abort for such a request up to the
  application instead of to the client, so a truncated request was never answered.
* ``GatewayApplication.do_ReadPropertyMultipleRequest``: bacpypes3 leaves property-list out of
  ReadPropertyMultiple ALL and REQUIRED, and takes REQUIRED/OPTIONAL from its own ``_required``
  tables, which lack what ASHRAE 135 requires of a BACnet/IP network port (network-number,
  mac-address, ip-address...) and of a device executing time synchronization and COV. ALL, REQUIRED
  and OPTIONAL are expanded here from ``REQUIRED_BY_TYPE`` and ``CONDITIONALLY_REQUIRED`` (the
  standard's tables) and the object's property-list, so the three always agree.
* ``GatewayApplication.do_WritePropertyRequest`` / ``do_WritePropertyMultipleRequest``: bacpypes3
  answers a well-formed value of the wrong datatype with Reject(invalid-tag) (its decoder raises
  ``InvalidTag``); ASHRAE 135 wants Error(property, invalid-data-type) on a writable property
  (write-access-denied on any other), and keeps Reject for a malformed value (``well_formed``). It
  also answered a write to a property the object does not have with operational-problem, and raised
  instead of sending the WritePropertyMultiple-Error (a ``BaseException``: never answered, a
  traceback in the log).
* ``GatewayApplication.indication``: bacpypes3 logs any exception in a service helper at ERROR with
  a traceback; a client's bad request is logged here as one rate-limited INFO line.
* ``GatewayDeviceObject``: bacpypes3's device returns an empty protocol-object-types-supported and an
  always-empty active-cov-subscriptions (it asks the application for a method that does not exist),
  has no utc-offset, and its local-date/local-time ignore TimeSynchronization (they read the host's
  clock); here they come from the device's clock (``devmgmt.DeviceClock``), which the
  synchronizations set.
* ``StandardPropertyList``: bacpypes3's property-list includes object-identifier, object-name,
  object-type and property-list, which ASHRAE 135 12.1.1.4.1 excludes.
* ``TransactionTiming``: bacpypes3's client transactions take their APDU timeout and retries from
  the device object, so bounding meter reads (a dead meter must not hold the sampler) changed what the device
  advertises and how long its confirmed COV notifications wait. The state machines now read a view
  that gives meter-read timing only to requests started inside ``client_bound()``.
* ``conform_network_port``: BAC0's NetworkPort has an empty fd-bbmd-address that fails every read of
  it (ReadPropertyMultiple ALL answered operational-problem) and lacks network-number, mac-address and
  apdu-length.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Optional

from bacpypes3.apdu import (
    ConfirmedRequestPDU,
    Error,
    RejectPDU,
    RejectReason,
    SimpleAckPDU,
    WritePropertyMultipleError,
)
from bacpypes3.app import Application
from bacpypes3.basetypes import (
    COVSubscription,
    DeviceAddress,
    ListOfCOVSubscription,
    ObjectPropertyReference,
    ObjectTypesSupported,
    Recipient,
    RecipientProcess,
    ServicesSupported,
)
from bacpypes3.constructeddata import Array, ArrayOf
from bacpypes3.errors import AbortException, ExecutionError, InvalidTag, ParameterOutOfRange, RejectException
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Boolean, Date, Integer, Time, Unsigned

from adrgw import __version__
from adrgw.bacnet import devmgmt
from adrgw.core.ratelog import RateLimitedLog

log = logging.getLogger("adrgw.bacnet")

# Confirmed services the device executes: choice -> name in ServicesSupported (ASHRAE 135 21).
SERVED_CONFIRMED: dict[int, str] = {
    5: "subscribe-cov",
    12: "read-property",
    14: "read-property-multiple",
    15: "write-property",
    16: "write-property-multiple",
    17: "device-communication-control",
    20: "reinitialize-device",
}
# Unconfirmed services the device executes. I-Am is processed too (binding the meter's address) but
# as a client-side service; it is not claimed.
SERVED_UNCONFIRMED: dict[int, str] = {
    6: "time-synchronization",
    7: "who-has",
    8: "who-is",
    9: "utc-time-synchronization",
}
# ASHRAE 135 12.1.1.4.1: property-list lists every property except these four.
NOT_IN_PROPERTY_LIST = frozenset({"objectIdentifier", "objectName", "objectType", "propertyList"})

APDU_CONFIRMED_REQUEST, APDU_UNCONFIRMED_REQUEST = 0, 1

# -- what ReadPropertyMultiple REQUIRED and OPTIONAL mean ------------------------------------------

# ASHRAE 135-2020 (protocol revision 22, the revision the device reports), clause 12: the properties
# with conformance code R or W in the property table of each object type the device holds.
# ReadPropertyMultiple (ASHRAE 135 15.7) REQUIRED returns these, OPTIONAL every other property present.
REQUIRED_BY_TYPE: dict[str, frozenset[str]] = {
    "device": frozenset({  # 12.11
        "object-identifier", "object-name", "object-type", "system-status", "vendor-name",
        "vendor-identifier", "model-name", "firmware-revision", "application-software-version",
        "protocol-version", "protocol-revision", "protocol-services-supported",
        "protocol-object-types-supported", "object-list", "max-apdu-length-accepted",
        "segmentation-supported", "apdu-timeout", "number-of-apdu-retries", "device-address-binding",
        "database-revision", "property-list"}),
    "analog-value": frozenset({  # 12.4
        "object-identifier", "object-name", "object-type", "present-value", "status-flags",
        "event-state", "out-of-service", "units", "property-list"}),
    "binary-value": frozenset({  # 12.8
        "object-identifier", "object-name", "object-type", "present-value", "status-flags",
        "event-state", "out-of-service", "property-list"}),
    "multi-state-value": frozenset({  # 12.20
        "object-identifier", "object-name", "object-type", "present-value", "status-flags",
        "event-state", "out-of-service", "number-of-states", "property-list"}),
    "network-port": frozenset({  # 12.56
        "object-identifier", "object-name", "object-type", "status-flags", "reliability",
        "out-of-service", "network-type", "protocol-level", "network-number",
        "network-number-quality", "changes-pending", "apdu-length", "link-speed", "property-list"}),
}


def _executes(service: str) -> bool:
    return service in SERVED_CONFIRMED.values() or service in SERVED_UNCONFIRMED.values()


def _text(obj: Any, attr: str) -> str:
    value = getattr(obj, attr, None)
    return "" if value is None else str(value)


# Properties clause 12 codes O but requires when a condition holds:
# (object type, properties, condition on the object, where the standard says so).
CONDITIONALLY_REQUIRED: tuple[tuple[str, frozenset[str], Callable[[Any], bool], str], ...] = (
    ("device", frozenset({"max-segments-accepted", "apdu-segment-timeout"}),
     lambda obj: _text(obj, "segmentationSupported") not in ("", "no-segmentation"),
     "12.11: required if segmentation of any kind is supported"),
    ("device", frozenset({"local-date", "local-time"}),
     lambda obj: _executes("time-synchronization") or _executes("utc-time-synchronization"),
     "12.11 and Annex K DM-TS-B / DM-UTC-B: a device executing TimeSynchronization or "
     "UTCTimeSynchronization"),
    ("device", frozenset({"utc-offset", "daylight-savings-status"}),
     lambda obj: _executes("utc-time-synchronization"),
     "12.11 and Annex K DM-UTC-B: a device executing UTCTimeSynchronization"),
    ("device", frozenset({"active-cov-subscriptions"}),
     lambda obj: _executes("subscribe-cov"),
     "12.11: required if the device executes SubscribeCOV or SubscribeCOVProperty"),
    ("analog-value", frozenset({"cov-increment"}),
     lambda obj: getattr(obj, "_cov_criteria", None) is not None,
     "12.4: required if the object supports COV reporting"),
    ("network-port", frozenset({"mac-address"}),
     lambda obj: _text(obj, "protocolLevel") == "bacnet-application",
     "12.56: a port at the BACNET_APPLICATION protocol level"),
    ("network-port", frozenset({"bacnet-ip-mode", "ip-address", "bacnet-ip-udp-port", "ip-subnet-mask"}),
     lambda obj: _text(obj, "networkType") == "ipv4",
     "12.56: a port whose Network_Type is IPV4"),
    ("network-port", frozenset({"fd-bbmd-address", "fd-subscription-lifetime"}),
     lambda obj: _text(obj, "networkType") == "ipv4" and _text(obj, "bacnetIPMode") == "foreign",
     "12.56: a BACnet/IP port in FOREIGN mode"),
    ("network-port", frozenset({"bbmd-accept-fd-registrations", "bbmd-broadcast-distribution-table",
                                "bbmd-foreign-device-table"}),
     lambda obj: _text(obj, "networkType") == "ipv4" and _text(obj, "bacnetIPMode") == "bbmd",
     "12.56: a BACnet/IP port in BBMD mode"),
)


def object_type_name(obj: Any) -> str:
    """``analog-value``, ``network-port``...: the object type as ASHRAE 135 spells it."""
    return str(obj.objectIdentifier[0])


def standard_required(obj: Any) -> frozenset[str]:
    """The properties ASHRAE 135 requires ``obj`` to have: its type's R/W properties and those whose
    condition holds for it. A type missing from ``REQUIRED_BY_TYPE`` falls back to bacpypes3's
    ``_required`` tables (tests/test_standard_conformance.py keeps every type the device holds in the
    table)."""
    kind = object_type_name(obj)
    if kind in REQUIRED_BY_TYPE:
        names = set(REQUIRED_BY_TYPE[kind])
    else:
        names = {str(PropertyIdentifier(attr)) for cls in type(obj).__mro__ for attr in getattr(cls, "_required", ())}
        names |= {str(PropertyIdentifier(attr)) for attr in NOT_IN_PROPERTY_LIST}
    for kind_, props, applies, _why in CONDITIONALLY_REQUIRED:
        if kind_ == kind and applies(obj):
            names |= props
    return frozenset(names)


def present_attrs(obj: Any) -> list[str]:
    """The properties ``obj`` has, as bacpypes3 attribute names, in its declaration order:
    declared by its class and holding a value (bacpypes3 declares every property of the type and
    reads an absent one as None)."""
    return [name for name in obj._elements if inspect.getattr_static(obj, name, None) is not None]


def all_properties(obj: Any) -> list[str]:
    """ReadPropertyMultiple ALL: the four properties property-list leaves out, then property-list's."""
    attrs = present_attrs(obj)
    first = [a for a in ("objectIdentifier", "objectName", "objectType", "propertyList") if a in attrs]
    return [str(PropertyIdentifier(a)) for a in first + [a for a in attrs if a not in NOT_IN_PROPERTY_LIST]]


def required_properties(obj: Any) -> list[str]:
    """ReadPropertyMultiple REQUIRED: the properties the standard requires, of those ``obj`` has."""
    required = standard_required(obj)
    return [name for name in all_properties(obj) if name in required]


def optional_properties(obj: Any) -> list[str]:
    """ReadPropertyMultiple OPTIONAL: the properties ``obj`` has that the standard does not require."""
    required = standard_required(obj)
    return [name for name in all_properties(obj) if name not in required]


def services_supported() -> ServicesSupported:
    """Protocol-services-supported: exactly the services the gate lets through."""
    return ServicesSupported(sorted(set(SERVED_CONFIRMED.values()) | set(SERVED_UNCONFIRMED.values())))


def object_types_supported(app: Any) -> ObjectTypesSupported:
    """Protocol-object-types-supported: exactly the types of the objects the device holds."""
    names = sorted({str(oid[0]) for oid in app.objectIdentifier})
    return ObjectTypesSupported(names)


def software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "?"

    return (f"adrgw {__version__} (Python {sys.version_info.major}.{sys.version_info.minor}, "
            f"bacpypes3 {of('bacpypes3')}, BAC0 {of('BAC0')}, openleadr {of('openleadr')})")


# -- objects ------------------------------------------------------------------------------------


class StandardPropertyList:
    """Mixin: property-list as ASHRAE 135 12.1.1.4.1 defines it (workaround, see module doc)."""

    @property
    def propertyList(self) -> Any:  # noqa: N802 - BACnet property name
        names = [name for name in present_attrs(self) if name not in NOT_IN_PROPERTY_LIST]
        return ArrayOf(PropertyIdentifier)([PropertyIdentifier(name) for name in names])

    @propertyList.setter
    def propertyList(self, value: Any) -> None:  # noqa: N802
        pass  # computed; bacpypes3 assigns None while building the object


class GatewayDeviceObject(StandardPropertyList):
    """Mixin for the device object: computed capabilities, subscriptions and time (see module doc)."""

    # The device object type has no status-flags (ASHRAE 135 12.11); BAC0's JSON adds an empty one.
    statusFlags = None

    @property
    def protocolServicesSupported(self) -> ServicesSupported:  # noqa: N802
        return services_supported()

    @protocolServicesSupported.setter
    def protocolServicesSupported(self, value: Any) -> None:  # noqa: N802
        pass

    @property
    def protocolObjectTypesSupported(self) -> ObjectTypesSupported:  # noqa: N802
        app = getattr(self, "_app", None)
        return object_types_supported(app) if app is not None else ObjectTypesSupported([])

    @protocolObjectTypesSupported.setter
    def protocolObjectTypesSupported(self, value: Any) -> None:  # noqa: N802
        pass

    @property
    def activeCovSubscriptions(self) -> ListOfCOVSubscription:  # noqa: N802
        app = getattr(self, "_app", None)
        return active_cov_subscriptions(app) if app is not None else ListOfCOVSubscription([])

    @activeCovSubscriptions.setter
    def activeCovSubscriptions(self, value: Any) -> None:  # noqa: N802
        pass

    def _device_clock(self) -> devmgmt.DeviceClock:
        app = getattr(self, "_app", None)
        clock = getattr(app, "device_clock", None)
        return clock if clock is not None else _HOST_CLOCK

    @property
    def localDate(self) -> Date:  # noqa: N802
        """The device's date: the host's clock plus the last time synchronization's offset."""
        now = self._device_clock().now(datetime.now(timezone.utc))
        return Date((now.year - 1900, now.month, now.day, now.isoweekday()))

    @localDate.setter
    def localDate(self, value: Any) -> None:  # noqa: N802
        pass

    @property
    def localTime(self) -> Time:  # noqa: N802
        now = self._device_clock().now(datetime.now(timezone.utc))
        return Time((now.hour, now.minute, now.second, now.microsecond // 10000))

    @localTime.setter
    def localTime(self, value: Any) -> None:  # noqa: N802
        pass

    @property
    def utcOffset(self) -> Integer:  # noqa: N802
        """Minutes to add to local standard time to get UTC (ASHRAE 135 12.11.32): -60 for UTC+1,
        summer and winter (daylight saving is daylight-savings-status)."""
        return Integer(self._device_clock().utc_offset(datetime.now(timezone.utc)))

    @utcOffset.setter
    def utcOffset(self, value: Any) -> None:  # noqa: N802
        pass

    @property
    def daylightSavingsStatus(self) -> Boolean:  # noqa: N802
        return Boolean(self._device_clock().daylight_savings(datetime.now(timezone.utc)))

    @daylightSavingsStatus.setter
    def daylightSavingsStatus(self, value: Any) -> None:  # noqa: N802
        pass


# The clock of a device object not (yet) bound to the gateway's application: the host's.
_HOST_CLOCK = devmgmt.DeviceClock()
_CONFORMING: dict[type, type] = {}


def conform_object(obj: Any) -> None:
    """Give ``obj`` the standard property-list (the device also its computed properties) by
    switching it to a cached subclass of its own class; isinstance checks keep working."""
    cls = type(obj)
    if issubclass(cls, StandardPropertyList):
        return
    if cls not in _CONFORMING:
        mixin = GatewayDeviceObject if str(obj.objectIdentifier[0]) == "device" else StandardPropertyList
        _CONFORMING[cls] = type(cls.__name__, (mixin, cls), {"__module__": __name__})
    obj.__class__ = _CONFORMING[cls]


def conform_network_port(port: Any, apdu_length: int) -> None:
    """Fill in and clean up BAC0's NetworkPort object (see module doc). The network number is 0 with
    quality unknown: the gateway is not a router and learns no number for its own network."""
    address = port.address  # bacpypes3 builds it from ipAddress/ipSubnetMask/bacnetIPUDPPort
    port.networkNumber = 0
    port.macAddress = Address(f"{address.addrTuple[0]}:{address.addrTuple[1]}").addrAddr
    port.apduLength = apdu_length
    mode = str(port.bacnetIPMode)
    # properties of the other IP modes are absent, not empty (bacpypes3 keeps values in __dict__)
    if mode != "bbmd":
        vars(port).pop("bbmdBroadcastDistributionTable", None)
        vars(port).pop("bbmdForeignDeviceTable", None)
    if mode != "foreign":
        vars(port).pop("fdBBMDAddress", None)
        vars(port).pop("fdSubscriptionLifetime", None)


def active_cov_subscriptions(app: Any) -> ListOfCOVSubscription:
    """The live SubscribeCOV subscriptions (bacpypes3 keeps them per object in ``_cov_detections``)."""
    loop = asyncio.get_event_loop()
    entries = []
    for detection in list(getattr(app, "_cov_detections", {}).values()):
        for cov in list(detection.cov_subscriptions):
            addr = cov.client_addr
            net = addr.addrNet or 0
            recipient = Recipient(address=DeviceAddress(networkNumber=net, macAddress=addr.addrAddr))
            handle = getattr(cov, "cancel_handle", None)
            remaining = max(0, int(round(handle.when() - loop.time()))) if handle is not None else 0
            entry = COVSubscription(
                recipient=RecipientProcess(recipient=recipient, processIdentifier=cov.proc_id),
                monitoredPropertyReference=ObjectPropertyReference(objectIdentifier=cov.obj_id,
                                                                   propertyIdentifier="present-value"),
                issueConfirmedNotifications=bool(cov.confirmed),
                timeRemaining=remaining,
            )
            increment = getattr(cov.obj_ref, "covIncrement", None)
            if increment is not None:
                entry.covIncrement = float(increment)
            entries.append(entry)
    return ListOfCOVSubscription(entries)


# -- transaction timing -------------------------------------------------------------------------

# (apdu timeout ms, retries) for requests started in this context; None: the device's own values.
_CLIENT_TIMING: contextvars.ContextVar[Optional[tuple[int, int]]] = contextvars.ContextVar(
    "adrgw_client_timing", default=None)


@contextlib.contextmanager
def client_bound(timing: Optional[tuple[int, int]]) -> Iterator[None]:
    """Requests started inside this block (and the tasks bacpypes3 creates for them, which copy the
    context) use ``timing`` instead of the device's advertised APDU timeout and retries."""
    token = _CLIENT_TIMING.set(timing)
    try:
        yield
    finally:
        _CLIENT_TIMING.reset(token)


class TransactionTiming:
    """What bacpypes3's segmentation state machines see as ``sap.device_object`` (workaround, see
    module doc): the device object, except apduTimeout/numberOfApduRetries inside ``client_bound``."""

    def __init__(self, device: Any) -> None:
        object.__setattr__(self, "_device", device)

    def __getattr__(self, name: str) -> Any:
        timing = _CLIENT_TIMING.get()
        if timing is not None and name == "apduTimeout":
            return timing[0]
        if timing is not None and name == "numberOfApduRetries":
            return timing[1]
        return getattr(self._device, name)


def read_timing(timeout: float) -> tuple[int, int]:
    """APDU timeout (ms) and retries that make the stack give up on a silent device within
    ``timeout`` seconds: two tries of half the bound each."""
    return max(100, int(timeout * 1000 / 2)), 1


# -- the request gate ---------------------------------------------------------------------------


def peek_service(data: bytes) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """(APDU type, service choice, invoke ID) from the first octets of an APDU, without decoding
    the rest (which is where bacpypes3 fails on unknown services). Unknown parts are None."""
    if not data:
        return None, None, None
    kind = data[0] >> 4
    if kind == APDU_CONFIRMED_REQUEST:
        segmented = bool(data[0] & 0x08)
        at = 5 if segmented else 3
        if len(data) <= at:
            return kind, None, data[2] if len(data) > 2 else None
        return kind, data[at], data[2]
    if kind == APDU_UNCONFIRMED_REQUEST:
        return kind, (data[1] if len(data) > 1 else None), None
    return kind, None, None


def undecodable(pdu: Any) -> Optional[Any]:
    """The Reject reason for an unsegmented confirmed request bacpypes3 cannot decode (truncated,
    a tag running past the end...), None when it decodes. The request is decoded from a copy: the
    stack decodes the original again."""
    from bacpypes3.apdu import APDU, APCISequence
    from bacpypes3.pdu import PDU

    try:
        APCISequence.decode(APDU.decode(PDU(bytes(pdu.pduData), source=pdu.pduSource,
                                            destination=pdu.pduDestination)))
    except RejectException as err:
        return err.rejectReason or RejectReason.invalidTag
    except Exception:  # noqa: BLE001 - any decoding failure is a malformed request
        return RejectReason.invalidTag
    return None


class RequestGate:
    """Sits between the network layer and bacpypes3's application service access point: drops what
    DeviceCommunicationControl says not to answer, and rejects confirmed services not served."""

    def __init__(self, asap: Any, dcc: devmgmt.CommunicationControl, notes: RateLimitedLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.asap = asap
        self.dcc = dcc
        self.notes = notes
        self.clock = clock
        self._original = asap.confirmation
        self.rejected = 0
        self.dropped = 0
        asap.confirmation = self.confirmation

    async def confirmation(self, pdu: Any) -> None:
        kind, service, invoke_id = peek_service(bytes(pdu.pduData))
        now = self.clock()
        self.sync()
        confirmed = service if kind == APDU_CONFIRMED_REQUEST else None
        if kind in (APDU_CONFIRMED_REQUEST, APDU_UNCONFIRMED_REQUEST) and not self.dcc.answers(confirmed, now):
            self.dropped += 1
            return
        if kind == APDU_CONFIRMED_REQUEST and service is not None and service not in SERVED_CONFIRMED:
            self.rejected += 1
            self.notes.info("reject", "rejected confirmed service %d from %s: unrecognized-service "
                                      "(not implemented by this device)", service, pdu.pduSource)
            reject = RejectPDU(invoke_id=invoke_id, reason=RejectReason.unrecognizedService)
            reject.pduDestination = pdu.pduSource
            await self.asap.request(reject)
            return
        if kind == APDU_CONFIRMED_REQUEST and service is not None and not bytes(pdu.pduData)[0] & 0x08:
            reason = undecodable(pdu)
            if reason is not None:
                # bacpypes3 would answer nothing (workaround, see module doc)
                self.rejected += 1
                self.notes.info("reject", "rejected confirmed service %d from %s: %s (the request cannot be "
                                          "decoded)", service, pdu.pduSource, reason)
                reject = RejectPDU(invoke_id=invoke_id, reason=reason)
                reject.pduDestination = pdu.pduSource
                await self.asap.request(reject)
                return
        await self._original(pdu)

    def sync(self) -> None:
        """Mirror our DCC state into bacpypes3's, which suppresses outgoing requests while initiation
        is disabled (it still lets the I-Am that answers a Who-Is out). ``disable`` is mirrored as
        ``disableInitiation``: bacpypes3's own ``disable`` branch tests ``pdu.apduType`` on the
        undecoded PDU and fails, so DCC and ReinitializeDevice would go unanswered; incoming requests
        are filtered here by the gate instead."""
        state = self.dcc.current(self.clock())
        self.asap.dccEnableDisable = "enable" if state is devmgmt.DccState.ENABLE else "disableInitiation"


# -- the application ----------------------------------------------------------------------------


def _datetime_of(value: Any) -> Optional[datetime]:
    """A bacpypes3 DateTime -> naive datetime; None when a field is unspecified (255) or the date
    is not a calendar date (the special months and days of ASHRAE 135 21 are not a time to set)."""
    year, month, day, _dow = tuple(value.date)
    hour, minute, second, hundredths = tuple(value.time)
    if 255 in (year, month, day, hour, minute, second) or month > 12:
        return None
    try:
        return datetime(1900 + year, month, day, hour, minute, second, 0 if hundredths == 255 else hundredths * 10000)
    except ValueError:
        return None


def _attr_name(prop: Any) -> str:
    """A property identifier as bacpypes3's attribute name (``presentValue``)."""
    try:
        return str(PropertyIdentifier(prop).attr)
    except (ValueError, TypeError, AttributeError):
        return str(prop)


def well_formed(tags: Any) -> bool:
    """Whether a property value's tags are well-formed on their own: at least one tag, opening and
    closing tags paired, and each application tag a valid encoding of its own datatype (a REAL of
    four octets...). A value that is well-formed but not of the property's datatype gets
    Error(invalid-data-type); anything else is a malformed request: Reject(invalid-tag)."""
    from bacpypes3.primitivedata import Tag, TagClass, TagList

    tags = list(tags)
    if not tags:
        return False
    opened: list[int] = []
    for tag in tags:
        if tag.tag_class == TagClass.opening:
            opened.append(tag.tag_number)
        elif tag.tag_class == TagClass.closing:
            if not opened or opened.pop() != tag.tag_number:
                return False
        elif tag.tag_class == TagClass.application:
            kind = Tag._app_tag_class[tag.tag_number] if tag.tag_number < len(Tag._app_tag_class) else None
            if kind is None:
                return False
            try:
                kind.decode(TagList([tag]))
            except Exception:  # noqa: BLE001 - any decoding failure is a malformed tag
                return False
    return not opened


class GatewayApplication(Application):  # type: ignore[misc]
    """bacpypes3's Application with the gateway's device management and the fixes named in the
    module doc. BAC0 builds a plain Application; ``install`` switches its class to this one."""

    # set by install(); class-level defaults keep bacpypes3's attribute handling out of the way
    _dcc: devmgmt.CommunicationControl
    _notes: RateLimitedLog
    _password: str = ""
    _on_reinitialize: Optional[Callable[[devmgmt.ReinitState], Any]] = None
    # Local_Date / Local_Time (TimeSynchronization, UTCTimeSynchronization); install() gives each
    # application its own.
    device_clock: devmgmt.DeviceClock = _HOST_CLOCK
    last_time_sync: Optional[tuple[str, datetime, float]] = None  # (service, time told as UTC, offset s)

    def may_initiate(self) -> bool:
        """Whether DeviceCommunicationControl lets the device start requests (meter reads,
        write-through, COV notifications)."""
        return self._dcc.may_initiate(time.monotonic())

    async def indication(self, apdu: Any) -> None:  # type: ignore[override]
        """bacpypes3's dispatch, with a client's bad request logged as one rate-limited INFO line
        instead of an ERROR traceback (workaround, see module doc)."""
        helper = getattr(self, "do_" + apdu.__class__.__name__, None)
        confirmed = isinstance(apdu, ConfirmedRequestPDU)
        error_pdu: Any = None
        try:
            if helper is None:
                if confirmed:
                    error_pdu = RejectPDU(reason=RejectReason.unrecognizedService, context=apdu)
                return
            await helper(apdu)
        except RejectException as err:
            self._notes.info("reject", "rejected %s from %s: %s", apdu.__class__.__name__, apdu.pduSource,
                             err.rejectReason)
            if confirmed:
                error_pdu = RejectPDU(reason=err.rejectReason, context=apdu)
        except AbortException as err:
            self._notes.info("abort", "aborted %s from %s: %s", apdu.__class__.__name__, apdu.pduSource,
                             err.abortReason)
            if confirmed:
                from bacpypes3.apdu import AbortPDU

                error_pdu = AbortPDU(reason=err.abortReason, context=apdu)
        except ExecutionError as err:
            if confirmed:
                error_pdu = Error(service_choice=apdu.apduService, errorClass=err.errorClass,
                                  errorCode=err.errorCode, context=apdu)
        except Exception as err:  # noqa: BLE001 - a request the stack cannot process is the client's problem
            self._notes.info("failed", "could not process %s from %s (%s: %s): answered operational-problem",
                             apdu.__class__.__name__, apdu.pduSource, type(err).__name__, err)
            if confirmed:
                error_pdu = Error(service_choice=apdu.apduService, errorClass="device",
                                  errorCode="operationalProblem", context=apdu)
        finally:
            if error_pdu is not None:
                await self.response(error_pdu)

    async def do_ReadPropertyMultipleRequest(self, apdu: Any) -> None:  # noqa: N802
        """ALL, REQUIRED and OPTIONAL expanded into the properties they stand for (workaround, see
        module doc): ALL is every property the object has, property-list included (ASHRAE 135
        15.7.3.1.2); REQUIRED those of them the standard requires (``standard_required``); OPTIONAL
        the rest. bacpypes3 then reads each as if it had been asked for by name. A reference to an
        object the device does not have is left to bacpypes3 (unknown-object)."""
        from bacpypes3.basetypes import PropertyReference

        expand = {PropertyIdentifier.all: all_properties, PropertyIdentifier.required: required_properties,
                  PropertyIdentifier.optional: optional_properties}
        for spec in apdu.listOfReadAccessSpecs:
            oid = spec.objectIdentifier
            if oid == ("device", 4194303) and self.device_object is not None:  # the wildcard instance
                oid = self.device_object.objectIdentifier
            obj = self.get_object_id(oid)
            refs = list(spec.listOfPropertyReferences)
            if obj is None or not any(ref.propertyIdentifier in expand for ref in refs):
                continue
            expanded: list[Any] = []
            for ref in refs:
                special = expand.get(ref.propertyIdentifier)
                if special is None:
                    expanded.append(ref)
                else:
                    expanded += [PropertyReference(propertyIdentifier=PropertyIdentifier(name))
                                 for name in special(obj)]
            spec.listOfPropertyReferences = expanded
        await super().do_ReadPropertyMultipleRequest(apdu)

    # -- writes ------------------------------------------------------------------------------

    def _value_to_write(self, obj: Any, prop: Any, value: Any, index: Optional[int], priority: Optional[int]) -> Any:
        """The value of a WriteProperty(-Multiple) decoded as the property's datatype, or the error
        ASHRAE 135 gives (workaround, see module doc): unknown-property for a property the object
        does not have; for a value that decodes but not as that datatype, invalid-data-type on a
        writable property and write-access-denied on any other; a malformed value stays a Reject."""
        property_type = obj.get_property_type(prop)
        if property_type is None:
            raise ExecutionError(errorClass="property", errorCode="unknownProperty")
        if issubclass(property_type, Array) and index is not None:
            property_type = Unsigned if index == 0 else property_type._subtype
        try:
            return value.cast_out(property_type, null=(priority is not None))
        except InvalidTag:
            if not well_formed(value.tagList):
                raise
            if _attr_name(prop) not in getattr(obj, "_network_writable", frozenset()):
                raise ExecutionError(errorClass="property", errorCode="writeAccessDenied") from None
            self._notes.info("datatype", "refused a write of the wrong datatype to %s %s: invalid-data-type",
                             getattr(obj, "objectName", obj), PropertyIdentifier(prop))
            raise ExecutionError(errorClass="property", errorCode="invalidDataType") from None

    async def do_WritePropertyRequest(self, apdu: Any) -> None:  # noqa: N802
        """WriteProperty, with ASHRAE 135's errors for values of the wrong datatype (see
        ``_value_to_write``); bacpypes3's own handler is otherwise the same."""
        obj = self.get_object_id(apdu.objectIdentifier)
        if not obj:
            raise ExecutionError(errorClass="object", errorCode="unknownObject")
        value = self._value_to_write(obj, apdu.propertyIdentifier, apdu.propertyValue, apdu.propertyArrayIndex,
                                     apdu.priority)
        await obj.write_property(apdu.propertyIdentifier, value, apdu.propertyArrayIndex, apdu.priority)
        await self.response(SimpleAckPDU(context=apdu))

    async def do_WritePropertyMultipleRequest(self, apdu: Any) -> None:  # noqa: N802
        """WritePropertyMultiple as bacpypes3 runs it (each property in order, stopping at the first
        failure, the writes before it kept: ASHRAE 135 15.10.1.3.2), with the datatype errors of
        ``_value_to_write``, and the WritePropertyMultiple-Error sent rather than raised (workaround,
        see module doc)."""
        try:
            await self._write_property_multiple(apdu)
        except WritePropertyMultipleError as err:
            err.apduService = apdu.apduService
            err.set_context(apdu)
            await self.response(err)

    async def _write_property_multiple(self, apdu: Any) -> None:
        from bacpypes3.basetypes import ErrorType

        def failed(error_class: str, error_code: str, oid: Any, prop: Any = None,
                   index: Optional[int] = None) -> WritePropertyMultipleError:
            ref = ObjectPropertyReference(objectIdentifier=oid)
            if prop is not None:
                ref.propertyIdentifier = prop
            if index is not None:
                ref.propertyArrayIndex = index
            return WritePropertyMultipleError(errorType=ErrorType(errorClass=error_class, errorCode=error_code),
                                              firstFailedWriteAttempt=ref)

        def resolve(oid: Any) -> Any:
            if oid == ("device", 4194303) and self.device_object is not None:
                return self.device_object.objectIdentifier
            return oid

        for spec in apdu.listOfWriteAccessSpecs:
            oid = resolve(spec.objectIdentifier)
            obj = self.get_object_id(oid)
            if not obj:
                raise failed("object", "unknownObject", oid)
            for item in spec.listOfProperties:
                prop, index, priority = item.propertyIdentifier, item.propertyArrayIndex, item.priority
                try:
                    value = self._value_to_write(obj, prop, item.value, index, priority)
                    await obj.write_property(prop, value, index, priority)
                except ExecutionError as err:
                    raise failed(err.errorClass, err.errorCode, oid, prop, index) from None
        await self.response(SimpleAckPDU(context=apdu))

    async def refuse_write_multiple(self, apdu: Any, error_class: str, error_code: str) -> None:
        """Answer a WritePropertyMultiple refused as a whole (the write allow-list) with the
        WritePropertyMultiple-Error the standard defines, naming its first property."""
        from bacpypes3.basetypes import ErrorType

        spec = apdu.listOfWriteAccessSpecs[0]
        first = ObjectPropertyReference(objectIdentifier=spec.objectIdentifier,
                                        propertyIdentifier=spec.listOfProperties[0].propertyIdentifier)
        await self.response(WritePropertyMultipleError(
            errorType=ErrorType(errorClass=error_class, errorCode=error_code), firstFailedWriteAttempt=first,
            context=apdu))

    async def do_DeviceCommunicationControlRequest(self, apdu: Any) -> None:  # noqa: N802
        enable_disable = str(apdu.enableDisable) if apdu.enableDisable is not None else None
        if enable_disable is None:
            raise ParameterOutOfRange("enable-disable is missing")
        password = str(apdu.password) if apdu.password is not None else None
        minutes = int(apdu.timeDuration) if apdu.timeDuration is not None else None
        try:
            state = self._dcc.request(enable_disable, minutes, password, time.monotonic())
        except devmgmt.PasswordFailure:
            self._notes.info("password", "DeviceCommunicationControl from %s refused: password-failure",
                             apdu.pduSource)
            raise ExecutionError(errorClass="security", errorCode="passwordFailure") from None
        except devmgmt.DurationOutOfRange as exc:
            self._notes.info("dcc-range", "DeviceCommunicationControl from %s rejected: %s", apdu.pduSource, exc)
            raise ParameterOutOfRange(str(exc)) from None
        self._gate.sync()
        remaining = self._dcc.remaining(time.monotonic())
        log.warning("DeviceCommunicationControl from %s: %s%s", apdu.pduSource, state.value,
                    f" for {remaining / 60:g} min" if remaining is not None else "")
        await self.response(SimpleAckPDU(context=apdu))
        if remaining is not None:
            # wake up at the end to put bacpypes3's outgoing filter back (the gate re-syncs too)
            asyncio.get_running_loop().call_later(remaining + 0.01, self._gate.sync)

    async def do_ReinitializeDeviceRequest(self, apdu: Any) -> None:  # noqa: N802
        password = str(apdu.password) if apdu.password is not None else None
        try:
            state = devmgmt.reinitialize_state(str(apdu.reinitializedStateOfDevice), self._password, password)
        except devmgmt.PasswordFailure:
            self._notes.info("password", "ReinitializeDevice from %s refused: password-failure", apdu.pduSource)
            raise ExecutionError(errorClass="security", errorCode="passwordFailure") from None
        except devmgmt.NotSupported as exc:
            self._notes.info("reinit", "ReinitializeDevice from %s refused: %s", apdu.pduSource, exc)
            raise ExecutionError(errorClass="services", errorCode="optionalFunctionalityNotSupported") from None
        log.warning("ReinitializeDevice (%s) from %s: restarting the gateway", state.value, apdu.pduSource)
        await self.response(SimpleAckPDU(context=apdu))
        handler = self._on_reinitialize
        if handler is not None:
            result = handler(state)
            if asyncio.iscoroutine(result):
                await result

    async def do_TimeSynchronizationRequest(self, apdu: Any) -> None:  # noqa: N802
        """DM-TS-B: the time told is the device's local time."""
        local = _datetime_of(apdu.time)
        told = self.device_clock.local_to_utc(local) if local is not None else None
        self._time_told("time-synchronization", told, local, apdu.pduSource)

    async def do_UTCTimeSynchronizationRequest(self, apdu: Any) -> None:  # noqa: N802
        """DM-UTC-B: the time told is UTC; local time is UTC minus UTC_Offset, plus the daylight-saving
        shift when it is in effect (``devmgmt.DeviceClock.now``)."""
        utc = _datetime_of(apdu.time)
        told = utc.replace(tzinfo=timezone.utc) if utc is not None else None
        self._time_told("utc-time-synchronization", told, utc, apdu.pduSource)

    def _time_told(self, kind: str, told: Optional[datetime], as_sent: Optional[datetime], source: Any) -> None:
        """Execute a time synchronization: the device's Local_Date / Local_Time follow the time told
        from now on, as an offset from the host's clock (``devmgmt.DeviceClock``). The operating
        system's clock is never set, and the event schedule and telemetry stay on it."""
        if told is None:
            self._notes.info("time", "%s from %s ignored: the date or time is unspecified", kind, source)
            return
        host = datetime.now(timezone.utc)
        offset = self.device_clock.synchronize(told, host)
        self.last_time_sync = (kind, told, offset)
        local = self.device_clock.now(host)
        # one line per service and minute at most: a client repeating it cannot flood the log
        self._notes.info(kind, "%s from %s: %s; the device's clock is now %s, %+.3f s from this host's "
                               "clock (the host's clock, the event schedule and telemetry are not changed)",
                         kind, source, as_sent.isoformat(timespec="seconds") if as_sent else "?",
                         local.isoformat(timespec="seconds"), offset)

    _gate: RequestGate


def install(app: Any, settings: Any, on_reinitialize: Optional[Callable[[devmgmt.ReinitState], Any]] = None
            ) -> GatewayApplication:
    """Turn BAC0's application into the gateway's: identity from ``[bacnet]`` settings, honest
    capabilities, the request gate and device management. Call once, right after BAC0 starts.

    BAC0 builds its bacpypes3 application itself, so its class is swapped and our collaborators are
    set on it here, after it was built: a library object has no constructor of ours to take them.
    Our own objects take theirs in their constructors (docs/architecture.md)."""
    app.__class__ = GatewayApplication
    notes = RateLimitedLog(log)
    dcc = devmgmt.CommunicationControl(password=settings.password)
    object.__setattr__(app, "_dcc", dcc)
    object.__setattr__(app, "_notes", notes)
    object.__setattr__(app, "_password", settings.password)
    object.__setattr__(app, "_on_reinitialize", on_reinitialize)
    object.__setattr__(app, "_gate", RequestGate(app.asap, dcc, notes))
    object.__setattr__(app, "device_clock", devmgmt.DeviceClock())
    device = app.device_object
    conform_object(device)
    device.vendorIdentifier = settings.vendor_id
    device.vendorName = settings.vendor_name
    device.modelName = settings.model_name
    device.firmwareRevision = __version__
    device.applicationSoftwareVersion = software_version()
    device.description = settings.description
    device.location = settings.location  # always present (empty when not configured): see docs/PICS.md
    device.apduTimeout = settings.apdu_timeout
    device.numberOfApduRetries = settings.apdu_retries
    app.asap.device_object = TransactionTiming(device)
    for obj in list(app.objectIdentifier.values()):
        if str(obj.objectIdentifier[0]) == "network-port":
            conform_network_port(obj, int(device.maxApduLengthAccepted))
        conform_object(obj)
    return app  # type: ignore[no-any-return]


def conform_all(app: Any) -> None:
    """Standard property-list for every object the device holds (call after adding points)."""
    for obj in list(app.objectIdentifier.values()):
        conform_object(obj)

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
  keeps answering Who-Is/Who-Has while disabled.
* ``GatewayApplication.do_WritePropertyMultipleRequest``: bacpypes3 raises its
  ``WritePropertyMultipleError`` (a ``BaseException``) instead of sending it, so a refused
  WritePropertyMultiple was never answered and put a traceback in the log.
* ``GatewayApplication.do_ReadPropertyMultipleRequest``: bacpypes3 leaves property-list out of
  ReadPropertyMultiple ALL and REQUIRED.
* ``GatewayApplication.indication``: bacpypes3 logs any exception in a service helper at ERROR with
  a traceback; a client's bad request is logged here as one rate-limited INFO line.
* ``GatewayDeviceObject``: bacpypes3's device returns an empty protocol-object-types-supported and an
  always-empty active-cov-subscriptions (it asks the application for a method that does not exist),
  and has no utc-offset.
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
from bacpypes3.constructeddata import ArrayOf
from bacpypes3.errors import AbortException, ExecutionError, ParameterOutOfRange, RejectException
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Boolean, Integer

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
        names = [name for name in self._elements  # type: ignore[attr-defined]
                 if name not in NOT_IN_PROPERTY_LIST and inspect.getattr_static(self, name, None) is not None]
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

    @property
    def utcOffset(self) -> Integer:  # noqa: N802
        """Minutes to add to local time to get UTC (ASHRAE 135 12.11.32): -60 for UTC+1."""
        return Integer(-int(time.localtime().tm_gmtoff // 60))

    @utcOffset.setter
    def utcOffset(self, value: Any) -> None:  # noqa: N802
        pass

    @property
    def daylightSavingsStatus(self) -> Boolean:  # noqa: N802
        return Boolean(time.localtime().tm_isdst > 0)

    @daylightSavingsStatus.setter
    def daylightSavingsStatus(self, value: Any) -> None:  # noqa: N802
        pass


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


def _datetime_of(value: Any, tz: Optional[timezone]) -> Optional[datetime]:
    """A bacpypes3 DateTime -> datetime; None when a field is unspecified (255)."""
    year, month, day, _dow = tuple(value.date)
    hour, minute, second, hundredths = tuple(value.time)
    if 255 in (year, month, day, hour, minute, second) or month > 12:
        return None
    try:
        local = datetime(1900 + year, month, day, hour, minute, second,
                         0 if hundredths == 255 else hundredths * 10000)
    except ValueError:
        return None
    return local.replace(tzinfo=tz) if tz is not None else local.astimezone()


class GatewayApplication(Application):  # type: ignore[misc]
    """bacpypes3's Application with the gateway's device management and the fixes named in the
    module doc. BAC0 builds a plain Application; ``install`` switches its class to this one."""

    # set by install(); class-level defaults keep bacpypes3's attribute handling out of the way
    _dcc: devmgmt.CommunicationControl
    _notes: RateLimitedLog
    _password: str = ""
    _on_reinitialize: Optional[Callable[[devmgmt.ReinitState], Any]] = None
    last_time_sync: Optional[tuple[str, datetime, float]] = None

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
        """bacpypes3 leaves property-list out of ALL and REQUIRED; ASHRAE 135 15.7.3.1.2 returns
        every property, property-list included (it is required in every object). Asking for it
        explicitly in the same request puts it back."""
        from bacpypes3.basetypes import PropertyReference

        wanted = (PropertyIdentifier.all, PropertyIdentifier.required)
        for spec in apdu.listOfReadAccessSpecs:
            refs = spec.listOfPropertyReferences
            names = [ref.propertyIdentifier for ref in refs]
            if any(n in wanted for n in names) and PropertyIdentifier.propertyList not in names:
                refs.append(PropertyReference(propertyIdentifier=PropertyIdentifier.propertyList))
        await super().do_ReadPropertyMultipleRequest(apdu)

    async def do_WritePropertyMultipleRequest(self, apdu: Any) -> None:  # noqa: N802
        """Send the WritePropertyMultiple-Error bacpypes3 raises (workaround, see module doc)."""
        try:
            await super().do_WritePropertyMultipleRequest(apdu)
        except WritePropertyMultipleError as err:
            err.apduService = apdu.apduService
            err.set_context(apdu)
            await self.response(err)

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
        self._time_told("time-synchronization", _datetime_of(apdu.time, None), apdu.pduSource)

    async def do_UTCTimeSynchronizationRequest(self, apdu: Any) -> None:  # noqa: N802
        self._time_told("utc-time-synchronization", _datetime_of(apdu.time, timezone.utc), apdu.pduSource)

    def _time_told(self, kind: str, told: Optional[datetime], source: Any) -> None:
        """DM-TS-B / DM-UTC-B: accept, log the offset, never set the operating system's clock (that
        is the host's time service's job; the gateway runs unprivileged)."""
        if told is None:
            self._notes.info("time", "%s from %s ignored: the date or time is unspecified", kind, source)
            return
        offset = devmgmt.clock_offset(told, datetime.now(timezone.utc))
        self.last_time_sync = (kind, told, offset)
        self._notes.info("time", "%s from %s: told %s; this host's clock is %+.3f s from it (the "
                                 "operating system's clock is not changed)", kind, source,
                         told.isoformat(timespec="seconds"), offset)

    _gate: RequestGate


def install(app: Any, settings: Any, on_reinitialize: Optional[Callable[[devmgmt.ReinitState], Any]] = None
            ) -> GatewayApplication:
    """Turn BAC0's application into the gateway's: identity from ``[bacnet]`` settings, honest
    capabilities, the request gate and device management. Call once, right after BAC0 starts."""
    app.__class__ = GatewayApplication
    notes = RateLimitedLog(log)
    dcc = devmgmt.CommunicationControl(password=settings.password)
    object.__setattr__(app, "_dcc", dcc)
    object.__setattr__(app, "_notes", notes)
    object.__setattr__(app, "_password", settings.password)
    object.__setattr__(app, "_on_reinitialize", on_reinitialize)
    object.__setattr__(app, "_gate", RequestGate(app.asap, dcc, notes))
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

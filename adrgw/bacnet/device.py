"""The gateway's BACnet side: a BAC0 device with read-only points, and bounded meter reads.

Everything BAC0/bacpypes3 does oddly is worked around here, each in one named place:

* ``quiet_bac0_logging``: BAC0 attaches its own stdout/stderr/file handlers to its loggers at import
  time and writes ``~/.BAC0/BAC0.log``; we detach them so our logging setup is the only one.
* ``points.py``: BAC0's factory objects are writable from the network even with
  ``is_commandable=False``; bacpypes3 subclasses that refuse writes with
  ``write-access-denied`` are used instead.
* ``add_static_route``: ``NetworkServiceAccessPoint.update_router_references`` takes the adapter's
  network number (None for the local adapter), not the adapter object as one would expect.
* ``conformance.py``: identity, honest capabilities, the request gate, device management and the
  other conformance workarounds (issue 13) live there; ``start`` installs them.
* ``read_present_value``: ``BAC0.read`` ignores its timeout, loops Who-Is for ~6 s on an unknown
  device, logs and swallows some BACnet errors, and bacpypes3's ``ErrorRejectAbortNack`` derives
  from ``BaseException``; we call the bacpypes3 application's ``read_property`` directly, bound it
  with ``asyncio.wait_for`` and set the device's APDU timeout so the stack itself gives up in time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional, TypeVar

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.basetypes import BinaryPV, PropertyIdentifier, Reliability, StatusFlags
from bacpypes3.errors import ExecutionError
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier, Real

from adrgw.bacnet import conformance
from adrgw.bacnet import points as P
from adrgw.config.settings import BacnetSettings, PointSettings, Route

log = logging.getLogger("adrgw.bacnet")
T = TypeVar("T")


def quiet_bac0_logging(level: int = logging.WARNING) -> None:
    """Detach BAC0's own handlers (stdout, stderr, ~/.BAC0/BAC0.log) and let its records propagate
    to our root handler at ``level``. Works around BAC0's import-time logging setup."""
    from BAC0.core.utils.notes import LogList  # imported here: BAC0 import is heavy

    for logger in list(LogList.LOGGERS):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)
        logger.propagate = True
    logging.getLogger("BAC0_Root").setLevel(level)


def source_allowed(source: Any, allowed: tuple[str, ...]) -> bool:
    """Whether a BACnet/IP source address is inside one of the allowed networks (CIDR strings)."""
    import ipaddress

    try:
        ip = ipaddress.IPv4Address(str(source).split(":")[0])
    except ValueError:
        return False  # a routed (NET:MAC) source: not on the allow-list's IP networks
    return any(ip in ipaddress.IPv4Network(net, strict=False) for net in allowed)


# Properties per ReadPropertyMultiple request: ~40 values fit a 480-octet MS/TP APDU unsegmented.
RPM_CHUNK = 40
# Single ReadProperty requests in flight at once when reading many points one by one.
READS_IN_FLIGHT = 8


def checked_number(value: Any) -> float:
    """A finite number from a read, or MeterReadError (an error, None, text, NaN, infinity...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MeterReadError(f"not a number: {value!r}")
    if not math.isfinite(float(value)):
        raise MeterReadError(f"not a finite number: {value!r}")
    return real_to_float(float(value)) if isinstance(value, Real) else float(value)


def real_to_float(value: float) -> float:
    """The shortest decimal that is the same IEEE single as ``value``.

    A BACnet REAL is 32-bit: 99.97 on the meter arrives as 99.97000122070312. Reporting 99.97 is
    the same number the meter holds, not a rounding of it.
    """
    single = struct.unpack("<f", struct.pack("<f", value))[0]
    for digits in range(6, 10):
        text = f"{single:.{digits}g}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == single:
            return float(text)
    return single


async def bounded(request: Awaitable[T], timeout: float, error: type[Exception]) -> T:
    """Await one BACnet request within ``timeout``; every failure becomes ``error(one line)``.

    bacpypes3 reports errors, rejects and aborts as ``ErrorRejectAbortNack``, a ``BaseException``
    that ``except Exception`` misses; a silent device is a timeout.
    """
    try:
        return await asyncio.wait_for(request, timeout)
    except asyncio.TimeoutError:
        raise error(f"no answer within {timeout:g} s") from None
    except ErrorRejectAbortNack as exc:
        raise error(f"BACnet error: {exc}") from None
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any stack failure is a failed request
        raise error(f"{type(exc).__name__}: {exc}") from None


def stop_bac0_i_am_spin() -> int:
    """Cancel BAC0's start-up I-Am task. Workaround for BAC0 2026.7.25 with bacpypes3 0.0.110:
    ``Lite._i_am`` waits, in a loop of 10 ms sleeps, for ``app.i_am`` to become a coroutine
    function, which in bacpypes3 0.0.110 it never is: the task wakes the loop 100 times a second
    forever (about 1 % of a core when the gateway is otherwise idle). We announce ourselves with
    ``app.i_am()`` instead. Returns how many such tasks were cancelled."""
    cancelled = 0
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and code.co_qualname == "Lite._i_am":
            task.cancel()
            cancelled += 1
    return cancelled


class BacnetStartError(Exception):
    """The BACnet/IP port could not be opened; the message is one line for the operator."""


class MeterReadError(Exception):
    """A meter read that produced no usable value; the message says why, for the log."""


@dataclass(frozen=True)
class PointRef:
    """``address object instance property`` of a value on another device."""

    address: str
    object_type: str
    instance: int
    property: str

    def __str__(self) -> str:
        return f"{self.address} {self.object_type} {self.instance} {self.property}"


# Report unit (config [meter] unit) -> BACnet engineering unit of the ADR-Meter-Value mirror.
ENGINEERING_UNITS = {
    "W": "watts", "kW": "kilowatts", "MW": "megawatts", "Wh": "wattHours", "kWh": "kilowattHours",
    "MWh": "megawattHours", "V": "volts", "kV": "kilovolts", "A": "amperes", "Hz": "hertz",
    "VA": "voltAmperes", "kVA": "kilovoltAmperes", "VAR": "voltAmperesReactive",
    "kVAR": "kilovoltAmperesReactive", "VARh": "voltAmperesReactiveHours", "kVARh": "kilovoltAmperesReactiveHours",
    "VAh": "voltAmpereHours", "kVAh": "kilovoltAmpereHours", "celsius": "degreesCelsius",
    "fahrenheit": "degreesFahrenheit",
}


class GatewayDevice:
    """The gateway's BACnet device: discoverable, with read-only points, and a client for reads."""

    def __init__(self, settings: BacnetSettings, points: PointSettings, meter_unit: str = "kW",
                 extra_points: tuple[P.PointSpec, ...] = (), on_opt_out: Optional[P.WriteHandler] = None,
                 on_reinitialize: Optional[Callable[[Any], Any]] = None) -> None:
        """``extra_points``: more read-only points after the built-in ones ([signal.NAME]).
        ``on_opt_out(active, source)``: called after each accepted write of ADR-Opt-Out.
        ``on_reinitialize(state)``: called after a ReinitializeDevice (warmstart/coldstart) was
        acknowledged (issue 13). Either may return an awaitable, which is awaited."""
        self.settings = settings
        self.extra_points = extra_points
        self.points = points
        self.meter_unit = meter_unit
        self._bacnet: Any = None
        self.objects: dict[str, Any] = {}  # object name -> bacpypes3 object
        self.on_opt_out = on_opt_out
        self.on_reinitialize = on_reinitialize
        self._read_timing: Optional[tuple[int, int]] = None

    @property
    def app(self) -> Any:
        """The bacpypes3 Application under BAC0."""
        return self._bacnet.this_application.app

    async def start(self) -> None:
        """Open the UDP port, create the points, load static routes, announce with I-Am."""
        import BAC0

        from adrgw.bacnet import bacpypes3_futures

        bacpypes3_futures.install()  # bacpypes3 bug: unretrieved InvalidStateError after bounded reads
        from BAC0.core.io.IOExceptions import InitializationError

        quiet_bac0_logging(logging.getLogger().getEffectiveLevel()
                           if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
        s = self.settings
        kwargs: dict[str, Any] = dict(ip=f"{s.ip}/{s.prefix}", port=s.port, deviceId=s.device_id,
                                      localObjName=s.device_name, ping=False)
        if s.bbmd:
            kwargs.update(bbmdAddress=s.bbmd, bbmdTTL=s.bbmd_ttl)
        try:
            self._bacnet = BAC0.start(**kwargs)
        except (OSError, InitializationError) as exc:
            # BAC0 probes the socket itself and raises InitializationError with a long hint about
            # 47808 whatever the port: say what is wrong in our words, as one line.
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else "cannot bind"
            raise BacnetStartError(
                f"cannot open BACnet/IP port {s.ip}:{s.port} ({detail}): another BACnet application "
                "may be using it, or [bacnet] address is not an address of this host") from None
        # BAC0.start's context manager waits for its own I-Am task; wait the same way, bounded.
        for _ in range(100):
            if getattr(self._bacnet, "_initialized", False):
                break
            await asyncio.sleep(0.05)
        stop_bac0_i_am_spin()
        conformance.install(self.app, s, on_reinitialize=self._reinitialize)
        specs = P.point_specs(self.points.event_level) + list(self.extra_points)
        for spec in specs if self.points.expose else []:
            units = ENGINEERING_UNITS.get(self.meter_unit, "noUnits") if spec.name == P.METER_VALUE else None
            obj = P.make_point(spec, units, on_write=self._opt_out_written)
            self.app.add_object(obj)
            self.objects[spec.name] = obj
        conformance.conform_all(self.app)
        self._lock_down()
        for route in s.routes:
            await self.add_static_route(route)
        announced = self.app.i_am()  # a plain call in bacpypes3 0.0.110, a coroutine elsewhere
        if asyncio.iscoroutine(announced):
            await announced
        log.info("BACnet device %d %r up on %s:%d with %d points (%r is analogValue 1)",
                 s.device_id, s.device_name, s.ip, s.port, len(self.objects), self.points.event_level)

    async def _reinitialize(self, state: Any) -> None:
        if self.on_reinitialize is not None:
            result = self.on_reinitialize(state)
            if asyncio.iscoroutine(result):
                await result

    def may_initiate(self) -> bool:
        """False while DeviceCommunicationControl has disabled initiation (or communication)."""
        if self._bacnet is None:
            return True
        check = getattr(self.app, "may_initiate", None)
        return True if check is None else bool(check())

    async def _opt_out_written(self, active: bool, source: Any) -> None:
        log.info("%s written %s over BACnet", P.OPT_OUT, "active" if active else "inactive")
        if self.on_opt_out is not None:
            result = self.on_opt_out(active, source)
            if asyncio.iscoroutine(result):
                await result

    def _lock_down(self) -> None:
        """Make BAC0's own objects (device, network port) read-only and apply the write allow-list.

        BAC0/bacpypes3 let any client rewrite the device's objectName, the network port's settings
        and more. Our points refuse writes by class (points.py); these two objects come from BAC0's
        JSON, so their ``write_property`` is replaced on the instance (bypassing bacpypes3's
        attribute guard with ``object.__setattr__``).
        """
        for obj in list(self.app.objectIdentifier.values()):
            if obj.objectName in self.objects.keys():
                continue

            async def refuse(attr: Any, value: Any, index: Optional[int] = None, priority: Optional[int] = None,
                             _obj: Any = obj) -> None:
                P._refuse(_obj, attr)

            object.__setattr__(obj, "write_property", refuse)
        allowed = self.settings.allow_writes_from
        if not allowed:
            return
        app = self.app
        # BAC0 builds this application itself: its services are wrapped in place (a library object,
        # not one of ours, so there is no constructor to hand the allow-list to).
        for service in ("do_WritePropertyRequest", "do_WritePropertyMultipleRequest"):
            original = getattr(app, service)

            async def guarded(apdu: Any, _original: Any = original, _service: str = service) -> None:
                if not source_allowed(apdu.pduSource, allowed):
                    # a client's refused request: one rate-limited INFO line (issue 13)
                    app._notes.info("allow-list", "refused a write from %s: not in [bacnet] allow_writes_from",
                                    apdu.pduSource)
                    if _service == "do_WritePropertyMultipleRequest":
                        await app.refuse_write_multiple(apdu, "property", "writeAccessDenied")
                        return
                    raise ExecutionError(errorClass="property", errorCode="writeAccessDenied")
                await _original(apdu)

            setattr(app, service, guarded)

    async def add_static_route(self, route: Route) -> None:
        """Tell the network layer that ``route.network`` is behind the router at host:port.

        Needed on loopback and wherever broadcasts do not reach the router (Who-Is-Router-To-Network
        is a broadcast, so the router is never found there).
        bacpypes3 keys adapters by network number (None for the local one), not by adapter object.
        """
        nsap = self.app.nsap
        snet = next(net for net, adapter in nsap.adapters.items() if adapter is nsap.local_adapter)
        await nsap.update_router_references(snet, Address(f"{route.host}:{route.port}"), [route.network])
        log.info("static route: network %d via %s:%d", route.network, route.host, route.port)

    async def stop(self) -> None:
        if self._bacnet is not None:
            try:
                await asyncio.wait_for(self._bacnet._disconnect(), 3)
            except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - best effort at exit
                log.warning("BACnet stop: %s", exc)
            self._bacnet = None

    # -- points -----------------------------------------------------------------------------

    def set_value(self, name: str, value: Any) -> bool:
        """Set a point's present value; logs ``<name> -> <value>`` and returns True when it changed.

        Analog values take numbers, binary values booleans, the status multi-state value 1..4.
        """
        obj = self.objects.get(name)
        if obj is None:
            return False
        if isinstance(obj, (P.ReadOnlyBinaryValue, P.OptOutBinaryValue)):
            new: Any = BinaryPV("active" if value else "inactive")
            shown = "active" if value else "inactive"
            changed = int(obj.presentValue) != int(new)
        elif isinstance(obj, P.ReadOnlyMultiStateValue):
            new = int(value)
            shown = f"{new} ({obj.stateText[new - 1]})"
            changed = int(obj.presentValue) != new
        else:
            new = float(value)
            shown = str(new)
            changed = float(obj.presentValue) != new
        if changed:
            obj.presentValue = new
            log.log(logging.DEBUG if name in P.DEBUG_LOGGED else logging.INFO, "%s -> %s", name, shown)
        return changed

    def get_value(self, name: str) -> Any:
        obj = self.objects.get(name)
        return None if obj is None else obj.presentValue

    def set_level(self, value: float) -> bool:
        """Set ``ADR-Event-Level`` (its name comes from [points] event_level)."""
        return self.set_value(self.points.event_level, value)

    def set_meter_value(self, value: float) -> None:
        """Mirror a good reading: value, no fault."""
        point = self.objects.get(P.METER_VALUE)
        if point is None:
            return
        self.set_value(P.METER_VALUE, value)
        if point.reliability != Reliability.noFaultDetected:
            point.reliability = Reliability.noFaultDetected
            point.statusFlags = StatusFlags([0, 0, 0, 0])
            log.info("%s: meter answers again, fault cleared", P.METER_VALUE)

    def set_meter_fault(self, reason: str) -> None:
        """Keep the last good value but flag it: statusFlags fault, reliability communication-failure."""
        point = self.objects.get(P.METER_VALUE)
        if point is None or point.reliability == Reliability.communicationFailure:
            return
        point.reliability = Reliability.communicationFailure
        point.statusFlags = StatusFlags([0, 1, 0, 0])
        log.info("%s: fault (communication-failure): %s", P.METER_VALUE, reason)

    @property
    def meter_point(self) -> Any:
        return self.objects.get(P.METER_VALUE)

    @property
    def level(self) -> float:
        value = self.get_value(self.points.event_level)
        return float(value) if value is not None else 0.0

    # -- reads --------------------------------------------------------------------------------

    def bound_apdu_timeout(self, timeout: float) -> None:
        """Make the stack give up on a silent meter within ``timeout`` (default 3 s x 4 tries).
        Applies to the reads this class starts only: the device keeps advertising (and using for its
        COV notifications) its own ``[bacnet] apdu_timeout`` / ``apdu_retries``."""
        self._read_timing = conformance.read_timing(timeout)

    def _check_initiation(self) -> None:
        if not self.may_initiate():
            raise MeterReadError("not read: DeviceCommunicationControl has disabled initiation")

    async def read_present_value(self, ref: PointRef, timeout: float) -> float:
        """Read one numeric property; MeterReadError (never a made-up value) when it fails."""
        address = Address(ref.address)
        objid = ObjectIdentifier(f"{ref.object_type},{ref.instance}")
        prop = PropertyIdentifier(ref.property)
        self._check_initiation()
        with conformance.client_bound(self._read_timing):
            value = await bounded(self.app.read_property(address, objid, prop), timeout, MeterReadError)
        return checked_number(value)

    async def read_many(self, refs: dict[str, PointRef], timeout: float) -> dict[str, float | MeterReadError]:
        """Read many numeric properties: per device, ReadPropertyMultiple in chunks of RPM_CHUNK
        (falling back to ReadProperty for a device that refuses RPM); devices in parallel. Each
        entry is a value or the MeterReadError that says why there is none."""
        by_device: dict[str, list[tuple[str, PointRef]]] = {}
        for stream, ref in refs.items():
            by_device.setdefault(ref.address, []).append((stream, ref))
        results: dict[str, float | MeterReadError] = {}

        async def device(address: str, items: list[tuple[str, PointRef]]) -> None:
            for start in range(0, len(items), RPM_CHUNK):
                chunk = items[start:start + RPM_CHUNK]
                if len(chunk) == 1:
                    results.update(await self._read_single(chunk, timeout))
                    continue
                try:
                    results.update(await self._read_chunk(address, chunk, timeout))
                except MeterReadError as exc:
                    log.debug("ReadPropertyMultiple to %s failed (%s): reading one by one", address, exc)
                    results.update(await self._read_single(chunk, timeout))

        await asyncio.gather(*(device(address, items) for address, items in by_device.items()))
        return results

    async def _read_single(self, items: list[tuple[str, PointRef]], timeout: float) -> dict[str, Any]:
        # At most READS_IN_FLIGHT requests at once: a BACnet device has 256 invoke IDs per peer and an
        # MS/TP device answers one request at a time anyway.
        limit = asyncio.Semaphore(READS_IN_FLIGHT)

        async def one(ref: PointRef) -> float | MeterReadError:
            async with limit:
                try:
                    return await self.read_present_value(ref, timeout)
                except MeterReadError as exc:
                    return exc

        values = await asyncio.gather(*(one(ref) for _, ref in items))
        return {stream: value for (stream, _), value in zip(items, values, strict=True)}

    async def _read_chunk(self, address: str, items: list[tuple[str, PointRef]], timeout: float) -> dict[str, Any]:
        params: list[Any] = []
        for _, ref in items:
            params += [ObjectIdentifier(f"{ref.object_type},{ref.instance}"), [PropertyIdentifier(ref.property)]]
        self._check_initiation()
        with conformance.client_bound(self._read_timing):
            answer = await bounded(self.app.read_property_multiple(Address(address), params), timeout,
                                   MeterReadError)
        found: dict[tuple[str, str], Any] = {}
        for objid, prop, _index, value in answer or []:
            found[(str(objid), str(prop))] = value
        results: dict[str, Any] = {}
        for stream, ref in items:
            key = (str(ObjectIdentifier(f"{ref.object_type},{ref.instance}")), str(PropertyIdentifier(ref.property)))
            if key not in found:
                results[stream] = MeterReadError("missing from the ReadPropertyMultiple answer")
                continue
            try:
                results[stream] = checked_number(found[key])
            except MeterReadError as exc:
                results[stream] = exc
        return results

"""``--probe``, the BACnet side: the gateway's port, the route to the meter's network, one meter read
and each write target's priorityArray (nothing is written). ops/probe.py prints the table.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from typing import Any, Optional

from adrgw.bacnet.device import BacnetStartError, GatewayDevice, MeterReadError, PointRef
from adrgw.config.settings import Settings
from adrgw.core.model import ProbeCheck as Check

# How long routers get to answer a Who-Is-Router-To-Network (bacpypes3 waits its own default).
ROUTE_TIMEOUT = 5.0


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def bacnet_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    s = settings
    device = GatewayDevice(s.bacnet, s.points, meter_unit=s.meter.unit)
    try:
        await device.start()
        checks.append(Check("BACnet port", True, f"{s.bacnet.ip}:{s.bacnet.port} opened"))
    except BacnetStartError:
        # Typically the installed service holds the port: probe from a free port instead (static
        # routes and unicast reads still work; broadcast replies to 47808 would not reach us).
        port = _free_udp_port(s.bacnet.ip)
        checks.append(Check("BACnet port", True, f"{s.bacnet.ip}:{s.bacnet.port} is in use (the running service?); "
                                                 f"probing from port {port}"))
        device = GatewayDevice(replace(s.bacnet, port=port), s.points, meter_unit=s.meter.unit)
        try:
            await device.start()
        except BacnetStartError as exc:
            return [Check("BACnet port", False, str(exc), "set [bacnet] address to this host's interface")]
    try:
        device.bound_apdu_timeout(s.meter.timeout)
        network = s.meter.network
        if network is None:
            checks.append(Check("route to meter", True, f"meter {s.meter.address} is on the local network"))
        else:
            checks.append(await _route_check(device, settings, network))
        ref = PointRef(s.meter.address, s.meter.object_type, s.meter.instance, s.meter.property_id)
        try:
            value = await device.read_present_value(ref, s.meter.timeout)
            checks.append(Check("meter read", True, f"{ref} = {value} (x{s.meter.scale:g} = "
                                                    f"{value * s.meter.scale:g} {s.meter.unit})"))
        except MeterReadError as exc:
            checks.append(Check("meter read", False, f"{ref}: {exc}",
                                "check [meter] address/object/property against the meter, that the router "
                                "forwards to its network, and the MS/TP MAC and baud rate"))
        for target in s.writes:
            checks.append(await _target_check(device, target, s.meter.timeout))
    finally:
        await device.stop()
    return checks


async def _target_check(device: GatewayDevice, target: Any, timeout: float) -> Check:
    """Read the write target's priorityArray once: commandable, and who holds which slot."""
    from bacpypes3.apdu import ErrorRejectAbortNack
    from bacpypes3.basetypes import PropertyIdentifier
    from bacpypes3.pdu import Address
    from bacpypes3.primitivedata import ObjectIdentifier

    from adrgw.bacnet.writer import slot_value

    name = f"write {target.name}"
    oid = ObjectIdentifier(f"{target.object_type},{target.instance}")
    try:
        array = await asyncio.wait_for(device.app.read_property(
            Address(target.address), oid, PropertyIdentifier("priority-array")), max(timeout, 3.0))
    except asyncio.TimeoutError:
        return Check(name, False, f"{target}: no answer", "check the address and that the device is online")
    except ErrorRejectAbortNack as exc:
        return Check(name, False, f"{target}: not commandable ({exc})",
                     "choose a commandable object (with a priorityArray)")
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"{target}: {type(exc).__name__}: {exc}", "check the address and object")
    slots = [slot_value(v) for v in array]
    used = ", ".join(f"{n + 1}={v}" for n, v in enumerate(slots) if v is not None) or "none"
    mine = slots[target.priority - 1] if len(slots) >= target.priority else None
    note = f"; priority {target.priority} is already held ({mine})" if mine is not None else ""
    return Check(name, True, f"{target}: commandable, slots in use: {used}{note}")


async def _route_check(device: GatewayDevice, settings: Settings, network: int) -> Check:
    from bacpypes3.pdu import Address

    static = [r for r in settings.bacnet.routes if r.network == network]
    destination: Optional[Any] = Address(f"{static[0].host}:{static[0].port}") if static else None
    where = f"router {static[0].host}:{static[0].port} (static route)" if static else "broadcast"
    try:
        answers = await asyncio.wait_for(
            device.app.nse.who_is_router_to_network(destination=destination, network=network), ROUTE_TIMEOUT)
    except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - any failure is a failed check
        answers, error = [], f" ({type(exc).__name__})"
    else:
        error = ""
    routers = sorted({str(pdu.pduSource) for _, pdu in answers
                      if network in [int(n) for n in pdu.iartnNetworkList]})
    if routers:
        return Check("route to meter", True, f"network {network} via {', '.join(routers)} ({where})")
    return Check("route to meter", False, f"no router answered for network {network} ({where}){error}",
                 "set [bacnet] routes = %d=ROUTER_IP:47808 where broadcasts do not reach the router; "
                 "check the router is powered and on this subnet" % network)


__all__ = ["ROUTE_TIMEOUT", "bacnet_checks"]

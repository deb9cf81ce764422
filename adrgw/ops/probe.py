"""``--probe``: the commissioning check a technician runs once with the real config.

Reads the meter once, looks for the route to the meter's network, contacts the VTN once (TLS handshake,
fingerprint, registration query) and prints a table of what works and what does not, with a hint for
each failure. Exit 0 only when every check passes. Nothing is registered and nothing is written.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, replace
from typing import Any, Optional

from adrgw.bacnet.device import BacnetStartError, GatewayDevice, MeterReadError, PointRef
from adrgw.config.settings import Settings
from adrgw.openadr.ven import GatewayClient, VtnHttpError, VtnProtocolError, VtnUnreachable

log = logging.getLogger("adrgw.probe")

# How long routers get to answer a Who-Is-Router-To-Network (bacpypes3 waits its own default).
ROUTE_TIMEOUT = 5.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def _bacnet_checks(settings: Settings) -> list[Check]:
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


async def _vtn_check(settings: Settings) -> Check:
    client = GatewayClient(settings.ven)
    try:
        message = client._create_message("oadrQueryRegistration", request_id="probe")
        message_type, payload = await client._perform_request("EiRegisterParty", message)
    except VtnUnreachable as exc:
        hint = ("check the CA (ca_file), client certificate and the host name in vtn_url"
                if "TLS" in str(exc) or "SSL" in str(exc) or "certificate" in str(exc).lower()
                else "check vtn_url, DNS and the firewall (outbound HTTPS)")
        return Check("VTN", False, str(exc), hint)
    except VtnHttpError as exc:
        return Check("VTN", False, str(exc), "the URL path must end in /OpenADR2/Simple/2.0b; ask the utility")
    except VtnProtocolError as exc:
        hint = ("check [ven] vtn_fingerprint against the fingerprint the utility gave you"
                if "not trusted" in str(exc) else "the server at vtn_url does not speak OpenADR 2.0b")
        return Check("VTN", False, str(exc), hint)
    finally:
        await client.close()
    if message_type != "oadrCreatedPartyRegistration":
        return Check("VTN", False, f"unexpected answer {message_type!r} to oadrQueryRegistration",
                     "the server at vtn_url does not speak OpenADR 2.0b")
    tls = "TLS, " if settings.ven.vtn_url.startswith("https://") else ""
    pinned = "fingerprint verified, " if settings.ven.vtn_fingerprint else ""
    vtn_id = payload.get("vtn_id") or "?"
    poll = payload.get("requested_oadr_poll_freq")
    return Check("VTN", True, f"{tls}{pinned}VTN {vtn_id} answers the registration query"
                              + (f" (poll every {poll.total_seconds():g} s)" if poll else ""))


async def run_probe(settings: Settings) -> int:
    checks = await _bacnet_checks(settings)
    if settings.ven.protocol == "3.1":
        from adrgw.openadr3.probe import vtn_rows

        checks += [Check(*row) for row in await vtn_rows(settings.ven)]  # type: ignore[arg-type]
    else:
        checks.append(await _vtn_check(settings))
    width = max(len(c.name) for c in checks)
    print(f"{'check'.ljust(width)}  result  detail")
    for c in checks:
        print(f"{c.name.ljust(width)}  {'OK  ' if c.ok else 'FAIL'}    {c.detail}")
        if not c.ok and c.hint:
            print(f"{''.ljust(width)}          hint: {c.hint}")
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1

"""Runs under Python >= 3.13 with bac-py (an independent BACnet stack): discovers the gateway with
Who-Is, finds the object by name in the device's objectList, reads it, and tries to write it.

  python bacpy_probe.py --target IP:PORT --device 599 --name ADR-Event-Level --port CLIENT_PORT
        [--interface 127.0.0.1] [--broadcast 127.255.255.255] [--who-is-broadcast]

Without --who-is-broadcast the Who-Is goes to --target (on loopback broadcasts do not cross UDP
ports); with it, it is a real broadcast, as a BAS workstation sends on a LAN.
Prints one JSON object on stdout.
"""

import argparse
import asyncio
import json

from bac_py import Client


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--device", type=int, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, default=47808)
    p.add_argument("--interface", default="127.0.0.1")
    p.add_argument("--broadcast", default="127.255.255.255")
    p.add_argument("--who-is-broadcast", action="store_true")
    a = p.parse_args()
    out: dict = {}
    async with Client(instance_number=3999, interface=a.interface, port=a.port,
                      broadcast_address=a.broadcast) as client:
        destination = None if a.who_is_broadcast else a.target
        i_ams = await client.who_is(low_limit=a.device, high_limit=a.device, destination=destination,
                                    timeout=3.0)
        out["i_am"] = [int(getattr(i.object_identifier, "instance_number", -1)) for i in i_ams]
        objects = await client.read(a.target, f"device,{a.device}", "object-list")
        out["object_list"] = [str(o) for o in objects]
        found = None
        for oid in objects:
            if await client.read(a.target, oid, "object-name") == a.name:
                found = oid
        out["found"] = str(found) if found is not None else None
        if found is not None:
            out["present_value"] = float(await client.read(a.target, found, "present-value"))
            try:
                await client.write(a.target, found, "present-value", 9.0)
                out["write"] = "accepted"
            except Exception as exc:  # noqa: BLE001 - report whatever the stack raised
                out["write"] = f"{type(exc).__name__}: {exc}"
            out["present_value_after_write"] = float(await client.read(a.target, found, "present-value"))
    print(json.dumps(out))


asyncio.run(main())

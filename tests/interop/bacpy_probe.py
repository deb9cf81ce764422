"""Runs under Python >= 3.13 with bac-py (an independent BACnet stack): discovers the gateway with
Who-Is, finds ADR-Event-Level by name in the device's objectList, reads it, and tries to write it.

Usage: python bacpy_probe.py GATEWAY_IP:PORT DEVICE_ID OBJECT_NAME CLIENT_PORT
Prints one JSON object on stdout.
"""

import asyncio
import json
import sys

from bac_py import Client


async def main() -> None:
    target, device_id, name, client_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    out: dict = {}
    async with Client(instance_number=3999, interface="127.0.0.1", port=client_port,
                      broadcast_address="127.255.255.255") as client:
        # Who-Is sent to the gateway's address (broadcasts do not cross UDP ports on loopback).
        i_ams = await client.who_is(low_limit=device_id, high_limit=device_id, destination=target, timeout=3.0)
        out["i_am"] = [int(getattr(i.object_identifier, "instance_number", -1)) for i in i_ams]
        objects = await client.read(target, f"device,{device_id}", "object-list")
        out["object_list"] = [str(o) for o in objects]
        found = None
        for oid in objects:
            object_name = await client.read(target, oid, "object-name")
            if object_name == name:
                found = oid
        out["found"] = str(found) if found is not None else None
        if found is not None:
            out["present_value"] = float(await client.read(target, found, "present-value"))
            try:
                await client.write(target, found, "present-value", 9.0)
                out["write"] = "accepted"
            except Exception as exc:  # noqa: BLE001 - report whatever the stack raised
                out["write"] = f"{type(exc).__name__}: {exc}"
            out["present_value_after_write"] = float(await client.read(target, found, "present-value"))
    print(json.dumps(out))


asyncio.run(main())

"""Runs under Python >= 3.13 with bac-py: the device-conformance checks of issue 13 from a first
independent stack (tests/test_conformance.py runs the same kind of checks with @bacnet-js/client).

  python bacpy_conformance.py --target IP:PORT --device 599 --port CLIENT_PORT --password PW
Prints one JSON object: each check's value or "ERROR: <what the stack raised>".
"""

import argparse
import asyncio
import json

from bac_py import Client


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--device", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--password", default="")
    a = p.parse_args()
    out: dict = {}

    async def check(name, coro):
        try:
            value = await asyncio.wait_for(coro, 10)
            out[name] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        except Exception as exc:  # noqa: BLE001 - report whatever the stack raised
            out[name] = f"ERROR: {type(exc).__name__}: {exc}"

    async with Client(instance_number=3996, interface="127.0.0.1", port=a.port) as client:
        dev = f"device,{a.device}"
        await check("vendor_name", client.read(a.target, dev, "vendor-name"))
        await check("vendor_id", client.read(a.target, dev, "vendor-identifier"))
        await check("services", client.read(a.target, dev, "protocol-services-supported"))
        await check("port_all", client.read_multiple(a.target, {"network-port,1": ["all"]}))
        await check("text_message", client.send_text_message(a.target, "hello", timeout=5))
        await check("read_range", client.read_range(a.target, "analog-value,1", "present-value", timeout=5))
        await check("dcc_wrong_password", client.device_communication_control(
            a.target, "disable", 1, "not-" + a.password, timeout=5))
        await check("dcc_disable", client.device_communication_control(a.target, "disable", 1, a.password, timeout=5))
        await check("read_while_disabled", client.read_property(a.target, "analog-value,1", "present-value", timeout=3))
        await check("dcc_enable", client.device_communication_control(a.target, "enable", None, a.password, timeout=5))
        await check("read_after_enable", client.read(a.target, "analog-value,1", "present-value"))
    print(json.dumps(out))


asyncio.run(main())

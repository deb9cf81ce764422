"""Runs under Python >= 3.13 with bac-py: writes one property of the gateway, as a BAS would.

  python bacpy_write.py --target IP:PORT --object binary-value,2 --property present-value \
        --value 1 --type int --port CLIENT_PORT
Prints {"result": "ok"} or {"result": "<error>"} and the value read back.
"""

import argparse
import asyncio
import json

from bac_py import Client

CASTS = {"int": int, "float": float, "str": str}


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--object", required=True)
    p.add_argument("--property", default="present-value")
    p.add_argument("--value", required=True)
    p.add_argument("--type", choices=sorted(CASTS), default="int")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interface", default="127.0.0.1")
    a = p.parse_args()
    out: dict = {}
    async with Client(instance_number=3998, interface=a.interface, port=a.port) as client:
        try:
            await client.write(a.target, a.object, a.property, CASTS[a.type](a.value))
            out["result"] = "ok"
        except Exception as exc:  # noqa: BLE001 - report whatever the stack raised
            out["result"] = f"{type(exc).__name__}: {exc}"
        out["read_back"] = str(await client.read(a.target, a.object, a.property))
    print(json.dumps(out))


asyncio.run(main())

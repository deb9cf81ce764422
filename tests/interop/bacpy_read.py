"""Runs under Python >= 3.13 with bac-py: reads one property (optionally one array element).

  python bacpy_read.py --target IP:PORT --object analog-value,5 --property priority-array [--index 10]
Prints {"value": "<str>"} or {"error": "<error>"}.
"""

import argparse
import asyncio
import json

from bac_py import Client


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--object", required=True)
    p.add_argument("--property", required=True)
    p.add_argument("--index", type=int)
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    async with Client(instance_number=3997, interface="127.0.0.1", port=a.port) as client:
        try:
            value = await client.read(a.target, a.object, a.property, a.index)
            out = {"value": str(value), "repr": repr(value)}
        except Exception as exc:  # noqa: BLE001
            out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))


asyncio.run(main())

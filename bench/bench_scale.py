"""Scale: how many meter points one gateway samples per cycle on loopback, ReadPropertyMultiple grouped
per device (chunks of 40) against one ReadProperty each, from 10 up to 1,000 points behind the router.

Run:  .venv/bin/python bench/bench_scale.py           (about 2 minutes)
      .venv/bin/python bench/bench_scale.py --quick   (smoke run)
Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figures, machine, setup, show, write_result  # noqa: E402

setup()

from adrgw.ops import logsetup  # noqa: E402
from adrgw.bacnet.device import GatewayDevice, MeterReadError, PointRef  # noqa: E402
from adrgw.config.settings import BacnetSettings, PointSettings, Route  # noqa: E402
from adrgw.demo.embedded import SimulatedMeter, free_port  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logsetup.setup("ERROR")
    sizes, cycles = ((10, 50), 2) if args.quick else ((10, 50, 100, 200, 500, 1000), 5)
    meter = SimulatedMeter(port=free_port(socket.SOCK_DGRAM), extra_points=max(sizes))
    await meter.start()
    device = GatewayDevice(BacnetSettings(address="127.0.0.1/8", port=free_port(socket.SOCK_DGRAM, avoid=(meter.port,)),
                                          routes=(Route(12345, "127.0.0.1", meter.port),)),
                           PointSettings(expose=False))
    await device.start()
    device.bound_apdu_timeout(5.0)
    result: dict[str, object] = {"machine": machine(), "quick": args.quick}
    for n in sizes:
        refs = {f"p{i}": PointRef("12345:2", "analogInput", 1000 + i, "presentValue") for i in range(n)}
        for mode in ("rpm", "rp"):
            times, missing = [], 0
            for _ in range(cycles):
                t0 = time.perf_counter()
                if mode == "rpm":
                    values = await device.read_many(refs, 30.0)
                else:
                    values = await device._read_single(list(refs.items()), 30.0)
                times.append((time.perf_counter() - t0) * 1000)
                missing += sum(isinstance(v, MeterReadError) for v in values.values())
            result[f"{mode}_{n}_points_ms"] = figures(times)
            result[f"{mode}_{n}_points_missing"] = missing
    await device.stop()
    await meter.stop()
    print(result["machine"])
    for n in sizes:
        show(f"{n:5d} points, ReadPropertyMultiple", "ms", result[f"rpm_{n}_points_ms"])  # type: ignore[arg-type]
        show(f"{n:5d} points, ReadProperty each   ", "ms", result[f"rp_{n}_points_ms"])  # type: ignore[arg-type]
    write_result("scale", result, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

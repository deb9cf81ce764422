"""Meter cadence: sample period error over 10 minutes at a 10 s interval and over 2 minutes at 1 s, with
the event-loop lag (how long the loop was blocked) meanwhile; real VTN and routed meter on loopback.

Run:  .venv/bin/python bench/bench_cadence.py           (about 12 minutes)
      .venv/bin/python bench/bench_cadence.py --quick   (smoke run: 2 s and 1 s intervals, a few samples each)
Writes bench/results/cadence.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    figures,
    gateway_settings,
    machine,
    record_read_starts,
    setup,
    show,
    start_peers,
    write_result,
)

setup()

from adrgw.ops import logsetup  # noqa: E402
from adrgw.app import Gateway  # noqa: E402


async def cadence(interval: float, seconds: float) -> dict[str, object]:
    vtn, meter = await start_peers(1.0)
    gateway = Gateway(gateway_settings(vtn, meter, interval=interval, timeout=min(3.0, interval / 2),
                                       name="cadence-ven"))
    starts = record_read_starts(gateway)
    await gateway.start()
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = time.time() + seconds

    async def probe() -> None:
        while time.time() < stop:
            before = loop.time()
            await asyncio.sleep(0.05)
            lags.append((loop.time() - before - 0.05) * 1000)

    await probe()
    await gateway.stop()
    await meter.stop()
    await vtn.stop()
    offsets = [(t - round(t / interval) * interval) * 1000 for t in starts]
    periods = [abs((b - a) - interval) * 1000 for a, b in zip(starts, starts[1:], strict=False)]
    return {f"interval_{interval:g}s": {"seconds": seconds, "samples": len(starts),
                                         "read_start_offset_ms": figures(offsets), "period_error_ms": figures(periods),
                                         "loop_lag_ms": figures(lags)}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logsetup.setup("ERROR")
    result: dict[str, object] = {"machine": machine(), "quick": args.quick}
    for interval, seconds in ((2.0, 5.0), (1.0, 3.0)) if args.quick else ((10.0, 600.0), (1.0, 120.0)):
        result.update(await cadence(interval, seconds))
    print(result["machine"])
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key}: {value['samples']} samples over {value['seconds']:g} s")
            for name in ("read_start_offset_ms", "period_error_ms", "loop_lag_ms"):
                show(f"  {name}", "ms", value[name])
    write_result("cadence", result, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

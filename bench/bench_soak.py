"""Soak: the gateway with the demo peers (openleadr VTN, BACnet router + meter), an accelerated meter
interval and short repeating events, for a long time; RSS, open file descriptors, asyncio task count
and event-loop lag are recorded over time. None may grow without bound.

Run:  .venv/bin/python bench/bench_soak.py --minutes 30     (the README's figures)
      .venv/bin/python bench/bench_soak.py --quick          (smoke run, ~10 s: one event of 1.5 s intervals)
Prints a table and writes bench/results/soak.json (and soak-quick.json).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gateway_settings, machine, rss_mb, setup, start_peers, write_result  # noqa: E402

setup()

from adrgw.ops import logsetup  # noqa: E402
from adrgw.app import Gateway  # noqa: E402


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--meter-interval", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    minutes = 0.15 if args.quick else args.minutes
    sample_every = 3.0 if args.quick else 30.0
    step = 1.5 if args.quick else 3.0  # the event's intervals: the smoke run's one event ends before it does
    logsetup.setup("WARNING")
    vtn, meter = await start_peers(1.0)
    settings = gateway_settings(vtn, meter, interval=args.meter_interval,
                                timeout=min(0.15, args.meter_interval * 0.75), name="soak-ven")
    gateway = Gateway(settings)
    await gateway.start()
    await asyncio.wait_for(gateway.link.registered.wait(), 10)
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = asyncio.Event()

    async def lag_probe() -> None:
        # Sleeps 50 ms at a time and records how late it woke: how long the loop was blocked.
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.05)
            lags.append((loop.time() - before - 0.05) * 1000)

    async def events() -> None:
        while not stop.is_set():
            start = datetime.now(timezone.utc) + timedelta(seconds=2)
            vtn.add_event(gateway.link.ven_id or "ven-1", [1.0, 2.0, 3.0], start, timedelta(seconds=step))
            await asyncio.sleep(15)

    probes = [asyncio.create_task(lag_probe()), asyncio.create_task(events())]
    rows: list[dict[str, float]] = []
    delivered = 0
    started = time.monotonic()
    end = started + minutes * 60
    while time.monotonic() < end:
        await asyncio.sleep(min(sample_every, max(0.0, end - time.monotonic())))
        window, lags[:] = lags[:], []
        # The in-process VTN keeps every reading it receives (demo bookkeeping, not the gateway's):
        # count and forget them so the RSS curve is the gateway's.
        delivered += len(vtn.record.readings)
        vtn.record.readings.clear()
        vtn.record.by_resource.clear()
        rows.append({"minute": round((time.monotonic() - started) / 60, 2), "rss_mb": round(rss_mb(), 1),
                     "fds": open_fds(), "tasks": len(asyncio.all_tasks()),
                     "lag_max_ms": round(max(window, default=0.0), 2),
                     "lag_median_ms": round(statistics.median(window), 2) if window else 0.0,
                     "samples_delivered": delivered, "queued": len(gateway.samples)})
        print(rows[-1], flush=True)
    stop.set()
    for task in probes:
        task.cancel()
    await asyncio.gather(*probes, return_exceptions=True)
    result = {"machine": machine(),
              "minutes": minutes, "meter_interval_s": args.meter_interval, "rows": rows,
              "samples_taken": gateway.sampler.samples, "read_errors": gateway.sampler.read_errors,
              "events_scheduled": len(vtn.record.opts)}
    await gateway.stop()
    await meter.stop()
    await vtn.stop()
    print(result["machine"])
    half = rows[len(rows) // 2:] or rows
    print(f"soak {minutes:g} min, meter every {args.meter_interval} s: {result['samples_taken']} samples, "
          f"{result['read_errors']} read errors, {result['events_scheduled']} event answers")
    print(f"RSS first {rows[0]['rss_mb']} MB, last {rows[-1]['rss_mb']} MB, max {max(r['rss_mb'] for r in rows)} MB; "
          f"fds {rows[0]['fds']} -> {rows[-1]['fds']}; tasks {rows[0]['tasks']} -> {rows[-1]['tasks']}; "
          f"loop lag max {max(r['lag_max_ms'] for r in rows)} ms (second half {max(r['lag_max_ms'] for r in half)} ms)")
    write_result("soak", result, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

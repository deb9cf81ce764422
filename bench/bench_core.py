"""Core figures of the gateway, measured with the real peers on loopback.

* boundary lag: scheduled interval boundary -> a BACnet client (bacpypes3, its own port, polling
  every 2 ms) sees the new ADR-Event-Level;
* meter period error: actual start of each meter read - its cadence instant;
* RSS and CPU of ``bacnet_server_ven.py --demo`` (a separate process) after it settled.

Run:  .venv/bin/python bench/bench_core.py            (about 2.5 minutes)
      .venv/bin/python bench/bench_core.py --quick    (smoke run, a few seconds of each)
Prints median / p95 / max and writes bench/results/core.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ROOT,
    cpu_seconds,
    figures,
    gateway_settings,
    machine,
    record_read_starts,
    rss_mb,
    setup,
    show,
    start_peers,
    write_result,
)

setup()

from adrgw.ops import logsetup  # noqa: E402
from adrgw.app import Gateway  # noqa: E402
from adrgw.demo.embedded import free_port  # noqa: E402


async def boundary_and_cadence(intervals: int, meter_seconds: float) -> dict[str, object]:
    from bacpypes3.app import Application
    from bacpypes3.basetypes import PropertyIdentifier
    from bacpypes3.local.device import DeviceObject
    from bacpypes3.local.networkport import NetworkPortObject
    from bacpypes3.pdu import Address
    from bacpypes3.primitivedata import ObjectIdentifier

    vtn, meter = await start_peers(1.0)
    settings = gateway_settings(vtn, meter)
    gw_port = settings.bacnet.port
    gateway = Gateway(settings)
    read_starts = record_read_starts(gateway)
    await gateway.start()
    client = Application.from_object_list([
        DeviceObject(objectIdentifier=("device", 3002), objectName="bench-client", vendorIdentifier=999),
        NetworkPortObject(f"127.0.0.1/8:{free_port(socket.SOCK_DGRAM, avoid=(gw_port, meter.port))}",
                          objectIdentifier=("network-port", 1), objectName="NP1")])
    lags: list[float] = []
    try:
        await asyncio.wait_for(gateway.link.registered.wait(), 10)
        step = timedelta(seconds=2)
        start = datetime.now(timezone.utc) + timedelta(seconds=3)
        levels = [float(n % 3 + 1) for n in range(intervals)] + []
        vtn.add_event(gateway.link.ven_id, levels, start, step)
        boundaries = [start + n * step for n in range(intervals + 1)]
        expected = levels + [0.0]
        address = Address(f"127.0.0.1:{gw_port}")
        oid, pv = ObjectIdentifier("analog-value,1"), PropertyIdentifier("present-value")
        index = 0
        last = None
        deadline = time.time() + 5 + intervals * 2 + 3
        while index < len(boundaries) and time.time() < deadline:
            value = float(await client.read_property(address, oid, pv))
            now = datetime.now(timezone.utc)
            if value != last and now >= boundaries[index] and value == expected[index]:
                lags.append((now - boundaries[index]).total_seconds() * 1000)
                index += 1
            last = value
            await asyncio.sleep(0.002)
        remaining = meter_seconds - (time.time() - read_starts[0] if read_starts else 0)
        if remaining > 0:
            await asyncio.sleep(remaining)
    finally:
        client.close()
        await gateway.stop()
        await meter.stop()
        await vtn.stop()
    errors = [(t - round(t)) * 1000 for t in read_starts]
    periods = [(b - a) * 1000 - 1000 for a, b in zip(read_starts, read_starts[1:], strict=False)]
    return {"boundary_lag_ms": figures(lags), "read_start_offset_ms": figures(errors),
            "period_error_ms": figures([abs(p) for p in periods]),
            "boundaries_seen": len(lags), "boundaries_expected": intervals + 1}


async def demo_cost(settle: float, measure: float) -> dict[str, object]:
    home = tempfile.mkdtemp(prefix="adrgw-bench-demo-")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bacnet_server_ven.py"), "--demo", "--log-level", "WARNING",
        cwd=home, env=dict(os.environ, HOME=home), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.sleep(settle)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(measure)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        return {"demo_rss_mb": round(rss_mb(proc.pid), 1), "demo_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
                "measured_seconds": round(t1 - t0, 1)}
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 15)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    logsetup.setup("WARNING")
    intervals, meter_seconds, settle, measure = (2, 4, 2, 1.5) if args.quick else (20, 60, 20, 60)
    result: dict[str, object] = {"machine": machine(), "quick": args.quick}
    result.update(await boundary_and_cadence(intervals, meter_seconds))
    result.update(await demo_cost(settle, measure))
    print(result["machine"])
    show("interval-boundary lag (BACnet client view, 2 ms polling)", "ms", result["boundary_lag_ms"])  # type: ignore[arg-type]
    show("meter read start - cadence instant", "ms", result["read_start_offset_ms"])  # type: ignore[arg-type]
    show("meter period error |period - 1 s|", "ms", result["period_error_ms"])  # type: ignore[arg-type]
    print(f"--demo: RSS {result['demo_rss_mb']} MB, CPU {result['demo_cpu_percent']} % of one core "
          f"(over {result['measured_seconds']} s)")
    write_result("core", result, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

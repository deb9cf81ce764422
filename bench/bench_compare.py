"""The gateway against a seed-style design, and its costs, on loopback with the real peers.

1. Interval-boundary lag seen by a BACnet client (polling every 10 ms, and by COV notification) for the
   gateway (timer armed for each boundary) and, in the same run, for a seed-style device whose point is
   set by a periodic check loop every 5 s (as the original example does), from the same events.
2. Event delivery: VTN add_event for an event already in progress -> point change, at poll 1 s and 10 s.
3. BACnet server load: ReadProperty requests per second the gateway answers while the VEN runs, and the
   boundary lag meanwhile.
4. Cost of the gateway process alone: start-up to READY (sd_notify), RSS and CPU idle (10 s meter, 10 s
   polls) and busy (0.2 s meter, 1 s polls).

Run:  .venv/bin/python bench/bench_compare.py           (about 6 minutes)
      .venv/bin/python bench/bench_compare.py --quick   (smoke run, ~20 s: shorter steps, a 2 s seed check
                                                         loop, one delivery trial, the cost processes settled
                                                         by READY instead of a fixed 5 s)
Prints median / p95 / max and writes bench/results/compare.json.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ROOT,
    cpu_seconds,
    figures,
    gateway_settings,
    machine,
    rss_mb,
    setup,
    show,
    start_peers,
    udp,
    write_result,
)

setup()

from adrgw.ops import logsetup  # noqa: E402
from adrgw.app import Gateway  # noqa: E402
from adrgw.bacnet.points import ReadOnlyAnalogValue  # noqa: E402
from adrgw.core.schedule import evaluate  # noqa: E402

SEED_PERIOD = 5.0  # the original example re-checks the event every 5 s


def bacnet_app(port: int, device_id: int, objects: list[Any] = ()) -> Any:  # type: ignore[assignment]
    from bacpypes3.app import Application
    from bacpypes3.local.device import DeviceObject
    from bacpypes3.local.networkport import NetworkPortObject

    return Application.from_object_list([
        DeviceObject(objectIdentifier=("device", device_id), objectName=f"bench-{device_id}", vendorIdentifier=999),
        NetworkPortObject(f"127.0.0.1/8:{port}", objectIdentifier=("network-port", 1), objectName="NP1"),
        *objects])


async def boundary_lag(intervals: int, step: float, seed_period: float = SEED_PERIOD, lead: float = 3.0,
                       quick: bool = False) -> dict[str, Any]:
    from bacpypes3.basetypes import PropertyIdentifier
    from bacpypes3.pdu import Address
    from bacpypes3.primitivedata import ObjectIdentifier

    vtn, meter = await start_peers(1.0)
    gateway = Gateway(gateway_settings(vtn, meter))
    await gateway.start()
    seed_port = udp(meter.port, gateway.settings.bacnet.port)
    seed_point = ReadOnlyAnalogValue(objectIdentifier=("analog-value", 1), objectName="ADR-Event-Level",
                                     presentValue=0.0, units="noUnits", covIncrement=0.0,
                                     statusFlags=[0, 0, 0, 0], eventState="normal", outOfService=False)
    seed = bacnet_app(seed_port, 5999, [seed_point])
    client = bacnet_app(udp(meter.port, gateway.settings.bacnet.port, seed_port), 3003)
    stop = asyncio.Event()

    async def seed_loop() -> None:  # the seed-style design: look every 5 s
        while not stop.is_set():
            seed_point.presentValue = evaluate(gateway.controller.events.values(), datetime.now(timezone.utc)).level
            await asyncio.sleep(seed_period)

    devices = {"gateway": Address(f"127.0.0.1:{gateway.settings.bacnet.port}"),
               "seed": Address(f"127.0.0.1:{seed_port}")}
    seen_poll: dict[str, list[tuple[float, float]]] = {k: [] for k in devices}
    seen_cov: dict[str, list[tuple[float, float]]] = {k: [] for k in devices}
    oid, pv = ObjectIdentifier("analog-value,1"), PropertyIdentifier("present-value")

    async def poll(name: str) -> None:
        last = None
        while not stop.is_set():
            try:
                value = float(await asyncio.wait_for(client.read_property(devices[name], oid, pv), 1))
            except (asyncio.TimeoutError, BaseException):  # noqa: B036 - keep polling
                value = last
            if value != last:
                seen_poll[name].append((time.time(), value))
                last = value
            await asyncio.sleep(0.01)

    async def cov(name: str) -> None:
        async with client.change_of_value(devices[name], oid, None, False, 600) as subscription:
            while True:
                prop, value = await subscription.get_value()
                if str(prop) == "present-value":
                    seen_cov[name].append((time.time(), float(value)))

    await asyncio.wait_for(gateway.link.registered.wait(), 10)
    tasks = [asyncio.create_task(c) for c in (seed_loop(), poll("gateway"), poll("seed"), cov("gateway"), cov("seed"))]
    start = (datetime.now(timezone.utc) + timedelta(seconds=lead)).replace(microsecond=0) + timedelta(seconds=1)
    levels = [float(n % 3 + 1) for n in range(intervals)]
    vtn.add_event(gateway.link.ven_id, levels, start, timedelta(seconds=step))
    boundaries = [(start + n * timedelta(seconds=step)).timestamp() for n in range(intervals + 1)]
    expected = levels + [0.0]
    settle_until = boundaries[-1] + seed_period + 1
    await asyncio.sleep(max(0.0, boundaries[-1] - time.time()))
    if quick:  # the smoke run stops as soon as every observer saw the last level (only the first change counts)
        while time.time() < settle_until and not all(
                any(t >= boundaries[-1] - 0.001 and v == expected[-1] for t, v in data[name])
                for data in (seen_poll, seen_cov) for name in devices):
            await asyncio.sleep(0.05)
    else:
        await asyncio.sleep(max(0.0, settle_until - time.time()))
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    client.close()
    seed.close()
    await gateway.stop()
    await meter.stop()
    await vtn.stop()

    def lags(changes: list[tuple[float, float]]) -> list[float]:
        out = []
        for boundary, level in zip(boundaries, expected, strict=True):
            hit = next((t for t, v in changes if t >= boundary - 0.001 and v == level), None)
            if hit is not None:
                out.append((hit - boundary) * 1000)
        return out

    result = {f"{how}_{name}_ms": figures(lags(data[name])) for how, data in (("poll", seen_poll), ("cov", seen_cov))
              for name in devices}
    result["boundaries"] = len(boundaries)
    return result


async def event_delivery(poll: float, trials: int) -> dict[str, Any]:
    vtn, meter = await start_peers(poll)
    gateway = Gateway(gateway_settings(vtn, meter, interval=10.0))
    await gateway.start()
    await asyncio.wait_for(gateway.link.registered.wait(), 30)
    await asyncio.sleep(1)
    delays = []
    for n in range(trials):
        level = float(n % 3 + 1)
        t0 = time.perf_counter()
        event_id = vtn.add_event(gateway.link.ven_id, [level], datetime.now(timezone.utc) - timedelta(seconds=1),
                                 timedelta(minutes=10))
        while gateway.device.level != level and time.perf_counter() - t0 < poll * 3 + 5:
            await asyncio.sleep(0.002)
        delays.append((time.perf_counter() - t0) * 1000)
        vtn.cancel_event(gateway.link.ven_id, event_id)
        while gateway.device.level != 0.0 and time.perf_counter() - t0 < poll * 6 + 10:
            await asyncio.sleep(0.01)
        await asyncio.sleep(poll * 0.37)  # de-phase from the poll cycle
    await gateway.stop()
    await meter.stop()
    await vtn.stop()
    return {f"delivery_poll_{poll:g}s_ms": figures(delays)}


async def server_load(seconds: float) -> dict[str, Any]:
    from bacpypes3.basetypes import PropertyIdentifier
    from bacpypes3.pdu import Address
    from bacpypes3.primitivedata import ObjectIdentifier

    vtn, meter = await start_peers(1.0)
    gateway = Gateway(gateway_settings(vtn, meter))
    changes: list[tuple[float, float]] = []
    original = gateway.device.set_level

    def recording(value: float) -> bool:
        changed = original(value)
        if changed:
            changes.append((time.time(), float(value)))
        return changed

    gateway.device.set_level = recording  # type: ignore[method-assign]
    await gateway.start()
    await asyncio.wait_for(gateway.link.registered.wait(), 10)
    clients = [bacnet_app(udp(meter.port, gateway.settings.bacnet.port), 3100 + n) for n in range(4)]
    address = Address(f"127.0.0.1:{gateway.settings.bacnet.port}")
    oid, pv = ObjectIdentifier("analog-value,1"), PropertyIdentifier("present-value")
    count = 0
    stop = time.time() + seconds

    async def hammer(client: Any) -> None:
        nonlocal count
        while time.time() < stop:
            try:
                await asyncio.wait_for(client.read_property(address, oid, pv), 2)
                count += 1
            except (asyncio.TimeoutError, BaseException):  # noqa: B036
                pass

    start = (datetime.now(timezone.utc) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
    n_int = max(1, int(seconds // 2) - 2)
    vtn.add_event(gateway.link.ven_id, [float(n % 3 + 1) for n in range(n_int)], start, timedelta(seconds=1))
    t0 = time.time()
    await asyncio.gather(*(hammer(c) for c in clients))
    elapsed = time.time() - t0
    boundaries = [(start + timedelta(seconds=n)).timestamp() for n in range(n_int + 1)]
    lags = []
    for boundary in boundaries:
        hit = next((t for t, _ in changes if t >= boundary - 0.001), None)
        if hit is not None and hit - boundary < 1:
            lags.append((hit - boundary) * 1000)
    for c in clients:
        c.close()
    await gateway.stop()
    await meter.stop()
    await vtn.stop()
    return {"readproperty_per_second": round(count / elapsed, 1), "boundary_lag_under_load_ms": figures(lags)}


async def process_cost(seconds: float, starts: int, quick: bool = False) -> dict[str, Any]:
    vtn, meter = await start_peers(10.0)
    home = Path(tempfile.mkdtemp(prefix="adrgw-bench-proc-"))
    results: dict[str, Any] = {}
    ready_times = []
    sock_path = str(home / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.setblocking(False)

    async def spawn(interval: float) -> Any:
        (home / "config.ini").write_text(f"""
[ven]
ven_name = cost-ven
vtn_url = {vtn.url}
[bacnet]
address = 127.0.0.1/8
port = {udp(meter.port)}
routes = 12345=127.0.0.1:{meter.port}
[meter]
interval = {interval}
timeout = {min(1.0, interval * 0.5)}
""")
        log = open(home / "gateway.log", "ab")  # noqa: SIM115 - closed with the process
        return await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bacnet_server_ven.py"), "--log-level", "WARNING", cwd=str(home),
            env=dict(os.environ, HOME=str(home), NOTIFY_SOCKET=sock_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=log)

    async def wait_ready(t0: float) -> float:
        while True:
            try:
                if b"READY=1" in sock.recv(4096):
                    return time.perf_counter() - t0
            except BlockingIOError:
                await asyncio.sleep(0.005)

    async def stop(proc: Any) -> None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)

    for _ in range(starts):
        t0 = time.perf_counter()
        proc = await spawn(10.0)
        try:
            ready_times.append(await asyncio.wait_for(wait_ready(t0), 60) * 1000)
        except asyncio.TimeoutError:
            print("no READY within 60 s; gateway log tail:\n" + (home / "gateway.log").read_text()[-2000:])
        await stop(proc)
    results["start_to_ready_ms"] = figures(ready_times)
    for label, interval in (("idle", 10.0), ("busy", 0.2)):
        t0 = time.perf_counter()
        proc = await spawn(interval)
        if quick:  # the smoke run: settled once READY (its start-up time counts as a start) and 1 s more
            ready_times.append(await asyncio.wait_for(wait_ready(t0), 60) * 1000)
            await asyncio.sleep(1)
        else:
            await asyncio.sleep(5)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(seconds)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        results[f"{label}_cpu_percent"] = round(100 * (c1 - c0) / (t1 - t0), 2)
        results[f"{label}_rss_mb"] = round(rss_mb(proc.pid), 1)
        await stop(proc)
    if quick:
        results["start_to_ready_ms"] = figures(ready_times)
    sock.close()
    await meter.stop()
    await vtn.stop()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logsetup.setup("ERROR")
    q = args.quick
    result: dict[str, Any] = {"machine": machine(), "quick": q}
    if q:
        result.update(await boundary_lag(intervals=2, step=2.0, seed_period=2.0, lead=2.0, quick=True))
    else:
        result.update(await boundary_lag(intervals=12, step=6.0))
    result.update(await event_delivery(1.0, 1 if q else 10))
    if not q:
        result.update(await event_delivery(10.0, 6))
    result.update(await server_load(4 if q else 20))
    result.update(await process_cost(1.5 if q else 60, 0 if q else 5, quick=q))
    print(result["machine"])
    for key, value in result.items():
        if isinstance(value, dict):
            show(key, "ms", value)
    g, s = result["poll_gateway_ms"], result["poll_seed_ms"]
    if g.get("n") and s.get("n"):
        print(f"seed-style / gateway boundary lag (polling client, medians): {s['median'] / max(g['median'], 0.001):.0f}x")
    print(f"ReadProperty answered: {result['readproperty_per_second']}/s; "
          f"CPU idle {result['idle_cpu_percent']} % / busy {result['busy_cpu_percent']} % of one core; "
          f"RSS idle {result['idle_rss_mb']} MB / busy {result['busy_rss_mb']} MB")
    write_result("compare", result, q)


if __name__ == "__main__":
    asyncio.run(main())

"""Event delivery latency: the VTN creates an active event -> ADR-Event-Level moves (issue 20).

OpenADR 3.1 over MQTT (poll_interval 30 s, so only the notification can bring it), 3.1 polling every
10 s, and 2.0b pull at its default 10 s poll, N events each (a new event outranks the previous one by
recency, its level differs). Run: .venv/bin/python bench/bench_event_latency31.py [--quick]
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import _common as C

C.setup()
sys.path.insert(0, str(C.ROOT))


async def trial_loop(gateway, create, n: int, phase: float) -> list[float]:
    """``phase``: the events are created at a random moment within it (a poll period: a random phase)."""
    latencies = []
    for k in range(n):
        level = float(1 + k % 3)
        await asyncio.sleep(random.uniform(0.2, phase))
        started = time.monotonic()
        create(level)
        while gateway.device.level != level:
            await asyncio.sleep(0.002)
        latencies.append((time.monotonic() - started) * 1000)
    return latencies


async def run31(mode: str, n: int, period: float) -> list[float]:
    from adrgw.app import Gateway
    from adrgw.demo.vtn31 import MqttBroker, Vtn31
    from adrgw.demo.embedded import SimulatedMeter, free_port
    from tests.support.ven31 import simple, ven31_settings

    broker = MqttBroker(port=free_port())
    await broker.start()
    vtn = Vtn31(port=free_port(), mqtt=broker.url)
    await vtn.start()
    meter = SimulatedMeter(port=C.udp())
    await meter.start()
    vtn.add_program("p1")
    ven = {"notifications": "auto", "poll_interval": 30.0} if mode == "mqtt" else \
        {"notifications": "poll", "poll_interval": period}
    gateway = Gateway(ven31_settings(vtn.url, meter, Path(tempfile.mkdtemp()), **ven))
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.link.registered.wait(), 10)
        if mode == "mqtt":
            while not gateway.link.mqtt_connected:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        now = datetime.now(timezone.utc)
        return await trial_loop(gateway, lambda level: vtn.add_event(
            "p1", **simple([level], now - timedelta(seconds=1), 3600)), n, 1.2 if mode == "mqtt" else period)
    finally:
        await gateway.stop()
        await vtn.stop()
        await meter.stop()
        await broker.stop()


async def run2b(n: int, period: float) -> list[float]:
    from adrgw.app import Gateway
    from tests.support.config import gateway_settings

    vtn, meter = await C.start_peers(poll=period)
    gateway = Gateway(gateway_settings(vtn.url, meter, Path(tempfile.mkdtemp())))
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.link.registered.wait(), 20)
        now = datetime.now(timezone.utc)
        return await trial_loop(gateway, lambda level: vtn.add_event(
            gateway.link.ven_id, [level], now - timedelta(seconds=1), timedelta(hours=1)), n, period)
    finally:
        await gateway.stop()
        await vtn.stop()
        await meter.stop()


async def main() -> None:
    quick = "--quick" in sys.argv
    n, period = (2, 1.0) if quick else (20, 10.0)  # the smoke run polls every 1 s
    print(C.machine())
    result = {"machine": C.machine(), "events_per_mode": n, "poll_period_s": period}
    for name, run in (("3.1 MQTT (poll_interval 30 s)", lambda: run31("mqtt", n, period)),
                      (f"3.1 poll every {period:g} s", lambda: run31("poll", n, period)),
                      (f"2.0b pull, {period:g} s poll", lambda: run2b(n, period))):
        figures = C.figures(await run())
        C.show(name, "ms", figures)
        result[name] = figures
    C.write_result("event_latency31", result, quick)


if __name__ == "__main__":
    asyncio.run(main())

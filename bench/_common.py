"""Shared helpers of the benchmarks: hermetic HOME for BAC0, figures, machine line, results JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def setup() -> None:
    """Call before importing adrgw: BAC0 writes ~/.BAC0 at import; the repo must be importable."""
    os.environ["HOME"] = tempfile.mkdtemp(prefix="adrgw-bench-home-")
    sys.path.insert(0, str(ROOT))


def machine() -> str:
    return (f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.platform()}")


def rss_mb(pid: Any = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: Any = "self") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def figures(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(values), "median": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


def show(name: str, unit: str, f: dict[str, float]) -> None:
    if not f.get("n"):
        print(f"{name}: no data")
        return
    print(f"{name}: n={f['n']} median={f['median']:.2f} {unit} p95={f['p95']:.2f} {unit} max={f['max']:.2f} {unit}")


def write_result(name: str, result: dict[str, Any], quick: bool) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / (f"{name}-quick.json" if quick else f"{name}.json")).write_text(json.dumps(result, indent=2))


# -- the real peers and the gateway's settings (import adrgw only after setup()) ---------------------

def udp(*avoid: int) -> int:
    """A free UDP port on 127.0.0.1, other than ``avoid``."""
    import socket

    from adrgw.demo.embedded import free_port

    return free_port(socket.SOCK_DGRAM, avoid=avoid)


async def start_peers(poll: float = 1.0) -> tuple[Any, Any]:
    """openleadr VTN (polls every ``poll`` s) and the router + meter on network 12345, started."""
    from adrgw.demo.embedded import DemoVtn, SimulatedMeter, free_port

    vtn = DemoVtn(port=free_port(), poll_freq=poll)
    meter = SimulatedMeter(port=udp())
    await vtn.start()
    await meter.start()
    return vtn, meter


def gateway_settings(vtn: Any, meter: Any, interval: float = 1.0, timeout: float = 0.5,
                     name: str = "bench-ven") -> Any:
    """Settings for a gateway on a free port of 127.0.0.1, routed to ``meter``, with a fresh state dir."""
    from adrgw.config.settings import (
        BacnetSettings,
        MeterSettings,
        Route,
        Settings,
        StateSettings,
        VenSettings,
    )

    return Settings(ven=VenSettings(ven_name=name, vtn_url=vtn.url, request_timeout=5, retry_max=2),
                    bacnet=BacnetSettings(address="127.0.0.1/8", port=udp(meter.port),
                                          routes=(Route(12345, "127.0.0.1", meter.port),)),
                    meter=MeterSettings(interval=interval, timeout=timeout),
                    state=StateSettings(directory=tempfile.mkdtemp(prefix="adrgw-bench-state-")), source="(bench)")


def record_read_starts(gateway: Any) -> list[float]:
    """Wrap the gateway's meter read (before start()) so each read's start time is recorded."""
    import time

    starts: list[float] = []
    original = gateway._read_meter

    async def timed() -> float:
        starts.append(time.time())
        return await original()

    gateway.sampler._read = timed
    return starts

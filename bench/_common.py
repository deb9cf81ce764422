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

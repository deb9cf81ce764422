"""Log volume: INFO lines per hour of a real gateway process at 10 s sampling, outside events and
during an event (the figures the README's "Logs" section states).

The gateway runs as users run it (``python bacnet_server_ven.py -c config.ini``, a separate process)
against the real demo peers (openleadr VTN polling every 10 s, BACnet router + meter on loopback).
Phase 1 has no event; phase 2 lies entirely inside one event with 2 intervals (one level change),
with a countdown visible before it. Lines are counted per phase from the process's stderr, and
scaled to one hour.

Run:  .venv/bin/python bench/bench_logs.py                  (the README's figures, ~7 min)
      .venv/bin/python bench/bench_logs.py --quick          (smoke run, ~15 s: 4 s phases, the VTN polls every 1 s)
      .venv/bin/python bench/bench_logs.py --root DIR       (measure another checkout, e.g. the old code)
Prints a table and writes bench/results/logs.json (and logs-quick.json).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, setup, start_peers, udp, write_result  # noqa: E402

setup()

from adrgw.ops import logsetup  # noqa: E402


def config_text(vtn_url: str, gateway_port: int, router_port: int, state: str) -> str:
    return (f"[ven]\nven_name = logs-ven\nvtn_url = {vtn_url}\n"
            f"[bacnet]\naddress = 127.0.0.1/8\nport = {gateway_port}\nroutes = 12345=127.0.0.1:{router_port}\n"
            f"[meter]\ninterval = 10\ntimeout = 3\n[state]\ndirectory = {state}\n")


def kind(line: str) -> str:
    """A short label for a log line: its logger and the first words (for the breakdown table)."""
    parts = line.split(" ", 4)
    if len(parts) < 5:
        return line[:40]
    words = parts[4].split()
    head = re.sub(r"[0-9a-f]{6,}.*|\d.*", "", " ".join(words[:2])).strip() if words else ""
    return f"{parts[3]} {head}"[:48]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", type=float, default=200.0, help="seconds per phase")
    parser.add_argument("--root", default=str(ROOT), help="checkout whose bacnet_server_ven.py is measured")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    phase = 4.0 if args.quick else args.phase
    logsetup.setup("WARNING")
    # The smoke run polls every second, so its event arrives (and changes level) within its short phase.
    poll = 1.0 if args.quick else 10.0
    vtn, meter = await start_peers(poll)
    logsetup.setup("WARNING")  # openleadr sets its own logger to INFO when the VTN is imported
    work = Path(tempfile.mkdtemp(prefix="adrgw-bench-logs-"))
    (work / "config.ini").write_text(config_text(vtn.url, udp(meter.port), meter.port, str(work / "state")))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(args.root) / "bacnet_server_ven.py"), "-c", str(work / "config.ini"),
        cwd=str(work), env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    lines: list[tuple[float, str]] = []

    async def read() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))

    reader = asyncio.create_task(read())
    try:
        deadline = time.monotonic() + 60
        while not vtn.ven_ids and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2 if args.quick else 12)  # past registration and the first report
        t0 = time.monotonic()
        await asyncio.sleep(phase)
        t1 = time.monotonic()
        # The event covers the whole second phase: starts 1 s after t1 with two intervals.
        ven_id = next(iter(vtn.ven_ids.values()))
        start = datetime.now(timezone.utc) + timedelta(seconds=1)
        vtn.add_event(ven_id, [1.0, 2.0], start, timedelta(seconds=phase / 2 + (1 if args.quick else 10)))
        await asyncio.sleep(phase + 1)
        t2 = time.monotonic()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        await asyncio.wait_for(reader, 5)
        await meter.stop()
        await vtn.stop()

    def info(a: float, b: float) -> list[str]:
        return [text for t, text in lines if a <= t < b and " INFO " in text]

    outside, during = info(t0, t1), info(t1, t2)
    per_hour = {"outside events": len(outside) * 3600 / (t1 - t0), "during an event": len(during) * 3600 / (t2 - t1)}
    print(machine())
    print(f"gateway {args.root}: 10 s sampling, VTN polls every {poll:g} s, {phase:g} s per phase")
    for name, value in per_hour.items():
        print(f"  INFO lines per hour {name}: {value:.0f}")
    for name, chosen in (("outside events", outside), ("during an event", during)):
        print(f"  breakdown {name}:")
        for label, count in Counter(kind(line) for line in chosen).most_common(8):
            print(f"    {count:4d}  {label}")
    tracebacks = sum("Traceback" in text for _, text in lines)
    print(f"  tracebacks: {tracebacks}")
    write_result("logs", {"machine": machine(), "phase_seconds": phase, "root": args.root,
                          "info_lines_per_hour": per_hour, "tracebacks": tracebacks}, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

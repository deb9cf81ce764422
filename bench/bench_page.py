"""Status page cost: render time with 24 h of 10 s samples (8,640 points), and the event boundary lag
while clients flood the page; a real gateway with real peers (openleadr VTN, routed meter) on loopback.

The 24 h of meter history are written into the state store before the gateway starts (a gateway
does not run for a day inside a benchmark); everything else is live: the gateway samples the meter
every 10 s, reports to the VTN, and follows real events from the VTN.

Measured:
  chart_ms      render_chart() alone (pure: 24 h of samples -> SVG, downsampled, gaps kept)
  cold_ms       the whole page with nothing cached: sqlite queries (store thread) + chart + HTML
  warm_ms       the whole page when the chart is reused (no new sample since the last request)
  http_ms       GET / end to end over loopback (one client at a time, as a browser refreshing)
  lag_idle_ms   how late ADR-Event-Level changes after each interval boundary, nobody on the page
  lag_flood_ms  the same while 16 clients in another process request / as fast as they can

Run:  .venv/bin/python bench/bench_page.py            (about 3 minutes)
      .venv/bin/python bench/bench_page.py --quick    (smoke run: 3 renders, events of two 1 s intervals)
      .venv/bin/python bench/bench_page.py --screenshot docs/status-page.png   (needs chromium)
Writes bench/results/page.json.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import sqlite3
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figures, gateway_settings, machine, setup, show, start_peers, write_result  # noqa: E402

setup()

import aiohttp  # noqa: E402

from adrgw.ops import logsetup  # noqa: E402
from adrgw.app import Gateway  # noqa: E402
from adrgw.config.settings import HttpSettings  # noqa: E402
from adrgw.ops.pages import render_page  # noqa: E402
from adrgw.ops.chart import render_chart  # noqa: E402
from adrgw.ops.facts import collect  # noqa: E402
from adrgw.ops.statusview import ChartCache, page_view  # noqa: E402

FLOOD = r"""
import sys, threading, http.client, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
count = [0, 0]
def worker():
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/"); r = c.getresponse(); r.read(); c.close()
            count[0 if r.status == 200 else 1] += 1
        except Exception:
            count[1] += 1
threads = [threading.Thread(target=worker) for _ in range(16)]
[t.start() for t in threads]; [t.join() for t in threads]
print(count[0], count[1])
"""


def prefill(state_dir: str, interval: float, now: float) -> int:
    """24 h of samples on the cadence, with three meter outages (gaps), into the state store."""
    from adrgw.persist.store import FILENAME

    outages = [(now - 20 * 3600, now - 19.5 * 3600), (now - 9 * 3600, now - 8.9 * 3600),
               (now - 2 * 3600, now - 1.75 * 3600)]
    start = (now - 86400) // interval * interval
    rows = []
    t = start
    while t < now - interval:
        if not any(a <= t < b for a, b in outages):
            hour = (t % 86400) / 3600
            base = 80 + 40 * max(0.0, 1 - abs(hour - 14) / 6)  # an office day: peak mid-afternoon
            rows.append((t, round(base + 3 * math.sin(t / 600) + 1.5 * math.sin(t / 97), 2)))
        t += interval
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(Path(state_dir) / FILENAME)
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS meter_history (ts REAL PRIMARY KEY, value REAL NOT NULL)")
        db.executemany("INSERT OR REPLACE INTO meter_history (ts, value) VALUES (?, ?)", rows)
    db.close()
    return len(rows)


async def boundary_lags(gateway: Any, vtn: Any, intervals: int, step: float, lead: float = 4.0) -> list[float]:
    """Schedule an event of ``intervals`` intervals of ``step`` s (levels alternating 1, 2) and return
    how late (ms) the level changed after each boundary."""
    changes: list[tuple[float, float]] = []
    original = gateway.device.set_level

    def spy(value: float) -> bool:
        changed = original(value)
        if changed:
            changes.append((time.time(), value))
        return changed

    gateway.device.set_level = spy
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=lead)
    levels = [1.0 + (k % 2) for k in range(intervals)]
    vtn.add_event(gateway.link.ven_id, levels, start, timedelta(seconds=step))
    boundaries = [start.timestamp() + k * step for k in range(intervals + 1)]
    deadline = time.time() + lead + intervals * step + 10
    while len(changes) < len(boundaries) and time.time() < deadline:
        await asyncio.sleep(0.1)
    gateway.device.set_level = original
    lags = []
    for boundary in boundaries:
        after = [t for t, _ in changes if boundary - 0.001 <= t < boundary + step / 2]
        if after:
            lags.append((after[0] - boundary) * 1000)
    return lags


async def screenshot(url: str, path: str) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("--screenshot needs chromium (apt-get install -y chromium)")
    proc = await asyncio.create_subprocess_exec(
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--hide-scrollbars", f"--screenshot={Path(path).resolve()}",
        "--window-size=1280,1250", url, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await proc.wait()


async def show_events(gateway: Any, vtn: Any, url: str, path: str) -> None:
    """Real events from the VTN (active, cancelled, modified, randomized), then the screenshot; the
    active one is cancelled afterwards so the lag measurement starts from level 0."""
    ven_id = gateway.link.ven_id
    now = datetime.now(timezone.utc)
    active = vtn.add_event(ven_id, [1.0, 2.0], now - timedelta(minutes=3), timedelta(minutes=10))
    cancelled = vtn.add_event(ven_id, [2.0, 3.0], now + timedelta(minutes=30), timedelta(minutes=15))
    modified = vtn.add_event(ven_id, [1.0, 2.0], now + timedelta(minutes=90), timedelta(minutes=15))
    vtn.add_full_event(ven_id, [1.0], now + timedelta(hours=3), timedelta(minutes=30), start_after=timedelta(minutes=5))
    await asyncio.sleep(3)
    vtn.cancel_event(ven_id, cancelled)
    vtn.modify_event(ven_id, modified, [2.0, 3.0])
    await asyncio.sleep(3)
    await screenshot(url, path)
    vtn.cancel_event(ven_id, active)
    deadline = time.time() + 10
    while gateway.device.level != 0.0 and time.time() < deadline:
        await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the page at the end")
    args = parser.parse_args()
    logsetup.setup("ERROR")
    # lead: how far ahead each event starts (the VTN polls every second); tail: the flood's extra seconds
    runs, intervals, step, lead, tail = (3, 2, 1.0, 3.0, 1.5) if args.quick else (200, 30, 2.0, 4.0, 3.0)
    vtn, meter = await start_peers(1.0)
    settings = gateway_settings(vtn, meter, interval=10.0, timeout=3.0, name="page-ven")
    settings = replace(settings, http=HttpSettings(listen=("127.0.0.1", 0)))
    points = prefill(settings.state.directory, 10.0, time.time())
    gateway = Gateway(settings)
    await gateway.start()
    await asyncio.wait_for(gateway.link.registered.wait(), 10)
    url = f"http://127.0.0.1:{gateway.web.port}/"
    if args.screenshot:
        await show_events(gateway, vtn, url, args.screenshot)
    chart_ms, cold_ms, warm_ms, http_ms = [], [], [], []
    size = 0
    cache = ChartCache()
    for _ in range(runs):
        t0 = time.perf_counter()
        view = await page_view(await collect(gateway.sources), gateway.meter_history, gateway.event_history)
        html = render_page(view)
        t1 = time.perf_counter()
        render_chart(view.chart, *view.chart_window)
        t2 = time.perf_counter()
        await page_view(await collect(gateway.sources), gateway.meter_history, gateway.event_history, cache)
        t3 = time.perf_counter()
        render_page(await page_view(await collect(gateway.sources), gateway.meter_history, gateway.event_history,
                                    cache))
        t4 = time.perf_counter()
        cold_ms.append((t1 - t0) * 1000)
        chart_ms.append((t2 - t1) * 1000)
        warm_ms.append((t4 - t3) * 1000)
        size = len(html)
    async with aiohttp.ClientSession() as session:
        for _ in range(runs):
            t0 = time.perf_counter()
            async with session.get(url) as resp:
                await resp.read()
            http_ms.append((time.perf_counter() - t0) * 1000)
    lag_idle = await boundary_lags(gateway, vtn, intervals, step, lead)
    seconds = lead + intervals * step + tail
    flood = await asyncio.create_subprocess_exec(sys.executable, "-c", FLOOD, str(gateway.web.port), str(seconds),
                                                 stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(0.5)
    lag_flood = await boundary_lags(gateway, vtn, intervals, step, lead)
    out, _ = await flood.communicate()
    served, failed = (int(n) for n in out.split())
    await gateway.stop()
    await meter.stop()
    await vtn.stop()
    result: dict[str, Any] = {
        "machine": machine(), "quick": args.quick, "history_points": points, "page_bytes": size,
        "chart_ms": figures(chart_ms), "cold_ms": figures(cold_ms), "warm_ms": figures(warm_ms),
        "http_ms": figures(http_ms),
        "lag_idle_ms": figures(lag_idle), "lag_flood_ms": figures(lag_flood),
        "flood": {"pages_served": served, "failed": failed, "seconds": seconds}}
    print(result["machine"])
    print(f"24 h history: {points} points; page {size} bytes")
    for name in ("chart_ms", "cold_ms", "warm_ms", "http_ms", "lag_idle_ms", "lag_flood_ms"):
        show(name, "ms", result[name])
    print(f"flood: {served} pages served ({served / seconds:.0f}/s), {failed} failed")
    write_result("page", result, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

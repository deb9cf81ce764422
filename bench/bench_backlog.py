"""Backlog figures: how fast a 1-hour outage (3,600 samples at a 1 s interval) drains to a real openleadr
VTN over HTTP on loopback, and the process RSS after 100,000 samples went through the durable queue.

Run:  .venv/bin/python bench/bench_backlog.py           (about 1 minute)
      .venv/bin/python bench/bench_backlog.py --quick   (smoke run)
Prints the figures and writes bench/results/backlog.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, rss_mb, setup, write_result  # noqa: E402

setup()

from adrgw.ops import logsetup  # noqa: E402
from adrgw.openadr import report_store as S  # noqa: E402
from adrgw.config.settings import BacnetSettings, MeterSettings, Settings, StateSettings, VenSettings  # noqa: E402
from adrgw.core.model import ResourceStatus  # noqa: E402
from adrgw.core.supervise import TaskHealth  # noqa: E402
from adrgw.openadr.adapter import OpenAdr2b  # noqa: E402
from adrgw.demo.embedded import DemoVtn, free_port  # noqa: E402
from adrgw.persist.store import Store  # noqa: E402
from adrgw.core.model import Sample  # noqa: E402
from adrgw.openadr.adapter import SAMPLE_LEDGER  # noqa: E402
from adrgw.persist.samples import SampleQueue  # noqa: E402


async def drain(samples: int) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix="adrgw-bench-drain-")
    store = Store(directory)
    await store.open()
    queue = SampleQueue(store, max_samples=samples * 2, ledger=SAMPLE_LEDGER)
    await queue.open()
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=samples)
    for n in range(samples):
        await queue.put(Sample(start + timedelta(seconds=n), 100.0 + n % 50))
    vtn = DemoVtn(port=free_port(), poll_freq=1.0)
    await vtn.start()

    class NoEvents:
        """The EventSink of a gateway that only reports (the backlog is what is measured)."""

        async def apply(self, distribution: object) -> list:
            return []

    settings = Settings(ven=VenSettings(ven_name="bench", vtn_url=vtn.url, retry_max=2),
                        bacnet=BacnetSettings(address="127.0.0.1/8"), meter=MeterSettings(interval=1.0),
                        state=StateSettings(directory=directory))
    adapter = OpenAdr2b(settings, store, queue, lambda: ResourceStatus(online=True, manual_override=False), TaskHealth())
    link = adapter.link(NoEvents())
    task = asyncio.create_task(link.run())
    await asyncio.wait_for(adapter.registered.wait(), 10)
    t0 = time.perf_counter()
    while len(vtn.record.readings) < samples:
        if task.done():
            task.result()  # the link died: show why instead of waiting forever
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await vtn.stop()
    await store.close()
    return {"backlog_samples": samples, "drain_seconds": round(elapsed, 3),
            "drain_samples_per_second": round(samples / elapsed, 1),
            "report_messages": vtn.record.report_messages}


async def through_queue(samples: int) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix="adrgw-bench-queue-")
    store = Store(directory)
    await store.open()
    queue = SampleQueue(store, max_samples=10_000, ledger=SAMPLE_LEDGER)
    await queue.open()
    before = rss_mb()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    t0 = time.perf_counter()
    await store.call(S.save_report_requests, [], [("bench", "usage", "{}", None)])
    for n in range(samples):
        stamp = start + timedelta(seconds=n)
        await queue.put(Sample(stamp, float(n)))
        if len(queue) >= 360:  # a report of 360 acknowledged, as the report service commits it
            await store.call(S.commit_report_cursor, "bench", stamp.timestamp() + 1, "TELEMETRY_USAGE_bench", False)
            await queue.recount()
    elapsed = time.perf_counter() - t0
    await store.close()
    return {"queue_samples": samples, "rss_before_mb": round(before, 1), "rss_after_mb": round(rss_mb(), 1),
            "put_per_second": round(samples / elapsed, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logsetup.setup("WARNING")
    backlog, queued = (120, 2000) if args.quick else (3600, 100_000)
    result: dict[str, object] = {"machine": machine(), "quick": args.quick}
    result.update(await drain(backlog))
    result.update(await through_queue(queued))
    print(result["machine"])
    print(f"drain: {result['backlog_samples']} samples delivered in {result['drain_seconds']} s = "
          f"{result['drain_samples_per_second']} samples/s in {result['report_messages']} report(s)")
    print(f"queue: {result['queue_samples']} samples put (fsync each) and acknowledged at "
          f"{result['put_per_second']} samples/s; RSS {result['rss_before_mb']} MB before, "
          f"{result['rss_after_mb']} MB after")
    write_result("backlog", result, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

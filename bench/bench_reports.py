"""Report traffic to the VTN: messages and bytes per hour at 10 s sampling, reportBackDuration 60 s
(the report service) against one oadrUpdateReport per sample (the behaviour before issue 12).

Two figures:
* computed hour: the schedule of adrgw/reports.py over one hour of 10 s samples, each report
  rendered as the gateway renders it (adrgw/oadr_report.py); the one-per-sample figure rendered
  with openleadr's oadrUpdateReport template as the gateway did before (one interval each);
* measured run: the real gateway against the schema VTN (tests/support/schema_vtn.py) over HTTP with a real
  BACnet meter, time-scaled 10x (1 s sampling, reportBackDuration 6 s vs 1 s), counting what the VTN
  received, then scaled to one hour of 10 s sampling.
Polls (one oadrPoll per poll period, the same in both cases) are not counted.
The smoke run (--quick) counts each case for its reportBackDuration + 1 s only (one report of each).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import _common
from _common import machine, write_result

_common.setup()


def computed_hour() -> dict[str, Any]:
    from openleadr import objects
    from openleadr.messaging import create_message

    from adrgw.openadr import reports as R
    from adrgw.openadr.oadr_report import OutInterval, OutReport, update_report

    t0 = 1_800_000_000.0
    request = R.ReportRequest("rr-1", "TELEMETRY_USAGE_device001", R.USAGE, ("device001_power_real",), 10.0, 60.0)
    streams = {"device001_power_real": ""}
    samples = {"": {t0 + 10 * n: 95.0 + (n % 37) / 10 for n in range(-6, 370)}}
    cursor, now, sizes = t0, t0, []
    while now <= t0 + 3600 + 1:
        span = R.window(request, cursor, now, 0.2)
        if span is None:
            now = R.next_wake(request, now, 0.2)
            continue
        intervals, cursor = R.select(request, streams, samples, span[0], span[1], 360)
        dt = datetime.fromtimestamp
        out = [OutInterval(dt(i.instant, timezone.utc), timedelta(seconds=10), i.r_id, i.value) for i in intervals]
        report = OutReport("8f2c0d9e-5d7b-4d0a-9d7e-2b8e4f1c3a55", "rr-1", request.specifier_id, "TELEMETRY_USAGE",
                           out[0].dtstart, out[-1].dtstart - out[0].dtstart + timedelta(seconds=10),
                           datetime.now(timezone.utc), out)
        sizes.append(len(update_report(create_message, "ven-1", "0d1f3b7a-7c55-4a43-8a6c-0b9d2f1e4c77",
                                       [report]).encode()))
    old = []
    for n in range(360):
        at = datetime.fromtimestamp(t0 + 10 * n, timezone.utc)
        report = objects.Report(
            report_specifier_id="TELEMETRY_USAGE_device001", report_request_id="rr-1",
            report_name="TELEMETRY_USAGE", dtstart=at, duration=timedelta(seconds=10),
            intervals=[objects.ReportInterval(dtstart=at, duration=timedelta(seconds=10),
                                              report_payload=objects.ReportPayload(r_id="device001_power_real",
                                                                                   value=95.0 + (n % 37) / 10))])
        old.append(len(create_message("oadrUpdateReport", ven_id="ven-1", request_id="0d1f3b7a-7c55-4a43-8a6c-0b9d2f1e4c77",
                                      reports=[report]).encode()))
    return {"computed_back60_messages_per_hour": len(sizes), "computed_back60_bytes_per_hour": sum(sizes),
            "computed_per_sample_messages_per_hour": len(old), "computed_per_sample_bytes_per_hour": sum(old)}


async def measured(back: float, seconds: float) -> tuple[int, int, int]:
    """(oadrUpdateReport messages, their bytes, samples) the schema VTN received in ``seconds`` of a
    1 s-sampling gateway asked for reportBackDuration ``back``."""
    from adrgw.app import Gateway
    from adrgw.demo.embedded import SimulatedMeter
    from tests.support.schema_vtn import SchemaVtn, report_request_xml

    vtn = SchemaVtn()
    meter = SimulatedMeter(port=_common.udp())
    await vtn.start()
    await meter.start()
    gateway = Gateway(_common.gateway_settings(vtn, meter))
    await gateway.start()
    try:
        deadline = time.monotonic() + 15
        while not vtn.offered and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        vtn.push(vtn.create_report(report_request_xml("rr-1", "TELEMETRY_USAGE_device001", ["device001_power_real"],
                                                      timedelta(seconds=1), timedelta(seconds=back))))
        while not vtn.reports and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        first = len(vtn.reports)  # the first report carries what was sampled before the request: not counted
        start = time.monotonic()
        await asyncio.sleep(seconds)
        counted = vtn.reports[first:]
        elapsed = time.monotonic() - start
        return len(counted), sum(r.message_bytes for r in counted), round(elapsed)
    finally:
        await gateway.stop()
        await meter.stop()
        await vtn.stop()
        vtn.assert_valid()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from adrgw.ops import logsetup

    logsetup.setup("WARNING")
    seconds = 120.0
    result: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    result.update(computed_hour())
    scale = 3600 / 10  # a measured second at 1 s sampling stands for 10 s of 10 s sampling
    for name, back in (("back6", 6.0), ("per_sample", 1.0)):
        n, size, took = await measured(back, back + 1.0 if args.quick else seconds)
        result[f"measured_{name}_messages_per_hour"] = round(n / took * scale)
        result[f"measured_{name}_bytes_per_hour"] = round(size / took * scale)
    print(result["machine"])
    print("oadrUpdateReport traffic to the VTN per hour at 10 s sampling (polls not counted):")
    print(f"  computed, reportBackDuration PT60S: {result['computed_back60_messages_per_hour']} messages, "
          f"{result['computed_back60_bytes_per_hour']} bytes")
    print(f"  computed, one per sample (before):  {result['computed_per_sample_messages_per_hour']} messages, "
          f"{result['computed_per_sample_bytes_per_hour']} bytes")
    print(f"  measured 10x time-scaled ({'reportBackDuration + 1' if args.quick else f'{seconds:g}'} s each), "
          f"reportBackDuration PT60S: "
          f"{result['measured_back6_messages_per_hour']} messages, {result['measured_back6_bytes_per_hour']} bytes")
    print(f"  measured 10x time-scaled, reportBackDuration = granularity (one per sample): {result['measured_per_sample_messages_per_hour']} "
          f"messages, {result['measured_per_sample_bytes_per_hour']} bytes")
    write_result("reports", result, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

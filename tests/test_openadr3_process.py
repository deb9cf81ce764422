"""The OpenADR 3.1 VEN as users run it: a process from a config file with ``protocol = 3.1``. USAGE
reports lose nothing across a VTN outage and a kill -9 of the gateway (the samples and the report
ledger are durable); --status knows the link; SIGTERM ends it with exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from adrgw.demo.embedded import free_port

from .support.config import config_text
from .support.process import SCRIPT, spawn
from .support.readings import clock_value
from .support.ven31 import simple
from .support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.process]


async def run_cli(tmp_path: Any, *args: str) -> tuple[int, str]:
    """The command line with ``args`` in the config's folder: (exit code, stdout)."""
    env = dict(os.environ, HOME=str(tmp_path))
    proc = await asyncio.create_subprocess_exec(sys.executable, str(SCRIPT), *args, cwd=str(tmp_path), env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


def config31(vtn_url: str, gw_port: int, router_port: int) -> str:
    return config_text(vtn_url, gw_port, router_port, ven={
        "protocol": "3.1", "ven_name": "ven-31", "client_id": "ven-1", "client_secret": "secret",
        "poll_interval": 30, "request_timeout": 2, "retry_max": 1})


async def test_reports_survive_a_vtn_outage_and_kill_9_then_sigterm_exits_0(vtn31, meter, tmp_path) -> None:
    meter.value_fn = clock_value
    program = vtn31.add_program("p1")
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config31(vtn31.url, gw_port, meter.port))
    code, out = await run_cli(tmp_path, "--check")
    assert code == 0 and "OpenADR 3.1: client 'ven-1'" in out, out
    code, out = await run_cli(tmp_path, "--probe")
    assert code == 0 and "VTN token" in out and "no VEN object for venName 'ven-31' yet" in out, out
    proc = await spawn("--log-level", "INFO", cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: proc.has("MQTT notifications from"), 20, what="the session and MQTT")
        start = datetime.fromtimestamp(int(time.time()) + 1, timezone.utc)
        vtn31.add_event(program["programName"], **simple([1] * 12, start, 1.5),
                        report_descriptors=[{"payloadType": "USAGE", "startInterval": 0, "numIntervals": 1,
                                             "frequency": 2, "repeat": -1}])
        await wait_for(lambda: len(vtn31.report_history) >= 1, 10, what="the first report")
        await vtn31.pause()  # the VTN away: the reports due now wait in the gateway
        await asyncio.sleep(4.0)
        killed_at = time.time()
        proc.proc.kill()  # kill -9 while reports are owed
        await asyncio.wait_for(proc.proc.wait(), 10)
        proc = await spawn("--log-level", "INFO", cwd=tmp_path, home=tmp_path)
        await wait_for(lambda: proc.has("gateway running"), 20, what="the restart")
        restarted_at = time.time()
        await vtn31.resume()
        await wait_for(lambda: proc.has("; its last"), 30, what="the last report")
        await asyncio.sleep(1.5)  # the status snapshot follows a change within a second
        code, out = await run_cli(tmp_path, "--status", "--json")
        reg, rep = json.loads(out)["registration"], json.loads(out)["reports"]
        assert reg["registered"] and reg["ven_id"] == next(iter(vtn31.vens)) and rep["reports_sent"] >= 1, out
        assert rep["queue_depth"] <= 3, out  # what the VTN accepted is not counted as queued
    finally:
        code, took = await proc.stop(signal.SIGTERM)
    assert code == 0, "\n".join(proc.lines[-20:])
    assert took < 5.0 and not proc.has("Traceback"), "\n".join(proc.lines)
    assert len(vtn31.reports) == 1, vtn31.reports  # the restart updated the report it had created
    report = next(iter(vtn31.reports.values()))
    intervals = report["resources"][0]["intervals"]
    stamps = [datetime.fromisoformat(i["intervalPeriod"]["start"].replace("Z", "+00:00")).timestamp()
              for i in intervals]
    assert stamps == sorted(set(stamps)), "in order, each once"
    for interval, ts in zip(intervals, stamps):
        assert interval["payloads"][0]["values"] == [clock_value(ts)]  # the meter's value at that instant
    # reports at the ends of intervals 0, 2, ..., 10 (every 2nd of 12): the last covers up to 16.5 s
    span = [start.timestamp() + k for k in range(17)]
    assert max(stamps) == span[-1]
    # every instant the gateway was alive to sample is there (the VTN outage included); only the
    # seconds the process was dead may be missing
    missing = [ts for ts in span if ts not in stamps]
    assert all(killed_at - 1.5 <= ts <= restarted_at + 1 for ts in missing), (missing, killed_at, restarted_at)
    assert sum(1 for ts in stamps if killed_at - 4.0 <= ts < killed_at - 1.5) >= 2  # sampled while paused

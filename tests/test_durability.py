"""Nothing lost, nothing invented: VTN and meter outages, kill -9, backlog bound, lost registration,
TELEMETRY_STATUS; plus the durable queue and the store on their own."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from adrgw.demo.embedded import DemoVtn, free_port
from adrgw.persist.store import Store
from adrgw.core.telemetry import Sample
from adrgw.openadr.report_store import LEDGER
from adrgw.persist.samples import SampleQueue

from .support.acks import acknowledge, start_usage_request
from .support.config import config_text, gateway_settings
from .support.process import spawn
from .support.readings import assert_exactly_once_in_order_matching_meter, clock_value
from .support.wait import wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


# -- the queue and the store on their own ---------------------------------------------------------

async def test_queue_is_durable_deduplicates_and_acks(tmp_path) -> None:
    store = Store(tmp_path)
    await store.open()
    queue = SampleQueue(store, max_samples=100, ledger=LEDGER)
    await queue.open()
    assert await queue.put(Sample(T0, 1.5))
    assert not await queue.put(Sample(T0, 9.9))  # same cadence instant: kept once
    assert await queue.put(Sample(T0 + timedelta(seconds=10), 2.5))
    batch = await queue.peek(1)
    assert [s.value for _, s in batch] == [1.5]
    await start_usage_request(store)
    await acknowledge(store, T0 + timedelta(seconds=10))  # the VTN took the first one
    await queue.recount()
    assert len(queue) == 1 and queue.delivered == 1
    await store.close()
    store2 = Store(tmp_path)
    await store2.open()
    queue2 = SampleQueue(store2, max_samples=100, ledger=LEDGER)
    await queue2.open()
    assert len(queue2) == 1
    assert [(s.timestamp, s.value) for _, s in await queue2.peek(10)] == [(T0 + timedelta(seconds=10), 2.5)]
    await store2.close()


async def test_queue_bound_drops_oldest_and_warns_once(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="adrgw")
    store = Store(tmp_path)
    await store.open()
    queue = SampleQueue(store, max_samples=3, ledger=LEDGER)
    await queue.open()
    for n in range(10):
        await queue.put(Sample(T0 + timedelta(seconds=n), float(n)))
    assert len(queue) == 3 and queue.dropped == 7
    assert [s.value for _, s in await queue.peek(10)] == [7.0, 8.0, 9.0]
    warnings = [r.getMessage() for r in caplog.records if "backlog full" in r.getMessage()]
    assert len(warnings) == 1 and "dropped the 1 oldest" in warnings[0]
    await store.close()


async def test_corrupt_state_file_is_moved_aside_and_the_store_starts_empty(tmp_path, caplog) -> None:
    (tmp_path / "gateway.sqlite3").write_bytes(b"this is not a database" * 100)
    store = Store(tmp_path)
    await store.open()
    queue = SampleQueue(store, max_samples=10, ledger=LEDGER)
    await queue.open()
    assert len(queue) == 0
    assert list(tmp_path.glob("gateway.sqlite3.corrupt-*"))
    assert any("moved aside" in r.getMessage() for r in caplog.records)
    await store.close()


# -- with the real peers --------------------------------------------------------------------------------

async def test_vtn_outage_every_sample_arrives_once_in_order(vtn, meter, start_gateway, tmp_path) -> None:
    meter.value_fn = clock_value
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await wait_for(lambda: len(vtn.record.readings) >= 2, 8, what="readings before the outage")
    await vtn.stop()  # down: connection refused
    down_at = time.time()
    await asyncio.sleep(5)
    await vtn.start()  # back on the same port, remembering its VENs and report requests
    up_at = time.time()
    await wait_for(lambda: any(t.timestamp() > up_at + 1 for t, _ in vtn.record.readings), 15,
                   what="delivery after the VTN is back")
    readings = vtn.record.readings
    assert_exactly_once_in_order_matching_meter(readings)
    # every cadence instant of the run is there, including the outage
    first, last = readings[0][0].timestamp(), readings[-1][0].timestamp()
    assert [t.timestamp() for t, _ in readings] == [float(s) for s in range(int(first), int(last) + 1)]
    assert sum(1 for t, _ in readings if down_at < t.timestamp() < up_at) >= 4
    # the backlog went out batched: fewer report messages than samples
    assert vtn.record.report_messages < len(readings)
    # owed now: at most the samples since the last report time (one reportBackDuration + settle)
    assert len(gateway.samples) <= 3


async def test_meter_outage_no_values_mirror_shows_fault_then_recovers(vtn, meter, start_gateway,
                                                                      bacnet_client, tmp_path) -> None:
    meter.value_fn = clock_value
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    address = Address(f"127.0.0.1:{gateway.settings.bacnet.port}")
    mirror = ObjectIdentifier("analog-value,2")

    async def read(prop: str):
        return await asyncio.wait_for(bacnet_client.read_property(address, mirror, PropertyIdentifier(prop)), 2)

    await wait_for(lambda: len(vtn.record.readings) >= 2, 8, what="readings")
    assert await read("object-name") == "ADR-Meter-Value"
    assert str(await read("reliability")) == "no-fault-detected"
    meter.online = False
    off_at = time.time()
    await wait_for(lambda: gateway.sampler.failures >= 1, 4, what="a failed read")
    flags = await read("status-flags")
    assert flags[1] == 1, flags  # fault
    assert str(await read("reliability")) == "communication-failure"
    last_good = float(await read("present-value"))
    assert last_good == vtn.record.readings[-1][1] or last_good == gateway.device.meter_point.presentValue
    await asyncio.sleep(3)
    meter.online = True
    on_at = time.time()
    await wait_for(lambda: any(t.timestamp() > on_at + 0.5 for t, _ in vtn.record.readings), 8,
                   what="readings after the outage")
    assert str(await read("reliability")) == "no-fault-detected"
    assert (await read("status-flags"))[1] == 0
    gap = [t for t, _ in vtn.record.readings if off_at + 0.01 < t.timestamp() < on_at - 0.6]
    assert gap == []
    assert_exactly_once_in_order_matching_meter(vtn.record.readings)


async def test_vtn_that_forgot_the_ven_gets_re_registration_and_the_kept_samples(vtn, meter, start_gateway,
                                                                                  tmp_path) -> None:
    meter.value_fn = clock_value
    await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await wait_for(lambda: len(vtn.record.readings) >= 2, 8, what="readings")
    registrations = len(vtn.record.registrations)
    await vtn.stop(keep_state=False)  # the VTN loses its database
    down_at = time.time()
    await asyncio.sleep(3)
    await vtn.start()
    await wait_for(lambda: len(vtn.record.registrations) > registrations, 15, what="re-registration")
    back_at = time.time()
    await wait_for(lambda: any(t.timestamp() > back_at for t, _ in vtn.record.readings[-1:]), 10,
                   what="readings taken after re-registration")
    assert_exactly_once_in_order_matching_meter(vtn.record.readings)
    assert sum(1 for t, _ in vtn.record.readings if down_at < t.timestamp() < down_at + 3) >= 2


async def test_telemetry_status_report_reaches_the_vtn(vtn, meter, start_gateway, tmp_path) -> None:
    from dataclasses import replace

    settings = gateway_settings(vtn.url, meter, tmp_path, interval=1.0)
    await start_gateway(replace(settings, ven=replace(settings.ven, status_report=True)))
    # oadrPayloadResourceStatus: online while running, no manual override (no opt-out), level 0
    await wait_for(lambda: len(vtn.record.status) >= 1, 30, what="a TELEMETRY_STATUS report")
    assert {r for r, _, _ in vtn.record.status} == {"device001"}
    status = vtn.record.status[0][2]
    assert status["online"] is True and status["manual_override"] is False
    assert status["load_control_state"]["level_offset"]["current"] == 0.0


async def test_backlog_bound_drops_the_oldest_samples_and_counts_them(meter, start_gateway, tmp_path,
                                                                      caplog) -> None:
    caplog.set_level(logging.WARNING, logger="adrgw")
    meter.value_fn = clock_value
    vtn = DemoVtn(port=free_port(), poll_freq=1.0)
    settings = gateway_settings(vtn.url, meter, tmp_path)
    from dataclasses import replace
    settings = replace(settings, state=replace(settings.state, max_backlog_hours=3 / 3600))  # 3 samples
    gateway = await start_gateway(settings)
    await wait_for(lambda: gateway.samples.dropped >= 3, 12, what="dropped samples")
    assert len(gateway.samples) == 3
    assert sum("backlog full" in r.getMessage() for r in caplog.records) == 1
    await vtn.start()
    try:
        await wait_for(lambda: len(vtn.record.readings) >= 3, 15, what="the kept samples")
        readings = vtn.record.readings
        assert_exactly_once_in_order_matching_meter(readings)
        # the oldest were dropped: the first delivered sample is recent, not the first one taken
        assert readings[0][0].timestamp() > time.time() - 12
    finally:
        await vtn.stop()


async def test_status_report_is_not_offered_by_default(vtn, meter, start_gateway, tmp_path) -> None:
    """A VTN whose report handler accepts every offered report must get meter values only."""
    await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await wait_for(lambda: len(vtn.record.readings) >= 3, 10, what="readings")
    assert vtn.record.status == []


async def test_kill_9_with_undelivered_samples_then_restart_delivers_them(meter, tmp_path) -> None:
    meter.value_fn = clock_value
    vtn = DemoVtn(port=free_port(), poll_freq=1.0)  # not started yet: the VTN is down
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, gw_port, meter.port))
    first = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: sum("Adding " in line for line in first.lines) >= 3, 15, what="three samples")
    finally:
        first.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(first.proc.wait(), 10)
    killed_at = time.time()
    with sqlite3.connect(tmp_path / "state" / "gateway.sqlite3") as db:
        kept = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    assert kept >= 3
    await vtn.start()
    second = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: sum(1 for t, _ in vtn.record.readings if t.timestamp() < killed_at) >= kept, 20,
                       what="the samples taken before kill -9")
        assert_exactly_once_in_order_matching_meter(vtn.record.readings)
    finally:
        code, _ = await second.stop(signal.SIGTERM)
        await vtn.stop()
    assert code == 0


async def test_report_points_are_read_together_and_reported_per_resource(vtn, start_gateway, tmp_path) -> None:
    from dataclasses import replace

    from adrgw.config.settings import ReportPoint
    from adrgw.demo.embedded import SimulatedMeter

    meter = SimulatedMeter(port=free_port(socket.SOCK_DGRAM), extra_points=3)
    await meter.start()
    try:
        points = tuple(ReportPoint(name=f"feeder{n}", address="12345:2", object_type="analogInput",
                                   instance=1000 + n, resource_id=f"feeder{n}", scale=2.0) for n in range(3))
        points += (ReportPoint(name="ghost", address="12345:2", object_type="analogInput", instance=4000,
                               resource_id="ghost"),)  # no such object: never a value
        settings = replace(gateway_settings(vtn.url, meter, tmp_path), reports=points)
        gateway = await start_gateway(settings)
        await wait_for(lambda: all(len(vtn.record.by_resource.get(f"feeder{n}", [])) >= 2 for n in range(3)), 10,
                       what="readings of every report point")
        for n in range(3):
            assert {v for _, v in vtn.record.by_resource[f"feeder{n}"]} == {(1000 + n) / 10 * 2.0}
        assert "ghost" not in vtn.record.by_resource
        assert len(vtn.record.readings) >= 2  # the [meter] still reports on its own resource
        assert gateway.sampler.samples >= 2
    finally:
        await meter.stop()

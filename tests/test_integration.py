"""The gateway against real peers on loopback: openleadr VTN over HTTP, bacpypes3 router + meter on
virtual network 12345 over BACnet/IP, and a bacpypes3 client reading the gateway like a BAS."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from adrgw.demo.embedded import DemoVtn, free_port

from .support.config import gateway_settings
from .support.wait import wait_for

pytestmark = pytest.mark.integration

LEVEL = ObjectIdentifier("analog-value,1")
PV = PropertyIdentifier("present-value")


async def read_level(client, gateway) -> float:
    address = Address(f"127.0.0.1:{gateway.settings.bacnet.port}")
    return float(await asyncio.wait_for(client.read_property(address, LEVEL, PV), 2))


async def test_registers_and_reports_the_meter_values(vtn, meter, start_gateway, tmp_path) -> None:
    meter.set_value(50.25)
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await wait_for(lambda: vtn.record.registrations, 5, what="registration")
    assert gateway.link.ven_id == "ven-1"
    await wait_for(lambda: len(vtn.record.readings) >= 2, 6, what="two readings")
    meter.set_value(61.5)
    await wait_for(lambda: any(v == 61.5 for _, v in vtn.record.readings), 5, what="the new value")
    values = [v for _, v in vtn.record.readings]
    assert set(values) <= {50.25, 61.5}, values
    stamps = [t for t, _ in vtn.record.readings]
    # On the 1 s wall-clock cadence, in order, no duplicates.
    assert all(t.microsecond == 0 for t in stamps), stamps
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


async def test_three_interval_event_moves_the_point_0_1_2_3_0(vtn, meter, start_gateway, bacnet_client,
                                                               tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="adrgw")
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    start = datetime.now(timezone.utc) + timedelta(seconds=2.5)
    # whole seconds: openleadr formats durations without fractions (PT1.5S would go out as PT1S)
    event_id = vtn.add_event(gateway.link.ven_id, [1.0, 2.0, 3.0], start, timedelta(seconds=2))
    seen = [await read_level(bacnet_client, gateway)]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (len(seen) >= 5 and seen[-1] == 0.0):
        value = await read_level(bacnet_client, gateway)
        if value != seen[-1]:
            seen.append(value)
        await asyncio.sleep(0.02)
    assert seen == [0.0, 1.0, 2.0, 3.0, 0.0]
    assert (event_id, "optIn") in vtn.record.opts
    lines = [r.getMessage() for r in caplog.records]
    for level in ("1.0", "2.0", "3.0", "0.0"):
        assert f"ADR-Event-Level -> {level}" in lines


async def test_cancellation_returns_the_point_to_0(vtn, meter, start_gateway, bacnet_client, tmp_path) -> None:
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    event_id = vtn.add_event(gateway.link.ven_id, [2.0], datetime.now(timezone.utc) - timedelta(seconds=1),
                             timedelta(minutes=10))
    await wait_for(lambda: gateway.device.level == 2.0, 5, what="level 2 from an event in progress")
    assert await read_level(bacnet_client, gateway) == 2.0
    vtn.cancel_event(gateway.link.ven_id, event_id)
    await wait_for(lambda: gateway.device.level == 0.0, 5, what="level 0 after cancellation")
    assert await read_level(bacnet_client, gateway) == 0.0


async def test_network_writes_to_the_point_are_refused(vtn, meter, start_gateway, bacnet_client, tmp_path) -> None:
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    address = Address(f"127.0.0.1:{gateway.settings.bacnet.port}")
    for prop, value in (("present-value", 5.0), ("object-name", "hacked")):
        with pytest.raises(ErrorRejectAbortNack) as info:
            await asyncio.wait_for(bacnet_client.write_property(address, LEVEL, PropertyIdentifier(prop), value), 3)
        assert "write-access-denied" in str(info.value)
    assert await read_level(bacnet_client, gateway) == 0.0
    name = await bacnet_client.read_property(address, LEVEL, PropertyIdentifier("object-name"))
    assert name == "ADR-Event-Level"
    objects = await bacnet_client.read_property(address, ObjectIdentifier("device,599"),
                                                PropertyIdentifier("object-list"))
    assert ObjectIdentifier("analog-value,1") in objects


async def test_silent_meter_yields_no_values_and_the_gateway_keeps_running(vtn, meter, start_gateway,
                                                                           tmp_path) -> None:
    meter.set_value(42.0)
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await wait_for(lambda: len(vtn.record.readings) >= 2, 6, what="readings before the outage")
    meter.online = False
    off_at = time.time()
    await asyncio.sleep(3.5)
    meter.online = True
    on_at = time.time()
    count_after = len(vtn.record.readings)
    await wait_for(lambda: len(vtn.record.readings) >= count_after + 2, 6, what="readings after the outage")
    assert gateway.sampler.read_errors >= 2
    gap = [t for t, _ in vtn.record.readings if off_at + 0.01 < t.timestamp() < on_at - 0.6]
    assert gap == [], f"values reported for instants the meter did not answer: {gap}"
    values = [v for _, v in vtn.record.readings]
    assert set(values) == {42.0}, values  # never 0, never NaN, never invented
    stamps = [t for t, _ in vtn.record.readings]
    assert len(set(stamps)) == len(stamps)


async def test_gateway_started_while_vtn_is_down_registers_once_it_is_up(meter, start_gateway, tmp_path,
                                                                         caplog) -> None:
    caplog.set_level(logging.WARNING, logger="adrgw")
    port = free_port()
    vtn = DemoVtn(port=port, poll_freq=1.0)
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await wait_for(lambda: gateway.link.registration_attempts >= 3, 10, what="three failed attempts")
    assert not gateway.link.registered.is_set()
    failures = [r.getMessage() for r in caplog.records if "registration attempt" in r.getMessage()]
    assert failures and all("Traceback" not in f for f in failures)
    assert not any(r.exc_info for r in caplog.records)
    await vtn.start()
    try:
        await asyncio.wait_for(gateway.link.registered.wait(), 8)
        await wait_for(lambda: len(vtn.record.readings) >= 1, 8, what="readings after the late VTN")
        # samples taken while the VTN was down were kept and delivered, oldest first
        stamps = [t for t, _ in vtn.record.readings]
        assert stamps == sorted(stamps)
    finally:
        await vtn.stop()


async def test_bac0_i_am_busy_loop_is_stopped(vtn, meter, start_gateway, tmp_path) -> None:
    """BAC0's Lite._i_am polls every 10 ms forever with bacpypes3 0.0.110 (see stop_bac0_i_am_spin)."""
    await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await asyncio.sleep(0.1)
    spinning = [t for t in asyncio.all_tasks()
                if getattr(getattr(t.get_coro(), "cr_code", None), "co_qualname", "") == "Lite._i_am"]
    assert spinning == []

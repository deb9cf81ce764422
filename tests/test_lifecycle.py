"""Event lifecycle with the real openleadr VTN and real BACnet clients on loopback: modification,
cancellation (explicit and implied), priorities, randomization across a restart, test events, status
points, opt-out/in from another stack, COV notifications, and kill -9 with the VTN down."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from adrgw.bacnet import points as P
from adrgw.app import Gateway
from adrgw.demo.embedded import DemoVtn, free_port

from .support.config import config_text, gateway_settings
from .support.process import ROOT, interop_python, spawn
from .support.wait import wait_for

pytestmark = pytest.mark.integration
PV = PropertyIdentifier("present-value")
OBJECTS = {"level": "analog-value,1", P.START_IN: "analog-value,3", P.REMAINING: "analog-value,4",
           P.EVENT_STATUS: "multi-state-value,1", P.EVENT_ACTIVE: "binary-value,1", P.OPT_OUT: "binary-value,2",
           P.VTN_ONLINE: "binary-value,3"}


def now() -> datetime:
    return datetime.now(timezone.utc)


async def read(client, gateway_port: int, what: str):
    value = await asyncio.wait_for(client.read_property(Address(f"127.0.0.1:{gateway_port}"),
                                                        ObjectIdentifier(OBJECTS[what]), PV), 2)
    return value


async def started(start_gateway, vtn, meter, tmp_path, **points) -> Gateway:
    settings = gateway_settings(vtn.url, meter, tmp_path)
    if points:
        settings = replace(settings, points=replace(settings.points, **points))
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    return gateway


async def test_modification_while_active_replaces_the_levels(vtn, meter, start_gateway, tmp_path) -> None:
    gateway = await started(start_gateway, vtn, meter, tmp_path)
    ven = gateway.link.ven_id
    event_id = vtn.add_event(ven, [1.0, 1.0], now() - timedelta(seconds=1), timedelta(seconds=60))
    await wait_for(lambda: gateway.device.level == 1.0, 5, what="level 1")
    vtn.modify_event(ven, event_id, [3.0, 3.0])  # openleadr's VTN allows SIMPLE levels 0..3 only
    await wait_for(lambda: gateway.device.level == 3.0, 5, what="the modified level")
    assert gateway.controller.events[event_id].revision.label == "1"


async def test_priorities_implied_and_explicit_cancellation(vtn, meter, start_gateway, tmp_path) -> None:
    gateway = await started(start_gateway, vtn, meter, tmp_path)
    ven = gateway.link.ven_id
    low = vtn.add_full_event(ven, [2.0], now() - timedelta(seconds=1), timedelta(seconds=60), priority=2)
    high = vtn.add_full_event(ven, [3.0], now() - timedelta(seconds=1), timedelta(seconds=60), priority=1)
    await wait_for(lambda: gateway.device.level == 3.0, 5, what="the priority-1 event's level")
    assert gateway.controller.active_event == high
    vtn.forget_event(ven, high)  # the VTN stops listing it: implied cancellation
    await wait_for(lambda: gateway.device.level == 2.0, 5, what="the priority-2 event after implied cancel")
    assert high not in gateway.controller.events
    vtn.cancel_event(ven, low)
    await wait_for(lambda: gateway.device.level == 0.0, 5, what="level 0 after explicit cancel")


async def test_test_event_is_answered_but_not_applied(vtn, meter, start_gateway, tmp_path) -> None:
    gateway = await started(start_gateway, vtn, meter, tmp_path)
    event_id = vtn.add_full_event(gateway.link.ven_id, [3.0], now() - timedelta(seconds=1), timedelta(seconds=60),
                                  test_event=True)
    await wait_for(lambda: (event_id, "optIn") in vtn.record.opts, 5, what="the test event's optIn")
    assert gateway.controller.events[event_id].test_event
    await asyncio.sleep(0.3)
    assert gateway.device.level == 0.0
    assert gateway.device.get_value(P.EVENT_STATUS) == 1


async def test_applied_test_events_move_the_points(vtn, meter, start_gateway, tmp_path) -> None:
    gateway = await started(start_gateway, vtn, meter, tmp_path, apply_test_events=True)
    vtn.add_full_event(gateway.link.ven_id, [3.0], now() - timedelta(seconds=1), timedelta(seconds=60), test_event=True)
    await wait_for(lambda: gateway.device.level == 3.0, 5, what="level 3 from an applied test event")


async def test_status_points_far_near_active_none_and_countdowns(vtn, meter, start_gateway, bacnet_client,
                                                                  tmp_path) -> None:
    gateway = await started(start_gateway, vtn, meter, tmp_path)
    port = gateway.settings.bacnet.port
    start = now() + timedelta(seconds=5)
    vtn.add_full_event(gateway.link.ven_id, [2.0, 3.0], start, timedelta(seconds=2), ramp_up=timedelta(seconds=3))
    await wait_for(lambda: gateway.device.get_value(P.EVENT_STATUS) == 2, 3, what="far")
    start_in = float(await read(bacnet_client, port, P.START_IN))
    assert 1 <= start_in <= 5
    assert int(await read(bacnet_client, port, P.EVENT_ACTIVE)) == 0
    await wait_for(lambda: gateway.device.get_value(P.EVENT_STATUS) == 3, 5, what="near (ramp-up)")
    assert int(await read(bacnet_client, port, P.EVENT_STATUS)) == 3
    await wait_for(lambda: gateway.device.get_value(P.EVENT_STATUS) == 4, 5, what="active")
    assert int(await read(bacnet_client, port, P.EVENT_ACTIVE)) == 1
    assert float(await read(bacnet_client, port, P.START_IN)) == 0.0
    assert 1 <= float(await read(bacnet_client, port, P.REMAINING)) <= 4
    await wait_for(lambda: gateway.device.get_value(P.EVENT_STATUS) == 1, 6, what="none after the event")
    assert float(await read(bacnet_client, port, P.REMAINING)) == 0.0
    assert int(await read(bacnet_client, port, P.VTN_ONLINE)) == 1


async def test_randomized_start_within_bounds_and_stable_across_restart(vtn, meter, start_gateway, tmp_path) -> None:
    settings = gateway_settings(vtn.url, meter, tmp_path)
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    start = now() + timedelta(seconds=60)
    event_id = vtn.add_full_event(gateway.link.ven_id, [1.0], start, timedelta(seconds=60),
                                  start_after=timedelta(seconds=30))
    await wait_for(lambda: event_id in gateway.controller.events, 5, what="the event")
    event = gateway.controller.events[event_id]
    assert timedelta(0) <= event.offset <= timedelta(seconds=30)
    assert abs((event.start - start) - event.offset) < timedelta(milliseconds=1)
    await gateway.stop()
    again = await start_gateway(replace(settings, bacnet=replace(settings.bacnet, port=free_port(socket.SOCK_DGRAM))))
    assert again.controller.events[event_id].offset == event.offset  # restored before the VTN answers
    await asyncio.wait_for(again.link.registered.wait(), 5)
    await asyncio.sleep(1.5)  # the VTN's distribution came and went
    assert again.controller.events[event_id].offset == event.offset


async def test_opt_out_and_in_written_by_another_stack_reach_the_vtn(vtn, meter, start_gateway, tmp_path) -> None:
    python = interop_python()
    gateway = await started(start_gateway, vtn, meter, tmp_path)
    event_id = vtn.add_event(gateway.link.ven_id, [2.0], now() - timedelta(seconds=1), timedelta(seconds=60))
    await wait_for(lambda: gateway.device.level == 2.0, 5, what="level 2")
    port = gateway.settings.bacnet.port

    async def write_opt_out(value: int) -> dict:
        proc = await asyncio.create_subprocess_exec(
            python, str(ROOT / "tests" / "interop" / "bacpy_write.py"), "--target", f"127.0.0.1:{port}",
            "--object", "binary-value,2", "--value", str(value),
            "--port", str(free_port(socket.SOCK_DGRAM, avoid=(port,))),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        return json.loads(out.decode().strip().splitlines()[-1])

    result = await write_opt_out(1)
    assert result["result"] == "ok", result
    await wait_for(lambda: gateway.device.level == 0.0, 3, what="level 0 after opt-out")
    await wait_for(lambda: (event_id, "optOut") in vtn.record.opts, 5, what="optOut at the VTN")
    # new events are answered optOut while it stays active
    second = vtn.add_event(gateway.link.ven_id, [3.0], now() + timedelta(seconds=30), timedelta(seconds=60))
    await wait_for(lambda: (second, "optOut") in vtn.record.opts, 5, what="optOut for a new event")
    result = await write_opt_out(0)
    assert result["result"] == "ok", result
    await wait_for(lambda: gateway.device.level == 2.0, 3, what="level 2 after opt-in")
    await wait_for(lambda: [o for e, o in vtn.record.opts if e == event_id][-1] == "optIn", 5,
                   what="optIn at the VTN")
    # invalid values and other properties are refused
    assert "VALUE_OUT_OF_RANGE" in (await write_opt_out(7))["result"]


async def test_cov_subscribers_are_notified_at_each_level_change(vtn, meter, start_gateway, bacnet_client,
                                                                 tmp_path) -> None:
    gateway = await started(start_gateway, vtn, meter, tmp_path)
    address = Address(f"127.0.0.1:{gateway.settings.bacnet.port}")
    seen: dict[bool, list[float]] = {True: [], False: []}

    async def subscribe(confirmed: bool) -> None:
        async with bacnet_client.change_of_value(address, ObjectIdentifier("analog-value,1"), None, confirmed,
                                                 60) as subscription:
            while True:
                prop, value = await subscription.get_value()
                if str(prop) == "present-value":
                    seen[confirmed].append(float(value))

    tasks = [asyncio.create_task(subscribe(c)) for c in (True, False)]
    try:
        await asyncio.sleep(0.5)
        vtn.add_event(gateway.link.ven_id, [1.0, 2.0], now() + timedelta(seconds=2), timedelta(seconds=2))
        for confirmed in (True, False):
            await wait_for(lambda c=confirmed: seen[c][-3:] == [1.0, 2.0, 0.0], 12,
                           what=f"{'confirmed' if confirmed else 'unconfirmed'} COV notifications")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_kill_9_during_active_event_with_vtn_down_restores_the_level(vtn, meter, bacnet_client,
                                                                           tmp_path) -> None:
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, gw_port, meter.port))
    first = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: vtn.ven_ids.get("process-ven") is not None, 15, what="registration")
        vtn.add_event(vtn.ven_ids["process-ven"], [3.0], now() - timedelta(seconds=1), timedelta(minutes=5))
        await wait_for(lambda: first.has("ADR-Event-Level -> 3.0"), 10, what="level 3")
    finally:
        await vtn.stop()
        first.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(first.proc.wait(), 10)
    second = await spawn(cwd=tmp_path, home=tmp_path)
    spawned = time.monotonic()
    device_up: float | None = None
    try:
        level = None
        while time.monotonic() - spawned < 20:
            if device_up is None and second.has("BACnet device"):
                device_up = time.monotonic()
            try:
                level = float(await read(bacnet_client, gw_port, "level"))
            except (asyncio.TimeoutError, BaseException):  # noqa: B036 - device not up yet
                level = None
            if level == 3.0:
                break
            await asyncio.sleep(0.02)
        assert level == 3.0, "\n".join(second.lines[-20:])
        restored = time.monotonic()
        up = device_up if device_up is not None else restored
        print(f"level restored {restored - spawned:.2f} s after the restart (process start included), "
              f"{max(0.0, restored - up):.3f} s after the device came up")
        assert second.has("restored 1 event(s)")
        assert second.has("VTN registration attempt")  # the VTN is still down
    finally:
        code, _ = await second.stop(signal.SIGTERM)
    assert code == 0


async def test_events_the_vtn_no_longer_holds_are_dropped_at_the_first_sync(vtn, meter, start_gateway,
                                                                             tmp_path) -> None:
    settings = gateway_settings(vtn.url, meter, tmp_path)
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    vtn.add_event(gateway.link.ven_id, [2.0], now() - timedelta(seconds=1), timedelta(minutes=10))
    await wait_for(lambda: gateway.device.level == 2.0, 5, what="level 2")
    await gateway.stop()
    other = DemoVtn(port=free_port(), poll_freq=1.0)  # a VTN that holds no event for this VEN
    await other.start()
    try:
        again = await start_gateway(replace(settings, ven=replace(settings.ven, vtn_url=other.url),
                                            bacnet=replace(settings.bacnet, port=free_port(socket.SOCK_DGRAM))))
        assert again.device.level == 2.0  # restored from the store before any VTN answered
        await asyncio.wait_for(again.link.registered.wait(), 5)
        await wait_for(lambda: again.device.level == 0.0, 5, what="level 0 after the sync with the new VTN")
        assert not again.controller.events
    finally:
        await other.stop()

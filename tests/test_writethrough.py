"""Write-through: the gateway commands a simulated BAS (bacpypes3, real BACnet/IP) at each interval
boundary, confirms through priorityArray, relinquishes at the end, on cancellation, on opt-out, on
SIGTERM and after kill -9, never touches other slots, and keeps going when one target is dead."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import pytest
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier, Real

from adrgw.config.settings import WriteTarget
from adrgw.demo.embedded import free_port

from .support.bas import SimulatedBas
from .support.config import config_text, gateway_settings
from .support.process import ROOT, interop_python, spawn
from .support.wait import wait_for

pytestmark = pytest.mark.integration


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
async def bas() -> AsyncIterator[SimulatedBas]:
    sim = SimulatedBas(free_port(socket.SOCK_DGRAM))
    sim.start()
    yield sim
    sim.stop()


def targets(bas: SimulatedBas) -> tuple[WriteTarget, ...]:
    return (
        WriteTarget("cooling", bas.address, "analogValue", 5, priority=10, values=((1.0, 74.0), (2.0, 76.0), (3.0, 78.0))),
        WriteTarget("fan", bas.address, "binaryValue", 6, priority=12, values=((2.0, "inactive"), (3.0, "inactive"))),
        WriteTarget("mode", bas.address, "multiStateValue", 7, priority=10, values=((1.0, 2), (2.0, 2), (3.0, 3))),
    )


async def start_writer(start_gateway, vtn, meter, tmp_path, bas, **points):
    settings = replace(gateway_settings(vtn.url, meter, tmp_path), writes=targets(bas))
    if points:
        settings = replace(settings, points=replace(settings.points, **points))
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    return gateway


async def bac_py_slot(bas: SimulatedBas, obj: str, index: int) -> str:
    proc = await asyncio.create_subprocess_exec(
        interop_python(), str(ROOT / "tests" / "interop" / "bacpy_read.py"), "--target", bas.address,
        "--object", obj, "--property", "priority-array", "--index", str(index),
        "--port", str(free_port(socket.SOCK_DGRAM, avoid=(bas.port,))),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().splitlines()[-1])
    assert "value" in result, result
    return result["value"]


def fan_slot(bas: SimulatedBas):
    value = bas.slot(bas.fan, 12)
    return None if value is None else int(value)


async def test_gateway_never_writes_a_slot_it_does_not_hold(vtn, meter, start_gateway, bas, tmp_path) -> None:
    await bas.setpoint.write_property("presentValue", Real(65.0), None, 10)  # an operator uses slot 10
    gateway = await start_writer(start_gateway, vtn, meter, tmp_path, bas)
    await asyncio.sleep(1.0)  # no event: level 0 must not relinquish somebody else's command
    assert gateway.device.level == 0.0 and bas.slot(bas.setpoint, 10) == 65.0


def test_command_and_confirmation_show_a_value_the_same_way() -> None:
    """The log line of a command (``<- x``) and of its confirmation (``= x``) show the same text:
    the enumerated name of a binary value, the state number of a multi-state value."""
    from bacpypes3.basetypes import BinaryPV
    from bacpypes3.primitivedata import Enumerated, Unsigned

    from adrgw.bacnet.writer import shown

    assert shown("binary", "inactive") == shown("binary", Enumerated(0)) == shown("binary", BinaryPV(0)) == "inactive"
    assert shown("binary", "active") == shown("binary", Enumerated(1)) == "active"
    assert shown("multistate", 2) == shown("multistate", Unsigned(2)) == "2"
    assert shown("analog", 74.0) == shown("analog", Real(74.0)) == "74.0"
    assert shown("analog", None) == shown("binary", None) == "NULL"


def write_lines(caplog, target: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"write {target}:")]


async def test_three_intervals_write_each_level_then_relinquish(vtn, meter, start_gateway, bas, tmp_path,
                                                               caplog) -> None:
    # Somebody else (an operator) holds slot 8 of the setpoint: the gateway must never touch it.
    await bas.setpoint.write_property("presentValue", Real(70.0), None, 8)
    gateway = await start_writer(start_gateway, vtn, meter, tmp_path, bas)
    start = now() + timedelta(seconds=2)
    vtn.add_event(gateway.link.ven_id, [1.0, 2.0, 3.0], start, timedelta(seconds=3))
    expected = {1.0: (74.0, None, 2), 2.0: (76.0, 0, 2), 3.0: (78.0, 0, 3)}  # fan: BinaryPV 0 = inactive
    for level, (setpoint, fan, mode) in expected.items():
        await wait_for(lambda lv=level, sp=setpoint: gateway.device.level == lv and bas.slot(bas.setpoint, 10) == sp,
                       8, what=f"level {level} written")
        await wait_for(lambda f=fan, m=mode: fan_slot(bas) == f and bas.slot(bas.mode, 10) == m, 3,
                       what=f"fan and mode at level {level}")
        if level == 3.0:
            assert await bac_py_slot(bas, "analog-value,5", 10) == "78.0"  # seen by another stack
    await wait_for(lambda: gateway.device.level == 0.0 and bas.slot(bas.setpoint, 10) is None
                   and bas.slot(bas.fan, 12) is None and bas.slot(bas.mode, 10) is None, 8, what="relinquished")
    assert await bac_py_slot(bas, "analog-value,5", 10) == "None"
    assert bas.slots(bas.setpoint) == [None] * 7 + [70.0] + [None] * 8  # only slot 8, the operator's
    assert float(bas.setpoint.presentValue) == 70.0
    # the command and its confirmation show the value the same way (issue 18)
    fan, mode = write_lines(caplog, "fan"), write_lines(caplog, "mode")
    assert any(line.endswith("binaryValue 6 presentValue @12 <- inactive") for line in fan), fan
    assert "write fan: confirmed priorityArray[12] = inactive" in fan, fan
    assert any(line.endswith("multiStateValue 7 presentValue @10 <- 2") for line in mode), mode
    assert "write mode: confirmed priorityArray[10] = 2" in mode, mode
    assert "write mode: confirmed priorityArray[10] = 3" in mode, mode
    assert "write fan: confirmed priorityArray[12] = NULL" in fan, fan


async def test_cancellation_and_opt_out_relinquish(vtn, meter, start_gateway, bas, tmp_path) -> None:
    gateway = await start_writer(start_gateway, vtn, meter, tmp_path, bas)
    first = vtn.add_event(gateway.link.ven_id, [2.0], now() - timedelta(seconds=1), timedelta(minutes=5))
    await wait_for(lambda: bas.slot(bas.setpoint, 10) == 76.0, 6, what="76.0 written")
    vtn.cancel_event(gateway.link.ven_id, first)
    await wait_for(lambda: bas.slot(bas.setpoint, 10) is None, 6, what="relinquished after cancellation")
    vtn.add_event(gateway.link.ven_id, [3.0], now() - timedelta(seconds=1), timedelta(minutes=5))
    await wait_for(lambda: bas.slot(bas.setpoint, 10) == 78.0, 6, what="78.0 written")
    await gateway.controller.set_opt_out(True)
    await wait_for(lambda: bas.slot(bas.setpoint, 10) is None and bas.slot(bas.mode, 10) is None, 6,
                   what="relinquished after opt-out")


async def test_dead_target_is_retried_without_delaying_the_others(vtn, meter, start_gateway, bas, tmp_path, caplog) -> None:
    dead = WriteTarget("dead", f"127.0.0.1:{free_port(socket.SOCK_DGRAM, avoid=(bas.port,))}", "analogValue", 1,
                       priority=10, values=((2.0, 50.0),))
    settings = gateway_settings(vtn.url, meter, tmp_path)
    gateway = await start_gateway(replace(settings, writes=(dead,) + targets(bas)))
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    vtn.add_event(gateway.link.ven_id, [2.0], now() - timedelta(seconds=1), timedelta(minutes=5))
    await wait_for(lambda: gateway.device.level == 2.0, 5, what="the level point")
    await wait_for(lambda: bas.slot(bas.setpoint, 10) == 76.0, 3, what="the live target, not held up by the dead one")
    dead_writer = gateway.write_through.writers[0]
    await wait_for(lambda: dead_writer.failures >= 2, 15, what="retries of the dead target")
    assert any("write dead" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)


async def test_client_only_gateway_exposes_no_points_but_writes(vtn, meter, start_gateway, bas, bacnet_client,
                                                                tmp_path) -> None:
    gateway = await start_writer(start_gateway, vtn, meter, tmp_path, bas, expose=False)
    objects = await bacnet_client.read_property(Address(f"127.0.0.1:{gateway.settings.bacnet.port}"),
                                                ObjectIdentifier("device,599"), PropertyIdentifier("object-list"))
    assert [str(o).split(",")[0] for o in objects] == ["device", "network-port"]
    vtn.add_event(gateway.link.ven_id, [1.0], now() - timedelta(seconds=1), timedelta(minutes=5))
    await wait_for(lambda: bas.slot(bas.setpoint, 10) == 74.0, 6, what="write-through without points")


def writes_config(bas: SimulatedBas) -> str:
    return f"""
[write.cooling]
address = {bas.address}
object = analogValue 5
priority = 10
values = 1=74.0, 2=76.0, 3=78.0
"""


async def test_sigterm_relinquishes(vtn, meter, bas, tmp_path) -> None:
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, gw_port, meter.port) + writes_config(bas))
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: vtn.ven_ids.get("process-ven") is not None, 15, what="registration")
        vtn.add_event(vtn.ven_ids["process-ven"], [3.0], now() - timedelta(seconds=1), timedelta(minutes=5))
        await wait_for(lambda: bas.slot(bas.setpoint, 10) == 78.0, 8, what="78.0 written")
    finally:
        code, _ = await proc.stop(signal.SIGTERM)
    assert code == 0
    assert bas.slot(bas.setpoint, 10) is None, "\n".join(proc.lines[-15:])


async def test_kill_9_while_commanding_relinquishes_on_next_start(vtn, meter, bas, tmp_path) -> None:
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, gw_port, meter.port) + writes_config(bas))
    first = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: vtn.ven_ids.get("process-ven") is not None, 15, what="registration")
        end = now() + timedelta(seconds=4)
        vtn.add_event(vtn.ven_ids["process-ven"], [2.0], now() - timedelta(seconds=1), end - now() + timedelta(seconds=1))
        await wait_for(lambda: bas.slot(bas.setpoint, 10) == 76.0, 8, what="76.0 written")
    finally:
        first.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(first.proc.wait(), 10)
    assert bas.slot(bas.setpoint, 10) == 76.0  # a dead gateway left the building commanded...
    await asyncio.sleep(max(0.0, (end - now()).total_seconds()) + 1.5)  # ...past the event's end
    second = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: bas.slot(bas.setpoint, 10) is None, 15, what="relinquished by the next start")
        # The line is read from the child's stderr asynchronously: wait for it rather than race it.
        await wait_for(lambda: second.has("relinquishing priority 10 left from the previous run"), 5,
                       what="the relinquish line")
    finally:
        code, _ = await second.stop(signal.SIGTERM)
    assert code == 0


async def test_probe_reads_each_target(vtn, meter, bas, tmp_path) -> None:
    import os
    import sys

    (tmp_path / "config.ini").write_text(config_text(vtn.url, free_port(socket.SOCK_DGRAM), meter.port)
                                         + writes_config(bas))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bacnet_server_ven.py"), "--probe", cwd=str(tmp_path),
        env=dict(os.environ, HOME=str(tmp_path)), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode() + err.decode()
    assert proc.returncode == 0, text
    assert any(line.startswith("write cooling") and "commandable" in line for line in text.splitlines()), text

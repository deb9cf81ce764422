"""Interop: bac-py, an independent BACnet stack (Python 3.13), discovers the gateway with Who-Is,
finds ADR-Event-Level by name, reads it, and is refused when it writes it."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import datetime, timedelta, timezone

import pytest

from adrgw.demo.embedded import free_port

from .support.config import gateway_settings
from .support.process import PROBE, interop_python
from .support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.interop]


async def test_bac_py_discovers_reads_and_cannot_write_the_level(vtn, meter, start_gateway, tmp_path) -> None:
    python = interop_python()
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    vtn.add_event(gateway.link.ven_id, [2.0], datetime.now(timezone.utc) - timedelta(seconds=1), timedelta(minutes=5))
    await wait_for(lambda: gateway.device.level == 2.0, 5, what="level 2")
    port = gateway.settings.bacnet.port
    proc = await asyncio.create_subprocess_exec(
        python, str(PROBE), "--target", f"127.0.0.1:{port}", "--device", str(gateway.settings.bacnet.device_id),
        "--name", "ADR-Event-Level", "--port", str(free_port(socket.SOCK_DGRAM, avoid=(port,))),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["i_am"] == [599]
    assert "ANALOG_VALUE" in result["found"] and "instance_number=1" in result["found"]
    assert result["present_value"] == 2.0
    assert "WRITE_ACCESS_DENIED" in result["write"]
    assert result["present_value_after_write"] == 2.0

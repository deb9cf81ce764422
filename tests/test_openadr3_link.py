"""The gateway as an OpenADR 3.1 VEN against the 3.1 test VTN (spec-validated) and mosquitto, in process."""

from __future__ import annotations

import asyncio
import time

import pytest

from .support.ven31 import now_plus, simple, ven31_settings
from .support.wait import wait_for

pytestmark = pytest.mark.integration


async def test_registration_and_an_event_over_mqtt(vtn31, meter, start_gateway, tmp_path) -> None:
    vtn31.add_program("p1")
    gateway = await start_gateway(ven31_settings(vtn31.url, meter, tmp_path))
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    await wait_for(lambda: gateway.link.mqtt_connected, 5, what="MQTT")
    await asyncio.sleep(0.3)
    started = time.monotonic()
    event = vtn31.add_event("p1", **simple([2], now_plus(-1), 600))
    await wait_for(lambda: gateway.device.level == 2.0, 2, what="level 2")
    print("latency", time.monotonic() - started)
    vtn31.update_event(event["id"], intervals=[{"id": 0, "payloads": [{"type": "SIMPLE", "values": [3]}]}])
    await wait_for(lambda: gateway.device.level == 3.0, 2, what="level 3")
    vtn31.delete_event(event["id"])
    await wait_for(lambda: gateway.device.level == 0.0, 2, what="level 0")

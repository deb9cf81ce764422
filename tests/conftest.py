"""Shared fixtures: real peers on loopback (openleadr VTN, bacpypes3 router + meter, a BACnet client).

BAC0 writes ~/.BAC0 and reads ~/.BAC0/device.json at import: HOME points at a throw-away folder
before anything imports it, so tests are hermetic.
"""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="adrgw-test-home-")
os.environ["HOME"] = _HOME

import asyncio  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from typing import Any, AsyncIterator, Awaitable, Callable, Optional  # noqa: E402

import pytest  # noqa: E402

from adrgw.ops import logsetup  # noqa: E402
from adrgw.config.settings import BacnetSettings, MeterSettings, Route, Settings, StateSettings, VenSettings  # noqa: E402
from adrgw.demo.embedded import DemoVtn, SimulatedMeter, free_port  # noqa: E402

logsetup.setup("INFO")


async def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05,
                   what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)


def udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


@pytest.fixture
async def vtn() -> AsyncIterator[DemoVtn]:
    server = DemoVtn(port=free_port(), poll_freq=1.0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def meter() -> AsyncIterator[SimulatedMeter]:
    sim = SimulatedMeter(port=udp_port())
    await sim.start()
    yield sim
    await sim.stop()


def gateway_settings(vtn_url: str, meter: Optional[SimulatedMeter], tmp_path: Any, **meter_overrides: Any) -> Settings:
    routes = (Route(12345, meter.host, meter.port),) if meter else ()
    return Settings(
        ven=VenSettings(ven_name="test-ven", vtn_url=vtn_url, request_timeout=3.0, retry_max=2.0),
        bacnet=BacnetSettings(address="127.0.0.1/8", port=udp_port(), device_id=599, routes=routes),
        meter=replace(MeterSettings(interval=1.0, timeout=0.5), **meter_overrides),
        state=StateSettings(directory=str(tmp_path / "state")),
        source="(test)",
    )


@pytest.fixture
async def bacnet_client() -> AsyncIterator[Any]:
    """A bacpypes3 application on its own port, to read and write the gateway like a BAS would."""
    from bacpypes3.app import Application
    from bacpypes3.local.device import DeviceObject
    from bacpypes3.local.networkport import NetworkPortObject

    app = Application.from_object_list([
        DeviceObject(objectIdentifier=("device", 3001), objectName="test-client", vendorIdentifier=999),
        NetworkPortObject(f"127.0.0.1/8:{udp_port()}", objectIdentifier=("network-port", 1), objectName="NP1"),
    ])
    yield app
    app.close()


GatewayFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def start_gateway() -> AsyncIterator[GatewayFactory]:
    """Start an in-process Gateway from Settings; all are stopped at teardown."""
    from adrgw.app import Gateway

    started: list[Gateway] = []

    async def start(settings: Settings) -> Gateway:
        gateway = Gateway(settings)
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()

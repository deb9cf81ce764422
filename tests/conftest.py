"""Shared fixtures: real peers on loopback (openleadr VTN, bacpypes3 router + meter, a BACnet client),
in-process gateways, a LAN in network namespaces. Helpers live in tests/support/.

BAC0 writes ~/.BAC0 and reads ~/.BAC0/device.json at import: HOME points at a throw-away folder
before anything imports it, so tests are hermetic.
"""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="adrgw-test-home-")
os.environ["HOME"] = _HOME

import shutil  # noqa: E402
import subprocess  # noqa: E402
import uuid  # noqa: E402
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator  # noqa: E402

import pytest  # noqa: E402

from adrgw.ops import logsetup  # noqa: E402
from adrgw.config.settings import Settings  # noqa: E402
from adrgw.demo.embedded import DemoVtn, SimulatedMeter, free_port  # noqa: E402

from .support.config import udp_port  # noqa: E402
from .support.oadr3 import require_mosquitto, require_spec  # noqa: E402
from .support.lan import HOSTS, sh  # noqa: E402

logsetup.setup("INFO")

#: Tiers (pytest.ini): a test file names its tier in a module-level ``pytestmark``; a test in a ``unit``
#: file that needs more carries its own heavier mark, which takes the place of the file's ``unit``.
HEAVIER_THAN_UNIT = {"integration", "process", "interop"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Hand a ``unit`` file's mark down to its tests, except to those marked heavier themselves, so
    ``-m unit`` selects exactly the pure tests (runs before pytest's own ``-m`` deselection)."""
    modules = {item.getparent(pytest.Module) for item in items} - {None}
    for module in modules:
        unit = [mark for mark in module.own_markers if mark.name == "unit"]
        if not unit:
            continue
        module.own_markers[:] = [mark for mark in module.own_markers if mark.name != "unit"]
        for item in items:
            if item.getparent(pytest.Module) is module and not {
                    mark.name for mark in item.iter_markers()} & HEAVIER_THAN_UNIT:
                item.own_markers.extend(unit)


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


@pytest.fixture
async def mqtt_broker() -> AsyncIterator[Any]:
    """Debian's mosquitto on a free loopback port (plain MQTT); skipped without it, failed under CI."""
    from adrgw.demo.vtn31 import MqttBroker

    require_mosquitto()
    broker = MqttBroker(port=free_port())
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def vtn31(mqtt_broker: Any) -> AsyncIterator[Any]:
    """The OpenADR 3.1.0 test VTN, validating every message against the spec, notifying over MQTT
    (``mqtt_broker``). Credentials: client_id "ven-1", client_secret "secret". A test that leaves a
    spec violation behind fails at teardown (``assert_valid``)."""
    from adrgw.demo.vtn31 import Vtn31

    server = Vtn31(port=free_port(), spec=require_spec(), mqtt=mqtt_broker.url)
    await server.start()
    yield server
    await server.stop()
    server.assert_valid()


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


@pytest.fixture
def lan() -> Iterator[dict[str, str]]:
    """A LAN in network namespaces (gateway, peer, client on a bridge; addresses in support.lan.HOSTS):
    the namespace names by role. Skipped without root and iproute2, failed under CI."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        message = "network namespaces need root and iproute2"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    tag = uuid.uuid4().hex[:6]
    names = {role: f"adrgw-{tag}-{role}" for role in (*HOSTS, "br")}
    try:
        sh("ip", "netns", "add", names["br"])
        sh("ip", "netns", "exec", names["br"], "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", names["br"], "ip", "link", "set", "br0", "up")
        for role, address in HOSTS.items():
            ns = names[role]
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", names["br"], "ip", "link", "add", f"v-{role}", "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "netns", "exec", names["br"], "ip", "link", "set", f"v-{role}", "master", "br0", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "brd", "10.77.0.255", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield names
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

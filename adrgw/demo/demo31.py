"""``--demo --protocol 3.1`` and ``--demo-peers --protocol 3.1``: the demos with an OpenADR 3.1.0 VTN.

The same simulated BACnet router + meter (and, for --demo-peers, the building controller) as the 2.0b
demos, with :class:`adrgw.demo.vtn31.Vtn31` instead of openleadr's VTN: a program ``demo`` and, once a
VEN object exists, a demo event with SIMPLE levels 1, 2, 3 a minute apart whose reportDescriptors ask
for USAGE (so reports flow), again every EVENT_REPEAT_SECONDS. Notifications: when Debian's mosquitto
is installed an MqttBroker runs beside the VTN and the printed config says ``notifications = auto``
(the gateway finds MQTT in /notifiers); without it the VTN offers only WEBHOOK and the config polls
every POLL_SECONDS. The VTN validates every message against the 3.1.0 spec when the spec file is there
(OPENADR3_SPEC, or .cache/openadr3/openadr3.yaml as tests/run.sh leaves it) and the test requirements
are installed; a demo never needs either.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping, Optional

from adrgw.demo.embedded import SimulatedMeter, demo_config, free_port, run_demo, tcp_port_free
from adrgw.demo.vtn31 import MqttBroker, MqttBrokerError, Vtn31, mosquitto_path, utc_stamp

log = logging.getLogger("adrgw.demo31")

CLIENT_ID = "ven-1"
CLIENT_SECRET = "demo-secret"
PROGRAM_NAME = "demo"
PEER_MQTT_PORT = 18830  # TCP: the MQTT broker of --demo-peers --protocol 3.1 (not 1883: a real broker may run)
POLL_SECONDS = 2  # the printed config's poll_interval when there is no broker
EVENT_FIRST_DELAY = timedelta(seconds=10)
EVENT_INTERVAL = timedelta(minutes=1)
EVENT_LEVELS = (1, 2, 3)
EVENT_REPEAT_SECONDS = 300.0
USAGE_REPORT = {"payloadType": "USAGE", "readingType": "DIRECT_READ", "units": "KW", "frequency": 1}


def find_spec() -> Optional[Path]:
    """The 3.1.0 spec when it is here and the validator's libraries are installed; else None."""
    if importlib.util.find_spec("openapi_schema_validator") is None or importlib.util.find_spec("yaml") is None:
        return None
    override = os.environ.get("OPENADR3_SPEC")
    candidates = [Path(override)] if override else [
        Path.cwd() / ".cache/openadr3/openadr3.yaml",
        Path(__file__).resolve().parents[2] / ".cache/openadr3/openadr3.yaml"]
    return next((path for path in candidates if path.is_file()), None)


def ven_section(vtn_url: str, ven_name: str, mqtt: bool) -> str:
    """The printed config's [ven] for 3.1 (key names fixed by issue 20)."""
    notifications = "notifications = auto" if mqtt else f"notifications = poll\npoll_interval = {POLL_SECONDS}"
    return f"""\
[ven]
protocol = 3.1
vtn_url = {vtn_url}
ven_name = {ven_name}
client_id = {CLIENT_ID}
client_secret = {CLIENT_SECRET}
{notifications}
"""


class Peers31:
    """The 3.1 VTN (+ broker when mosquitto is installed), the router + meter and, for the rehearsal,
    the building controller; and the demo program and events."""

    def __init__(self, vtn_port: int, meter_port: int, mqtt_port: Optional[int] = None,
                 bas_port: Optional[int] = None, extra_points: int = 0, host: str = "127.0.0.1",
                 use_mqtt: Optional[bool] = None) -> None:
        from adrgw.demo.peers import SimulatedBas

        self.host = host
        wanted = mosquitto_path() is not None if use_mqtt is None else use_mqtt
        self.broker = MqttBroker(port=mqtt_port or free_port(), host=host) if wanted else None
        self.spec = find_spec()
        self.vtn_port = vtn_port
        self.vtn: Optional[Vtn31] = None
        self.meter = SimulatedMeter(host=host, port=meter_port, extra_points=extra_points)
        self.bas = SimulatedBas(bas_port, host=host) if bas_port else None
        self._scheduler: Optional[asyncio.Task[None]] = None
        self._ven_seen = asyncio.Event()

    @property
    def mqtt(self) -> bool:
        return self.broker is not None and self.broker.running

    async def start(self) -> None:
        if self.broker is not None:
            try:
                await self.broker.start()
            except MqttBrokerError as exc:
                log.warning("demo: no MQTT broker (%s): the VTN offers webhooks and polling only", exc)
                self.broker = None
        if self.broker is None:
            log.info("demo: mosquitto is not installed: the VTN notifies by webhook only and the gateway "
                     "polls every %d s (apt-get install mosquitto for MQTT notifications)", POLL_SECONDS)
        self.vtn = Vtn31(port=self.vtn_port, host=self.host, spec=self.spec, client_id=CLIENT_ID,
                         client_secret=CLIENT_SECRET, mqtt=self.broker.url if self.broker else None)
        self.vtn.on_change = self._on_change
        await self.vtn.start()
        if self.spec is not None:
            log.info("demo: the VTN validates every message against %s", self.spec)
        self.vtn.add_program(PROGRAM_NAME, payloadDescriptors=[
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "SIMPLE"}])
        await self.meter.start()
        if self.bas is not None:
            self.bas.start()
        self._scheduler = asyncio.get_running_loop().create_task(self._schedule())

    def _on_change(self, collection: str, operation: str, obj: Mapping[str, Any]) -> None:
        if collection == "vens" and operation == "CREATE":
            log.info("VTN: VEN %r registered as %s", obj.get("venName"), obj.get("id"))
            self._ven_seen.set()

    def add_demo_event(self, start: datetime) -> dict[str, Any]:
        """SIMPLE 1, 2, 3 for a minute each from ``start``, asking for USAGE reports."""
        assert self.vtn is not None
        intervals = [{"id": n, "payloads": [{"type": "SIMPLE", "values": [level]}]}
                     for n, level in enumerate(EVENT_LEVELS)]
        return self.vtn.add_event(PROGRAM_NAME, intervals=intervals, event_name="demo event",
                                  interval_period={"start": utc_stamp(start),
                                                   "duration": f"PT{int(EVENT_INTERVAL.total_seconds())}S"},
                                  report_descriptors=[dict(USAGE_REPORT)])

    async def _schedule(self) -> None:
        """The first event EVENT_FIRST_DELAY after a VEN object exists, then every EVENT_REPEAT_SECONDS."""
        await self._ven_seen.wait()
        while True:
            start = datetime.now(timezone.utc) + EVENT_FIRST_DELAY
            event = self.add_demo_event(start)
            log.info("VTN: scheduled demo event %s: SIMPLE levels 1, 2, 3 for a minute each from %s",
                     event["id"], start.strftime("%H:%M:%S"))
            await asyncio.sleep(EVENT_REPEAT_SECONDS)

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
        if self.bas is not None:
            self.bas.stop()
        await self.meter.stop()
        if self.vtn is not None:
            await self.vtn.stop()
            if self.vtn.violations:
                log.warning("demo: the VTN saw %d spec violation(s); the first: %s", len(self.vtn.violations),
                            self.vtn.violations[0])
        if self.broker is not None:
            await self.broker.stop()


# ---------------------------------------------------------------------------------------------
# --demo-peers --protocol 3.1


def rehearsal_config31(vtn_url: str, mqtt: bool, state_directory: str = "./rehearsal-state") -> str:
    """The 2.0b rehearsal config with a 3.1 [ven]."""
    from adrgw.demo.peers import rehearsal_config

    text = rehearsal_config(state_directory)
    head, rest = text.split("[ven]\n", 1)
    rest = rest.split("\n[", 1)[1]
    return (head.replace("--demo-peers`", "--demo-peers --protocol 3.1`") + ven_section(vtn_url, "rehearsal-ven", mqtt)
            + "\n[" + rest)


async def run_peers31(out: Any = None) -> int:
    """The rehearsal peers with the 3.1 VTN on their fixed ports; the config on ``out`` (stdout)."""
    from adrgw.demo.peers import (PEER_BAS_PORT, PEER_HOST, PEER_ROUTER_PORT, PEER_VTN_PORT, PeerError, check_ports,
                                  serve_until_signal)

    try:
        check_ports()
        if mosquitto_path() is not None and not tcp_port_free(PEER_MQTT_PORT, PEER_HOST):
            raise PeerError(f"TCP {PEER_HOST}:{PEER_MQTT_PORT} (the MQTT broker) is in use: is --demo-peers "
                            "already running?")
    except PeerError as exc:
        print(f"bacnet-server-ven --demo-peers: {exc}", file=sys.stderr)
        return 1
    peers = Peers31(vtn_port=PEER_VTN_PORT, meter_port=PEER_ROUTER_PORT, mqtt_port=PEER_MQTT_PORT,
                    bas_port=PEER_BAS_PORT, extra_points=4, host=PEER_HOST)
    await peers.start()
    assert peers.vtn is not None
    mqtt = f", MQTT {peers.broker.url}" if peers.broker else ""
    return await serve_until_signal(
        peers.stop, rehearsal_config31(peers.vtn.url, peers.mqtt), out,
        f"rehearsal peers (OpenADR 3.1): VTN {peers.vtn.url}{mqtt}; BACnet router {PEER_HOST}:{PEER_ROUTER_PORT} "
        f"(meter 12345:2); building controller {PEER_HOST}:{PEER_BAS_PORT} (device 4001)")


# ---------------------------------------------------------------------------------------------
# --demo --protocol 3.1: the same demo runner as 2.0b (adrgw/demo/embedded.run_demo), these peers


def demo_ven_section31(vtn_url: str, mqtt: bool) -> str:
    """The 3.1 demo gateway's [ven]."""
    return ven_section(vtn_url, "demo-ven", mqtt) + "request_timeout = 5\nretry_max = 10\n"


def demo_config31(vtn_url: str, mqtt: bool, gateway_port: int, meter_host: str, meter_port: int,
                  state_directory: str, http_port: int) -> str:
    """The whole config.ini the 3.1 demo's gateway runs with (written as the demo's demo.ini)."""
    return demo_config(demo_ven_section31(vtn_url, mqtt), gateway_port, (meter_host, meter_port), http_port,
                       state_directory)


class DemoPeers31(Peers31):
    """Peers31 as the demo runner wants them (embedded.DemoPeers): the VTN schedules its own events."""

    def ven_section(self) -> str:
        assert self.vtn is not None
        return demo_ven_section31(self.vtn.url, self.mqtt)

    def describe(self) -> str:
        assert self.vtn is not None
        mqtt = f", MQTT {self.broker.url}" if self.broker is not None and self.mqtt else ""
        return (f"VTN (OpenADR 3.1) at {self.vtn.url}{mqtt}, router at {self.meter.host}:{self.meter.port} "
                "(network 12345, meter 12345:2)")

    async def drive(self, gateway: Any) -> None:
        """Nothing to add: the VTN schedules the demo events once the VEN object exists."""
        await asyncio.Event().wait()


async def run_demo31(log_level: str = "INFO", command: str = "bacnet-server-ven") -> int:
    """VTN (+ broker) + router/meter + a 3.1 gateway in one process on loopback (``--demo``'s runner:
    the same ports, warnings, demo.ini, ``--status -c`` line and clean-up as the 2.0b demo)."""
    return await run_demo(log_level, command,
                          peers_for=lambda meter_port: DemoPeers31(vtn_port=free_port(), meter_port=meter_port))

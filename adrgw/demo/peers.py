"""``--demo-peers``: the demo's peers alone, on fixed loopback ports, to rehearse a real config.

``--demo`` runs everything in one process with random ports; a technician preparing a site wants to
run *their* config.ini (write targets, report points, TLS off) against something that behaves like
the site. This starts, on 127.0.0.1 only:

* the demo VTN (openleadr) on TCP PEER_VTN_PORT; it accepts any VEN and sends every VEN that
  registers a demo event (levels 1, 2, 3 for 20 s each) 10 s after registration and every 2 minutes;
* a BACnet router on UDP PEER_ROUTER_PORT to network 12345 with the meter at ``12345:2``
  (``analogInput 2``, kW, drifting) and four more analog inputs (``analogInput 1000`` .. ``1003``)
  for ``[report.NAME]`` points;
* a building controller on UDP PEER_BAS_PORT (device 4001) with commandable points for
  ``[write.NAME]`` targets: ``analogValue 5`` (zone setpoint), ``binaryValue 6`` (fan enable),
  ``multiStateValue 7`` (chiller mode, 3 states);

and prints a config.ini that points a gateway at them (its own BACnet port PEER_GATEWAY_PORT).
None of the ports is 47808, so a real BACnet application on this PC is not disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from adrgw.demo.embedded import DemoVtn, SimulatedMeter, udp_port_free

log = logging.getLogger("adrgw.peers")

PEER_HOST = "127.0.0.1"
PEER_VTN_PORT = 8180  # TCP: http://127.0.0.1:8180/OpenADR2/Simple/2.0b
PEER_ROUTER_PORT = 47820  # UDP: BACnet router to network 12345 (meter 12345:2)
PEER_BAS_PORT = 47821  # UDP: building controller, device 4001, commandable points
PEER_GATEWAY_PORT = 47822  # UDP: the port the printed config gives the gateway itself
PEER_POLL_SECONDS = 2.0  # the VTN asks VENs to poll this often (events arrive within ~2 s)
EVENT_LEVELS = [1.0, 2.0, 3.0]
EVENT_INTERVAL = timedelta(seconds=20)
EVENT_REPEAT_SECONDS = 120.0


def rehearsal_config(state_directory: str = "./rehearsal-state") -> str:
    """The config.ini --demo-peers prints: every kind of section, pointed at the peers."""
    return f"""\
; config.ini for a rehearsal against `bacnet-server-ven --demo-peers` (all on loopback).
; Replace sections with your site's and keep the addresses below to try them before going on site.
[ven]
ven_name = rehearsal-ven
vtn_url = http://{PEER_HOST}:{PEER_VTN_PORT}/OpenADR2/Simple/2.0b

[bacnet]
address = {PEER_HOST}/8
port = {PEER_GATEWAY_PORT}
routes = 12345={PEER_HOST}:{PEER_ROUTER_PORT}

[meter]
address = 12345:2
object = analogInput 2
interval = 10
timeout = 3
resource_id = device001
measurement = power_real
unit = kW

; more report points on the same meter device (analogInput 1000 .. 1003)
[report.feeder-1]
address = 12345:2
object = analogInput 1000

; write-through targets on the building controller at {PEER_HOST}:{PEER_BAS_PORT}
[write.zone-setpoint]
address = {PEER_HOST}:{PEER_BAS_PORT}
object = analogValue 5
priority = 10
values = 1=74, 2=76, 3=78

[write.fan]
address = {PEER_HOST}:{PEER_BAS_PORT}
object = binaryValue 6
values = 3=inactive

[state]
directory = {state_directory}
"""


class SimulatedBas:
    """A building controller with commandable analog, binary and multi-state values (bacpypes3)."""

    def __init__(self, port: int, device_id: int = 4001, host: str = PEER_HOST) -> None:
        self.host, self.port, self.device_id = host, port, device_id
        self.app: Any = None

    def start(self) -> None:
        from bacpypes3.app import Application
        from bacpypes3.local.analog import AnalogValueObjectCmd
        from bacpypes3.local.binary import BinaryValueObject
        from bacpypes3.local.cmd import Commandable
        from bacpypes3.local.device import DeviceObject
        from bacpypes3.local.multistate import MultiStateValueObject
        from bacpypes3.local.networkport import NetworkPortObject

        class BinaryValueCmd(Commandable, BinaryValueObject):  # type: ignore[misc]
            pass

        class MultiStateValueCmd(Commandable, MultiStateValueObject):  # type: ignore[misc]
            pass

        self.app = Application.from_object_list([
            DeviceObject(objectIdentifier=("device", self.device_id), objectName="sim-bas", vendorIdentifier=999),
            NetworkPortObject(f"{self.host}/8:{self.port}", objectIdentifier=("network-port", 1), objectName="NP1"),
            AnalogValueObjectCmd(objectIdentifier=("analog-value", 5), objectName="ZN-T-SP", presentValue=72.0,
                                 relinquishDefault=72.0, units="degreesFahrenheit"),
            BinaryValueCmd(objectIdentifier=("binary-value", 6), objectName="AHU-Fan-Enable",
                           presentValue="active", relinquishDefault="active"),
            MultiStateValueCmd(objectIdentifier=("multi-state-value", 7), objectName="Chiller-Mode",
                               presentValue=1, relinquishDefault=1, numberOfStates=3),
        ])

    def stop(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None


class PeerError(Exception):
    """A fixed port is taken; the message is one line."""


def check_ports() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((PEER_HOST, PEER_VTN_PORT))
        except OSError:
            raise PeerError(f"TCP {PEER_HOST}:{PEER_VTN_PORT} (the VTN) is in use: is --demo-peers already "
                            "running?") from None
    for port, what in ((PEER_ROUTER_PORT, "the BACnet router"), (PEER_BAS_PORT, "the building controller")):
        if not udp_port_free(port, PEER_HOST):
            raise PeerError(f"UDP {PEER_HOST}:{port} ({what}) is in use: is --demo-peers already running?")


class Peers:
    """The VTN, router + meter and building controller, started and stopped together."""

    def __init__(self) -> None:
        self.vtn = DemoVtn(port=PEER_VTN_PORT, poll_freq=PEER_POLL_SECONDS, host=PEER_HOST,
                           on_registered=self._registered)
        self.meter = SimulatedMeter(host=PEER_HOST, port=PEER_ROUTER_PORT, extra_points=4)
        self.bas = SimulatedBas(PEER_BAS_PORT)
        self._event_tasks: dict[str, asyncio.Task[None]] = {}

    def _registered(self, ven_name: str, ven_id: str) -> None:
        if ven_id not in self._event_tasks or self._event_tasks[ven_id].done():
            self._event_tasks[ven_id] = asyncio.get_running_loop().create_task(self._events_for(ven_name, ven_id))

    async def _events_for(self, ven_name: str, ven_id: str) -> None:
        """A demo event 10 s after registration, then one every EVENT_REPEAT_SECONDS."""
        delay = 10.0
        while True:
            start = datetime.now(timezone.utc) + timedelta(seconds=delay)
            event_id = self.vtn.add_event(ven_id, EVENT_LEVELS, start, EVENT_INTERVAL)
            log.info("VTN: scheduled demo event %s for %r (%s): levels 1, 2, 3 for %d s each from %s",
                     event_id, ven_name, ven_id, EVENT_INTERVAL.total_seconds(), start.strftime("%H:%M:%S"))
            await asyncio.sleep(EVENT_REPEAT_SECONDS)
            delay = 30.0

    async def start(self) -> None:
        check_ports()
        # openleadr's VTN prints a banner on standard output, where the config.ini goes: send it to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            await self.vtn.start()
        await self.meter.start()
        self.bas.start()

    async def stop(self) -> None:
        for task in self._event_tasks.values():
            task.cancel()
        await asyncio.gather(*self._event_tasks.values(), return_exceptions=True)
        self.bas.stop()
        await self.meter.stop()
        await self.vtn.stop()


async def run_peers(out: Any = None) -> int:
    """Start the peers, print the rehearsal config.ini to ``out`` (stdout), run until SIGINT/SIGTERM."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("openleadr").setLevel(logging.ERROR)  # the VTN's per-message chatter
    peers = Peers()
    try:
        await peers.start()
    except PeerError as exc:
        print(f"bacnet-server-ven --demo-peers: {exc}", file=sys.stderr)
        return 1
    return await serve_until_signal(
        peers.stop, rehearsal_config(), out,
        f"rehearsal peers: VTN {peers.vtn.url}; BACnet router {PEER_HOST}:{PEER_ROUTER_PORT} (meter 12345:2); "
        f"building controller {PEER_HOST}:{PEER_BAS_PORT} (device 4001)")


async def serve_until_signal(stop_peers: Callable[[], Awaitable[None]], config: str, out: Any, what: str) -> int:
    """The rehearsal peers' run (either protocol): print the gateway's ``config`` to ``out`` (stdout),
    say ``what`` runs, wait for SIGINT/SIGTERM, stop the peers; exit code 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stream = out or sys.stdout
    stream.write(config)
    stream.flush()
    log.info("%s. The config.ini for a gateway is on standard output. Ctrl-C stops.", what)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await stop_peers()
    log.info("rehearsal peers stopped")
    return 0


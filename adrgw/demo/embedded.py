"""Real peers on loopback: an openleadr VTN, a BACnet router with a simulated meter behind it.

Used by ``--demo`` (so a newcomer sees the gateway work with nothing else installed) and by the
integration tests and benchmarks. Nothing here is a mock: the VTN is openleadr's ``OpenADRServer``
over HTTP, the router and meter are bacpypes3 applications speaking BACnet/IP over UDP, with the
meter on a virtual network 12345 behind the router (as an MS/TP meter would be).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import shlex
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Protocol

log = logging.getLogger("adrgw.demo")

_vlan_ids = itertools.count(1)


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1", avoid: tuple[int, ...] = ()) -> int:
    """A port the OS says is free now on ``host`` (TCP or UDP)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port


def tcp_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a TCP server could listen on ``host:port`` now. SO_REUSEADDR as the web server's
    own listening socket has it (asyncio sets it): connections of a previous run still in TIME_WAIT
    do not count as "in use", a socket another program holds does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def udp_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a UDP socket could bind ``host:port`` now (BACnet/IP: no TIME_WAIT to allow for)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# BACnet router + meter


class SimulatedMeter:
    """A BACnet/IP router (network 1 side on ``host:port``) to virtual network ``network`` with a
    meter device at MAC ``mac`` exposing ``analogInput 2`` (kW) whose value drifts over time.

    ``online = False`` makes the meter stop answering (requests time out), as a dead MS/TP device.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 47809, network: int = 12345, mac: int = 2,
                 instance: int = 2, base_value: float = 95.0, prefix: int = 8, extra_points: int = 0) -> None:
        self.host, self.port, self.network, self.mac, self.instance = host, port, network, mac, instance
        self.prefix = prefix
        # More analog inputs (instances 1000, 1001, ...; value = instance / 10) for [report.NAME] tests
        # and the scale benchmark.
        self.extra_points = extra_points
        self.base_value = base_value
        self.online = True
        self.fixed_value: Optional[float] = None  # tests pin the value; None: drifting curve
        # Tests that must match every reported value to the meter: value = value_fn(time of the read).
        self.value_fn: Optional[Callable[[float], float]] = None
        self.reads = 0
        self._router: Any = None
        self._meter: Any = None
        self._ai: Any = None
        self._task: Optional[asyncio.Task[None]] = None

    @property
    def value(self) -> float:
        return float(self._ai.presentValue)

    def set_value(self, value: float) -> None:
        self.fixed_value = value
        if self._ai is not None:
            self._ai.presentValue = value

    def _curve(self) -> float:
        t = time.time()
        return round(self.base_value + 5.0 * math.sin(t / 60.0) + 0.5 * math.sin(t / 7.0), 2)

    async def start(self) -> None:
        from bacpypes3.app import Application
        from bacpypes3.local.analog import AnalogInputObject
        from bacpypes3.local.device import DeviceObject
        from bacpypes3.local.networkport import NetworkPortObject
        from bacpypes3.vlan import VirtualNetwork

        meter_sim = self

        class MeterApplication(Application):  # type: ignore[misc]
            async def do_ReadPropertyRequest(self, apdu: Any) -> None:  # noqa: N802 - bacpypes3 name
                if not meter_sim.online:
                    return  # silence: the client's request times out, as with a dead device
                meter_sim.reads += 1
                if meter_sim.value_fn is not None:
                    meter_sim._ai.presentValue = meter_sim.value_fn(time.time())
                await super().do_ReadPropertyRequest(apdu)

            async def do_ReadPropertyMultipleRequest(self, apdu: Any) -> None:  # noqa: N802
                if not meter_sim.online:
                    return
                meter_sim.reads += 1
                await super().do_ReadPropertyMultipleRequest(apdu)

        vlan = f"vlan{self.network}-{next(_vlan_ids)}"
        VirtualNetwork(vlan)
        router_objects = [
            DeviceObject(objectIdentifier=("device", 10000 + self.network % 10000), objectName="sim-router",
                         vendorIdentifier=999),
            NetworkPortObject(f"{self.host}/{self.prefix}:{self.port}", objectIdentifier=("network-port", 1),
                              objectName="NP-IP", networkNumber=1, networkNumberQuality="configured"),
            NetworkPortObject(None, objectIdentifier=("network-port", 2), objectName="NP-VLAN",
                              networkNumber=self.network, networkNumberQuality="configured",
                              networkType="virtual", protocolLevel="bacnet-application",
                              macAddress=bytes([1]), networkInterfaceName=vlan),
        ]
        self._router = Application.from_object_list(router_objects)
        self._ai = AnalogInputObject(objectIdentifier=("analog-input", self.instance), objectName="Main-kW",
                                     presentValue=self.fixed_value if self.fixed_value is not None
                                     else self._curve(), units="kilowatts",
                                     description="Simulated building main power meter")
        meter_objects = [
            DeviceObject(objectIdentifier=("device", 20000 + self.mac), objectName="sim-meter",
                         vendorIdentifier=999),
            NetworkPortObject(None, objectIdentifier=("network-port", 1), objectName="NP-MSTP",
                              networkNumber=0, networkType="virtual", protocolLevel="bacnet-application",
                              macAddress=bytes([self.mac]), networkInterfaceName=vlan),
            self._ai,
        ] + [AnalogInputObject(objectIdentifier=("analog-input", 1000 + n), objectName=f"AI-{1000 + n}",
                               presentValue=(1000 + n) / 10, units="kilowatts") for n in range(self.extra_points)]
        self._meter = MeterApplication.from_object_list(meter_objects)
        await asyncio.sleep(0)
        await self._router.nse.i_am_router_to_network()
        self._task = asyncio.create_task(self._drift())
        log.info("simulated router on %s:%d -> network %d, meter at %d:%d analogInput %d",
                 self.host, self.port, self.network, self.network, self.mac, self.instance)

    async def _drift(self) -> None:
        while True:
            if self.fixed_value is None:
                self._ai.presentValue = self._curve()
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for app in (self._meter, self._router):
            if app is not None:
                app.close()
        self._meter = self._router = None


# ---------------------------------------------------------------------------------------------
# VTN


@dataclass
class VtnRecord:
    """What the VTN saw, for the demo's console and for tests to assert on."""

    registrations: list[str] = field(default_factory=list)
    readings: list[tuple[datetime, float]] = field(default_factory=list)
    opts: list[tuple[str, str]] = field(default_factory=list)
    report_messages: int = 0
    # TELEMETRY_STATUS: (resource_id, time, oadrPayloadResourceStatus as openleadr parses it:
    # {'online': bool, 'manual_override': bool, 'load_control_state': {...}})
    status: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)
    by_resource: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)  # TELEMETRY_USAGE
    eiopts: list[dict[str, Any]] = field(default_factory=list)  # oadrCreateOpt payloads (opt_id, event_id, ...)
    eiopt_cancels: list[str] = field(default_factory=list)  # optIDs of oadrCancelOpt


class DemoVtn:
    """openleadr's OpenADRServer on 127.0.0.1 that accepts any VEN and requests its telemetry."""

    def __init__(self, port: int, poll_freq: float = 2.0, vtn_id: str = "DEMO-VTN",
                 sampling: Optional[float] = None, accept: bool = True, host: str = "127.0.0.1",
                 tls: Optional[dict[str, Any]] = None,
                 on_registered: Optional[Callable[[str, str], None]] = None) -> None:
        """``tls``: serve HTTPS and sign messages: keys ``cert``, ``key`` (the VTN's), ``ca_file`` (to
        verify VEN client certificates), ``ven_fingerprint`` (the VEN certificate it accepts),
        optionally ``ciphers`` and ``max_version`` to restrict the TLS server; ``on_registered``:
        called with (ven_name, ven_id) after each accepted registration (--demo-peers sends events)."""
        self.port = port
        self.host = host
        self.tls = tls
        self.poll_freq = poll_freq
        self.vtn_id = vtn_id
        self.sampling = sampling
        self.accept = accept
        self.record = VtnRecord()
        self.ven_ids: dict[str, str] = {}  # ven_name -> ven_id
        self.server: Any = None
        self._kept: Optional[dict[str, Any]] = None
        self.main_resource = "device001"  # record.readings holds this resource's values (the [meter])
        self.on_registered = on_registered

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}/OpenADR2/Simple/2.0b"

    def _create_server(self) -> Any:
        from openleadr import OpenADRServer

        tls = self.tls or {}
        server = OpenADRServer(vtn_id=self.vtn_id, http_host=self.host, http_port=self.port,
                               requested_poll_freq=timedelta(seconds=self.poll_freq),
                               ven_lookup=self._ven_lookup, show_fingerprint=False,
                               cert=tls.get("cert"), key=tls.get("key"),
                               http_cert=tls.get("cert"), http_key=tls.get("key"), http_ca_file=tls.get("ca_file"))
        if server.ssl_context is not None:
            if tls.get("max_version"):
                server.ssl_context.maximum_version = tls["max_version"]
            if tls.get("ciphers"):
                server.ssl_context.set_ciphers(tls["ciphers"])
        server.add_handler("on_create_party_registration", self._on_register)
        server.add_handler("on_register_report", self._on_register_report)
        self._route_eiopt(server)
        self._take_resource_status(server)
        return server

    def _route_eiopt(self, server: Any) -> None:
        """Workaround for openleadr 0.5.36: ``OpenADRServer`` defines ``OptService`` but never routes
        EiOpt (a VEN's oadrCreateOpt gets HTTP 404), and its handlers return nothing. A subclass that
        records the opts and answers oadrCreatedOpt / oadrCanceledOpt is routed at EiOpt (pinned by
        tests/test_registration.py)."""
        from aiohttp import web
        from openleadr.service import opt_service

        record = self.record

        class Opts(opt_service.OptService):  # type: ignore[misc]
            @opt_service.handler("oadrCreateOpt")
            async def create_opt(self, payload: dict[str, Any]) -> Any:
                record.eiopts.append(payload)
                log.info("VTN: %s sent %s for event %s (opt %s)", payload.get("ven_id"), payload.get("opt_type"),
                         payload.get("event_id"), payload.get("opt_id"))
                return "oadrCreatedOpt", {"opt_id": payload["opt_id"]}

            @opt_service.handler("oadrCancelOpt")
            async def cancel_opt(self, payload: dict[str, Any]) -> Any:
                record.eiopt_cancels.append(payload["opt_id"])
                log.info("VTN: %s cancelled opt %s", payload.get("ven_id"), payload.get("opt_id"))
                return "oadrCanceledOpt", {"opt_id": payload["opt_id"]}

        server.app.add_routes([web.post(f"{server.http_path_prefix}/EiOpt", Opts(self.vtn_id).handler)])

    def _take_resource_status(self, server: Any) -> None:
        """openleadr 0.5.36's VTN reads ``report_payload['value']`` of every interval and fails with
        KeyError (HTTP 500) on an ``oadrPayloadResourceStatus`` payload (TELEMETRY_STATUS as the
        schema defines it): record those intervals here and hand openleadr the rest."""
        reports = server.services["report_service"]
        original = reports.handlers["oadrUpdateReport"]

        async def update_report(payload: dict[str, Any]) -> Any:
            for report in payload.get("reports") or []:
                kept = []
                for interval in report.get("intervals") or []:
                    status = (interval.get("report_payload") or {}).get("payload_resource_status")
                    if status is None:
                        kept.append(interval)
                        continue
                    r_id = interval["report_payload"].get("r_id", "")
                    self.record.status.append((r_id.rsplit("_status", 1)[0], interval.get("dtstart"), status))
                report["intervals"] = kept
            return await original(payload)

        reports.handlers["oadrUpdateReport"] = update_report

    def _ven_lookup(self, ven_id: str) -> Optional[dict[str, Any]]:
        for name, known in self.ven_ids.items():
            if known == ven_id:
                return {"ven_id": ven_id, "ven_name": name, "registration_id": f"reg-{ven_id}",
                        "fingerprint": (self.tls or {}).get("ven_fingerprint")}
        return None

    def _on_register(self, info: dict[str, Any]) -> Any:
        if not self.accept:
            return False
        name = info["ven_name"]
        ven_id = self.ven_ids.setdefault(name, f"ven-{len(self.ven_ids) + 1}")
        self.record.registrations.append(ven_id)
        log.info("VTN: registered %r as %s", name, ven_id)
        if self.on_registered is not None:
            self.on_registered(name, ven_id)
        return ven_id, f"reg-{ven_id}"

    def _on_register_report(self, ven_id: str, resource_id: str, measurement: str, unit: str, scale: str,
                            min_sampling_interval: timedelta, max_sampling_interval: timedelta) -> Any:
        interval = timedelta(seconds=self.sampling) if self.sampling else min_sampling_interval
        if measurement == "Status":  # TELEMETRY_STATUS: one r_id per status item (online, ...)
            def on_status(values: list[tuple[datetime, float]]) -> None:
                self.record.status.extend((resource_id, t, v) for t, v in values)

            return on_status, min_sampling_interval

        def on_values(values: list[tuple[datetime, float]]) -> None:
            self.record.report_messages += 1
            self.record.by_resource.setdefault(resource_id, []).extend(values)
            if resource_id != self.main_resource:
                return
            self.record.readings.extend(values)
            log.info("VTN: received %d reading(s) from %s/%s, last %s", len(values), ven_id, resource_id,
                     values[-1][1] if values else None)

        return on_values, interval

    async def start(self) -> None:
        self.server = self._create_server()
        if self._kept is not None:
            # A VTN with a database: report requests and events survive its restart.
            reports = self.server.services["report_service"]
            reports.report_callbacks, reports.requested_reports = self._kept["reports"]
            events = self.server.services["event_service"]
            events.events, events.event_callbacks = self._kept["events"]
        await self.server.run()

    async def stop(self, keep_state: bool = True) -> None:
        """Stop serving; with ``keep_state`` a later start() remembers VENs, report requests and events
        (like a production VTN), otherwise it starts as a VTN that never saw this gateway."""
        if self.server is not None:
            reports = self.server.services["report_service"]
            self._kept = {"reports": (reports.report_callbacks, reports.requested_reports),
                          "events": (self.server.events, self.server.event_callbacks)} if keep_state else None
            if not keep_state:
                self.ven_ids.clear()
            await self.server.stop()
            self.server = None

    def add_event(self, ven_id: str, levels: list[float], start: datetime, interval: timedelta,
                  signal_name: str = "SIMPLE", signal_type: str = "level", **kwargs: Any) -> str:
        intervals = [{"dtstart": start + n * interval, "duration": interval, "signal_payload": level}
                     for n, level in enumerate(levels)]
        return self.server.add_event(ven_id=ven_id, signal_name=signal_name, signal_type=signal_type,
                                     intervals=intervals, callback=self._on_opt, **kwargs)

    def add_full_event(self, ven_id: str, levels: list[float], start: datetime, interval: timedelta,
                       priority: int = 0, test_event: bool = False, start_after: Optional[timedelta] = None,
                       ramp_up: Optional[timedelta] = None, signal_name: str = "SIMPLE",
                       extra_signals: Optional[list[Any]] = None) -> str:
        """An event with the OpenADR features add_event() cannot express (priority, test event,
        randomization, ramp-up), built from openleadr's objects and queued with add_raw_event."""
        from openleadr import objects, utils

        event_id = utils.generate_id()
        intervals = [objects.Interval(dtstart=start + n * interval, duration=interval, signal_payload=level,
                                      uid=n) for n, level in enumerate(levels)]
        signals = [objects.EventSignal(intervals=intervals, signal_name=signal_name, signal_type="level",
                                       signal_id=utils.generate_id())] + list(extra_signals or [])
        event = objects.Event(
            event_descriptor=objects.EventDescriptor(
                event_id=event_id, modification_number=0, market_context="oadr://demo", event_status="far",
                created_date_time=datetime.now(timezone.utc), priority=priority, test_event=test_event),
            active_period=objects.ActivePeriod(
                dtstart=start, duration=interval * len(levels),
                tolerance={"startafter": start_after} if start_after else None, ramp_up_period=ramp_up),
            event_signals=signals, targets=[{"ven_id": ven_id}], response_required="always")
        active_period = event.active_period
        added = self.server.add_raw_event(ven_id=ven_id, event=event, callback=self._on_opt)
        # openleadr's add_raw_event looks for 'event_descriptor.active_period' (never there) and so
        # always rebuilds the active period from the intervals, dropping tolerance and ramp-up: put
        # ours back (openleadr 0.5.36 bug).
        event.active_period = active_period
        return added

    def _find(self, ven_id: str, event_id: str) -> Any:
        from openleadr import utils

        return utils.find_by(self.server.events[ven_id], "event_descriptor.event_id", event_id)

    def modify_event(self, ven_id: str, event_id: str, levels: list[float]) -> None:
        """Replace the levels of an event's first signal and bump its modificationNumber."""
        from openleadr import utils

        event = self._find(ven_id, event_id)
        for interval, level in zip(utils.getmember(event, "event_signals")[0].intervals, levels, strict=False):
            utils.setmember(interval, "signal_payload", level)
        utils.increment_event_modification_number(event)
        self.server.events_updated[ven_id] = True

    def forget_event(self, ven_id: str, event_id: str) -> None:
        """Stop listing an event (the VEN must treat that as an implied cancellation)."""
        self.server.events[ven_id].remove(self._find(ven_id, event_id))
        self.server.events_updated[ven_id] = True

    def _on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        self.record.opts.append((event_id, opt_type))
        # openleadr's VTN calls an event's callback for the first oadrCreatedEvent only (it pops it);
        # a VEN may change its opt later (opt-out from the building), so listen again.
        event = self._find(ven_id, event_id) if self.server is not None and ven_id in self.server.events else None
        if event is not None:
            self.server.event_callbacks[event_id] = (event, self._on_opt)
        log.info("VTN: %s answered %s for event %s", ven_id, opt_type, event_id)

    def cancel_event(self, ven_id: str, event_id: str) -> None:
        self.server.cancel_event(ven_id, event_id)


# ---------------------------------------------------------------------------------------------
# --demo


DEMO_HTTP_PORT = 8047  # the status page's usual port ([http] listen's default)
DEMO_BACNET_PORT = 47808  # the usual BACnet/IP port
DEMO_CONFIG = "demo.ini"  # in the demo's temporary directory, beside its state directory


def ven_section20b(vtn_url: str) -> str:
    """The 2.0b demo's [ven]."""
    return f"""\
[ven]
ven_name = demo-ven
vtn_url = {vtn_url}
request_timeout = 5
retry_max = 10
"""


def demo_config(ven_section: str, gateway_port: int, router: tuple[str, int], http_port: int,
                state_directory: str) -> str:
    """The config.ini that describes a running ``--demo`` (either protocol: ``ven_section`` is its
    [ven]). The demo loads its own settings from it, so the file is exactly what runs, and
    ``--status -c`` reads the demo's state through it (the status command finds a gateway by its
    config's ``[state] directory``)."""
    return f"""\
; The running --demo, described as a config.ini (written by the demo, removed when it stops).
; Ask it how it is with: bacnet-server-ven --status -c <this file>
{ven_section}
[bacnet]
address = 127.0.0.1/8
port = {gateway_port}
device_id = 599
routes = 12345={router[0]}:{router[1]}

[meter]
interval = 5
timeout = 2

[state]
directory = {state_directory}

[http]
listen = 127.0.0.1:{http_port}
"""


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


class DemoPeers(Protocol):
    """What a protocol's demo brings beside the gateway: its VTN (and broker), the router + meter.

    ``start``/``stop``: bring them up and down; ``ven_section``: the gateway's [ven] for them;
    ``describe``: one line saying where they are; ``drive``: the VTN side of the demo (schedule the
    demo events) for the running ``gateway``, until cancelled."""

    meter: "SimulatedMeter"

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ven_section(self) -> str: ...

    def describe(self) -> str: ...

    async def drive(self, gateway: Any) -> None: ...


class Peers20b:
    """The 2.0b demo's peers: openleadr's VTN and the router + meter; a demo event every 2 minutes."""

    def __init__(self, meter_port: int) -> None:
        self.vtn = DemoVtn(port=free_port(), poll_freq=2.0)
        self.meter = SimulatedMeter(port=meter_port)

    async def start(self) -> None:
        await self.vtn.start()
        await self.meter.start()

    async def stop(self) -> None:
        await self.meter.stop()
        await self.vtn.stop()

    def ven_section(self) -> str:
        return ven_section20b(self.vtn.url)

    def describe(self) -> str:
        return f"VTN at {self.vtn.url}, router at {self.meter.host}:{self.meter.port} (network 12345, meter 12345:2)"

    async def drive(self, gateway: Any) -> None:
        await gateway.link.registered.wait()
        ven_id = gateway.link.ven_id or "ven-1"
        first = True
        while True:
            start = datetime.now(timezone.utc) + timedelta(seconds=10 if first else 30)
            event_id = self.vtn.add_event(ven_id, [1.0, 2.0, 3.0], start, timedelta(seconds=20))
            log.info("VTN: scheduled demo event %s: levels 1, 2, 3 for 20 s each from %s",
                     event_id, start.strftime("%H:%M:%S"))
            first = False
            await asyncio.sleep(120)


async def run_demo(log_level: str = "INFO", command: str = "bacnet-server-ven",
                   peers_for: Optional[Callable[[int], DemoPeers]] = None) -> int:
    """Demo peers + gateway in one process on loopback (``peers_for(meter_port)``: the protocol's
    peers; default the 2.0b ones: openleadr's VTN, events every 2 minutes).

    Everything it writes (its config and its state) lives in one temporary directory, removed when
    it stops: a demo leaves nothing behind and never replays an old run. ``command``: how this
    process was started (cli.invocation), for the ``--status -c`` line it prints."""
    from adrgw.app import Gateway, run_until_signal
    from adrgw.ops.sdnotify import Notifier
    from adrgw.settings_load import load

    if log_level != "DEBUG":
        # The in-process VTN's own openleadr warnings (e.g. "current_value ... will be corrected" for
        # every pending SIMPLE event) are about the demo VTN, not the gateway: keep them out.
        logging.getLogger("openleadr").setLevel(logging.ERROR)
    workdir = tempfile.mkdtemp(prefix="adrgw-demo-")
    removed = False
    gateway: Optional[Gateway] = None

    async def remove_workdir() -> None:
        """Remove the demo's directory once the gateway has closed its store, and say so."""
        nonlocal removed
        if removed:
            return
        removed = True
        pending = len(gateway.samples) if gateway is not None else 0
        await asyncio.to_thread(shutil.rmtree, workdir, True)
        if pending:
            log.info("demo: removed its temporary directory %s, with %d sample(s) its VTN had not "
                     "acknowledged yet (a demo's next start begins afresh)", workdir, pending)
        else:
            log.info("demo: removed its temporary directory %s", workdir)

    try:
        gateway_port = DEMO_BACNET_PORT if udp_port_free(DEMO_BACNET_PORT) else free_port(socket.SOCK_DGRAM)
        if gateway_port != DEMO_BACNET_PORT:
            log.warning("UDP %d is in use on 127.0.0.1; the demo gateway uses port %d", DEMO_BACNET_PORT,
                        gateway_port)
        http_port = DEMO_HTTP_PORT if tcp_port_free(DEMO_HTTP_PORT) else free_port()
        if http_port != DEMO_HTTP_PORT:
            log.warning("TCP %d is in use on 127.0.0.1; the demo's status page is on http://127.0.0.1:%d/",
                        DEMO_HTTP_PORT, http_port)
        meter_port = free_port(socket.SOCK_DGRAM, avoid=(gateway_port,))
        peers = peers_for(meter_port) if peers_for is not None else Peers20b(meter_port)
        await peers.start()
        config_path = os.path.join(workdir, DEMO_CONFIG)
        await asyncio.to_thread(_write_text, config_path, demo_config(
            peers.ven_section(), gateway_port, (peers.meter.host, peers.meter.port), http_port,
            os.path.join(workdir, "state")))
        try:
            settings = replace(await asyncio.to_thread(load, config_path), log_level=log_level)
            gateway = Gateway(settings, notifier=Notifier(), keeps_state=False)
        except BaseException:
            await peers.stop()
            raise
        driver = asyncio.create_task(peers.drive(gateway))

        async def stop_peers() -> None:
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
            await peers.stop()
            await remove_workdir()

        log.info("demo: %s, gateway BACnet device 599 on 127.0.0.1:%d. Ctrl-C stops.", peers.describe(),
                 gateway_port)
        log.info("demo: its config and state are in %s (removed when it stops); from another terminal, "
                 "ask it how it is: %s --status -c %s", workdir, command, shlex.quote(config_path))
        return await run_until_signal(gateway, extra_stop=stop_peers)
    finally:
        await remove_workdir()

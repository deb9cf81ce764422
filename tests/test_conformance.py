"""BACnet device conformance (issue 13): the gateway's own identity, honest capabilities, an answer to
every request, NetworkPort, active COV subscriptions, device management (DCC, RD, TS, UTC) and the
PICS, read by a second independent client stack: @bacnet-js/client (Node), besides bac-py elsewhere.
Wire-level checks (Reject PDUs, the WritePropertyMultiple-Error) use a plain UDP socket."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import struct
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.primitivedata import ObjectType

from adrgw.bacnet import conformance

from adrgw.bacnet import devmgmt
from adrgw.config.settings import WriteTarget
from adrgw.demo.embedded import free_port
from adrgw.core.ratelog import RateLimitedLog

from .support.bacnet_raw import (ACTIVE_COV, ALL, ANALOG_VALUE, BINARY_VALUE, DEVICE, ENUMERATED, LOCAL_DATE,
                                 NETWORK_PORT, OBJECT_LIST, OBJECT_TYPES, OPTIONAL, PROPERTY_LIST, PV, REAL,
                                 REQUIRED, SERVICES, device_ready, raw_request)
from .support.bas import SimulatedBas
from .support.config import config_text, gateway_settings
from .support.process import spawn
from .support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.interop]

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "interop" / "js"
PICS = ROOT / "docs" / "PICS.md"
PASSWORD = "s3cret-pw"

DCC_ENABLE, DCC_DISABLE, DCC_DISABLE_INITIATION = 0, 1, 2
WARMSTART, ENDBACKUP = 1, 3


# -- the second stack -------------------------------------------------------------------------------


def node_client() -> str:
    """node, with @bacnet-js/client installed by tests/run.sh (npm ci in tests/interop/js)."""
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "@bacnet-js" / "client").is_dir():
        message = "@bacnet-js/client not installed: run tests/run.sh (npm ci in tests/interop/js)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node


async def js_steps(port: int, steps: list[dict[str, Any]], timeout: float = 90) -> list[dict[str, Any]]:
    """Run steps with @bacnet-js/client against the gateway at 127.0.0.1:port; one result per step."""
    node = node_client()
    client_port = free_port(socket.SOCK_DGRAM, avoid=(port,))
    # TZ=UTC: @bacnet-js/client 3.3.2 encodes a time synchronization's date and time from the JS
    # Date's local fields (getHours...) for UTCTimeSynchronization too; in UTC they are the UTC fields.
    proc = await asyncio.create_subprocess_exec(
        node, str(JS / "bacnet_steps.js"), "--target", f"127.0.0.1:{port}", "--port", str(client_port),
        "--steps", json.dumps(steps), cwd=str(JS), env=dict(os.environ, TZ="UTC"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()[-3000:]
    results = json.loads(out.decode().strip().splitlines()[-1])
    assert len(results) == len(steps)
    return results


def bits(value: dict[str, Any]) -> set[int]:
    """Bit numbers set in a bitstring as @bacnet-js/client decodes it (bit 0 = LSB of byte 0)."""
    return {i for i in range(value["bitsUsed"]) if value["value"][i >> 3] >> (i & 7) & 1}


def service_names(numbers: set[int]) -> set[str]:
    from bacpypes3.basetypes import ServicesSupported

    by_bit = {bit: name for name, bit in ServicesSupported._bitstring_names.items()}
    return {by_bit[n] for n in numbers}


def prop_name(number: int) -> str:
    return str(PropertyIdentifier(number))


def errors_in_log(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info]


# -- pure rules (adrgw/devmgmt.py, adrgw/core/ratelog.py, the service table) -----------------------


def test_password_rules() -> None:
    assert devmgmt.password_ok("", None) and devmgmt.password_ok("", "anything")
    assert devmgmt.password_ok("pw", "pw")
    assert not devmgmt.password_ok("pw", None) and not devmgmt.password_ok("pw", "PW")
    assert not devmgmt.password_ok("p" * 20, "p" * 20 + "x")


def test_duration_rules() -> None:
    assert devmgmt.duration_seconds(None) is None and devmgmt.duration_seconds(0) is None
    assert devmgmt.duration_seconds(1) == 60.0 and devmgmt.duration_seconds(65535) == 65535 * 60.0
    for bad in (65536, 70000, -1):
        with pytest.raises(devmgmt.DurationOutOfRange):
            devmgmt.duration_seconds(bad)


def test_dcc_state_machine_with_time_passed_in() -> None:
    dcc = devmgmt.CommunicationControl(password="pw")
    with pytest.raises(devmgmt.PasswordFailure):
        dcc.request("disable", 5, "wrong", now=100.0)
    assert dcc.current(100.0) is devmgmt.DccState.ENABLE
    with pytest.raises(devmgmt.DurationOutOfRange):
        dcc.request("disable", 70000, "pw", now=100.0)
    assert dcc.current(100.0) is devmgmt.DccState.ENABLE  # a refused request changes nothing
    dcc.request("disable", 2, "pw", now=100.0)
    assert not dcc.answers(12, 150.0) and not dcc.answers(None, 150.0)  # ReadProperty, Who-Is
    assert dcc.answers(17, 150.0) and dcc.answers(20, 150.0)  # DCC, ReinitializeDevice
    assert not dcc.may_initiate(150.0) and dcc.remaining(160.0) == 60.0
    assert dcc.current(220.0) is devmgmt.DccState.ENABLE and dcc.answers(12, 220.0)  # 2 min passed
    dcc.request("disable-initiation", None, "pw", now=300.0)
    assert dcc.answers(12, 10**9) and not dcc.may_initiate(10**9)  # no duration: until enabled
    dcc.request("enable", None, "pw", now=400.0)
    assert dcc.may_initiate(400.0)


def test_reinitialize_rules() -> None:
    assert devmgmt.reinitialize_state("warmstart", "pw", "pw") is devmgmt.ReinitState.WARMSTART
    assert devmgmt.reinitialize_state("coldstart", "", None) is devmgmt.ReinitState.COLDSTART
    with pytest.raises(devmgmt.PasswordFailure):
        devmgmt.reinitialize_state("warmstart", "pw", "nope")
    with pytest.raises(devmgmt.NotSupported):
        devmgmt.reinitialize_state("end-backup", "pw", "pw")


def test_rate_limited_log_allows_one_line_per_interval(caplog) -> None:
    import logging

    clock = [0.0]
    notes = RateLimitedLog(logging.getLogger("adrgw.test"), interval=60, clock=lambda: clock[0])
    with caplog.at_level(logging.INFO, logger="adrgw.test"):
        assert notes.info("reject", "bad %d", 1)
        assert not any(notes.info("reject", "bad %d", n) for n in range(50))
        clock[0] = 61.0
        assert notes.info("reject", "bad %d", 2)
    lines = [r.getMessage() for r in caplog.records if r.name == "adrgw.test"]
    assert lines == ["bad 1", "bad 2 (50 more like it in the last 60 s not logged)"]


def test_services_supported_pins_the_bacpypes3_bit_mapping_bug() -> None:
    """bacpypes3 maps unconfirmed services through the confirmed table: Who-Is (8) became
    AddListElement, I-Am (0) AcknowledgeAlarm, Who-Has (7) AtomicWriteFile."""
    from bacpypes3.app import Application
    from bacpypes3.basetypes import ServicesSupported

    class Probe(Application):  # type: ignore[misc]
        def __init__(self) -> None:  # no network: get_services_supported only introspects
            pass

    theirs = {n for n, bit in ServicesSupported._bitstring_names.items() if Probe().get_services_supported()[bit]}
    assert {"add-list-element", "acknowledge-alarm", "read-range"} <= theirs  # the bug, still there
    ours = {n for n, bit in ServicesSupported._bitstring_names.items() if conformance.services_supported()[bit]}
    assert ours == {"read-property", "read-property-multiple", "write-property", "write-property-multiple",
                    "subscribe-cov", "device-communication-control", "reinitialize-device", "who-is", "who-has",
                    "time-synchronization", "utc-time-synchronization"}


def test_transaction_timing_gives_the_meter_bound_only_inside_client_bound() -> None:
    """bacpypes3's state machines read apduTimeout/numberOfApduRetries from ``sap.device_object``:
    the view gives the meter-read bound inside client_bound and the device's own values elsewhere
    (its advertised values and its confirmed COV notifications)."""
    class Device:
        apduTimeout, numberOfApduRetries, maxApduLengthAccepted = 3000, 3, 1024

    view = conformance.TransactionTiming(Device())
    with conformance.client_bound(conformance.read_timing(0.5)):
        assert (view.apduTimeout, view.numberOfApduRetries) == (250, 1)
        assert view.maxApduLengthAccepted == 1024
    assert (view.apduTimeout, view.numberOfApduRetries) == (3000, 3)
    with conformance.client_bound(None):
        assert view.apduTimeout == 3000


def test_peek_service_reads_only_the_header() -> None:
    assert conformance.peek_service(bytes([0x00, 0x05, 0x07, 0x0C, 0xFF])) == (0, 12, 7)
    assert conformance.peek_service(bytes([0x08, 0x05, 0x07, 0x00, 0x04, 0x1A])) == (0, 26, 7)  # segmented
    assert conformance.peek_service(bytes([0x10, 0x08])) == (1, 8, None)
    assert conformance.peek_service(b"") == (None, None, None)


# -- the device, read by the second stack ---------------------------------------------------------



@pytest.mark.integration
async def test_every_confirmed_request_gets_an_answer(vtn, meter, start_gateway, tmp_path, caplog) -> None:
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    port = gateway.settings.bacnet.port
    await device_ready(port)
    loop = asyncio.get_running_loop()
    # ConfirmedTextMessage (19), ReadRange (26), SubscribeCOVProperty (28), SubscribeCOVPropertyMultiple
    # (41 as bacpypes3 numbers it), AtomicWriteFile (7), AddListElement (8), undefined 45 and 0x7f
    for invoke, service in enumerate((19, 26, 28, 41, 7, 8, 45, 0x7F), start=40):
        answer = await loop.run_in_executor(None, raw_request, port, bytes([0x00, 0x05, invoke, service, 0x09, 0x01]))
        assert answer[:3] == bytes([0x60, invoke, 9]), (service, answer.hex())  # Reject, unrecognized-service
    # a refused WritePropertyMultiple: ADR-Event-Level present-value <- 9.0
    wpm = bytes([0x00, 0x05, 99, 16, 0x0C]) + struct.pack(">I", (ANALOG_VALUE << 22) | 1) + \
        bytes([0x1E, 0x09, PV, 0x2E, 0x44]) + struct.pack(">f", 9.0) + bytes([0x2F, 0x1F])
    answer = await loop.run_in_executor(None, raw_request, port, wpm)
    assert answer[:3] == bytes([0x50, 99, 16]), answer.hex()  # Error PDU for service 16
    # WritePropertyMultiple-Error: [0] {class property(2), code write-access-denied(40)}, [1] first failed
    assert answer[3:10] == bytes([0x0E, 0x91, 0x02, 0x91, 40, 0x0F, 0x1E]), answer.hex()
    assert answer[10:15] == bytes([0x0C]) + struct.pack(">I", (ANALOG_VALUE << 22) | 1), answer.hex()
    assert answer[15:17] == bytes([0x19, PV]), answer.hex()
    assert gateway.device.level == 0.0
    for _ in range(5):  # refused again and again: still one log line
        assert (await loop.run_in_executor(None, raw_request, port, wpm))[:1] == b"\x50"
    assert not errors_in_log(caplog), errors_in_log(caplog)
    rejects = [r for r in caplog.records if "unrecognized-service" in r.getMessage()]
    assert len(rejects) == 1 and rejects[0].levelname == "INFO"  # eight bad requests, one line
    refusals = [r for r in caplog.records if "refused a network write" in r.getMessage()]
    assert len(refusals) <= 1 and all(r.levelname == "INFO" for r in refusals)


@pytest.mark.integration
async def test_a_failing_service_is_answered_and_logged_once_without_traceback(vtn, meter, start_gateway, tmp_path,
                                                                               caplog) -> None:
    """bacpypes3 logs an exception in a service helper at ERROR with a traceback; the gateway answers
    operational-problem and logs one rate-limited INFO line (GatewayApplication.indication)."""
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    port = gateway.settings.bacnet.port
    await device_ready(port)

    async def broken(apdu: Any) -> None:
        raise RuntimeError("simulated failure inside a service")

    object.__setattr__(gateway.device.app, "do_ReadPropertyRequest", broken)
    loop = asyncio.get_running_loop()
    request = bytes([0x00, 0x05, 5, 12, 0x0C]) + struct.pack(">I", (DEVICE << 22) | 599) + bytes([0x19, 77])
    for _ in range(3):
        answer = await loop.run_in_executor(None, raw_request, port, request)
        # Error PDU, ReadProperty, device (0) / operational-problem (25)
        assert answer[:7] == bytes([0x50, 5, 12, 0x91, 0, 0x91, 25]), answer.hex()
    lines = [r for r in caplog.records if "simulated failure" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "INFO" and not lines[0].exc_info
    assert not errors_in_log(caplog), errors_in_log(caplog)


@pytest.mark.integration
async def test_allow_list_refuses_write_property_multiple_with_its_error(vtn, meter, start_gateway, tmp_path,
                                                                         caplog) -> None:
    settings = gateway_settings(vtn.url, meter, tmp_path)
    gateway = await start_gateway(replace(settings, bacnet=replace(settings.bacnet,
                                                                   allow_writes_from=("127.0.0.99/32",))))
    port = settings.bacnet.port
    await device_ready(port)
    loop = asyncio.get_running_loop()
    wpm = bytes([0x00, 0x05, 77, 16, 0x0C]) + struct.pack(">I", (BINARY_VALUE << 22) | 2) + \
        bytes([0x1E, 0x09, PV, 0x2E, 0x91, 0x01, 0x2F, 0x1F])  # ADR-Opt-Out <- active
    for _ in range(3):
        answer = await loop.run_in_executor(None, raw_request, port, wpm)
        assert answer[:3] == bytes([0x50, 77, 16]) and answer[3:10] == bytes([0x0E, 0x91, 2, 0x91, 40, 0x0F, 0x1E])
    assert not gateway.controller.opt_out
    lines = [r for r in caplog.records if "allow_writes_from" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "INFO"
    assert not errors_in_log(caplog), errors_in_log(caplog)


@pytest.mark.integration
async def test_second_stack_reads_identity_capabilities_and_objects(vtn, meter, start_gateway, tmp_path,
                                                                     caplog) -> None:
    settings = gateway_settings(vtn.url, meter, tmp_path)
    settings = replace(settings, bacnet=replace(settings.bacnet, vendor_id=4242, vendor_name="Example Integrator",
                                                model_name="ADR-GW-1", location="Plant room 2",
                                                apdu_timeout=4000, apdu_retries=2))
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    port = settings.bacnet.port
    dev = {"type": DEVICE, "instance": 599}
    level = {"type": ANALOG_VALUE, "instance": 1}
    steps: list[dict[str, Any]] = [
        {"op": "whoIs", "low": 599, "high": 599},
        {"op": "whoHas", "name": "ADR-Event-Level"},
        {"op": "rpm", **dev, "properties": [ALL]},
        {"op": "read", **dev, "property": PROPERTY_LIST},
        {"op": "rpm", "type": NETWORK_PORT, "instance": 1, "properties": [ALL]},
        {"op": "read", "type": NETWORK_PORT, "instance": 1, "property": PROPERTY_LIST},
        {"op": "subscribeCov", **level, "id": 11, "confirmed": False, "lifetime": 300},
        {"op": "subscribeCov", **level, "id": 12, "confirmed": True, "lifetime": 300},
        # the binary value last: @bacnet-js/client 3.3.2 cannot decode a list entry without the
        # optional cov-increment that is followed by another entry (its decoder expects tag 4)
        {"op": "subscribeCov", "type": ANALOG_VALUE, "instance": 2, "id": 14, "confirmed": True, "lifetime": 600},
        {"op": "subscribeCov", "type": BINARY_VALUE, "instance": 1, "id": 13, "confirmed": False, "lifetime": 0},
        {"op": "read", **dev, "property": ACTIVE_COV},
        {"op": "covWait", "waitMs": 300},
        {"op": "write", **level, "property": PV, "tag": REAL, "value": 9.0},
        {"op": "wpm", **level, "writes": [{"property": PV, "tag": REAL, "value": 9.0}]},
        {"op": "wpm", "type": BINARY_VALUE, "instance": 2, "writes": [{"property": PV, "tag": ENUMERATED, "value": 1}]},
        {"op": "readRange", **level},
        {"op": "privateTransfer"},
        {"op": "subscribeProperty", **level},
        {"op": "timeSync", "utc": True, "iso": "2026-01-02T03:04:05Z"},
        {"op": "timeSync", "utc": False, "iso": "2026-01-02T03:04:05Z"},
        # ALL on the device with a 128-octet max APDU (enumeration 1) and any number of segments (112):
        # the answer (several hundred octets) comes segmented
        {"op": "rpm", **dev, "properties": [ALL], "maxApdu": 1, "maxSegments": 112},
        {"op": "write", "type": BINARY_VALUE, "instance": 2, "property": PV, "tag": ENUMERATED, "value": 0},
        {"op": "read", **dev, "property": LOCAL_DATE},  # after the synchronizations above
    ]
    await device_ready(port)
    r = await js_steps(port, steps)
    assert r[0]["ok"] == [{"deviceId": 599, "vendorId": 4242, "address": f"127.0.0.1:{port}"}]
    assert r[1]["ok"][0]["objectName"] == "ADR-Event-Level" and r[1]["ok"][0]["objectId"] == level
    device = {prop_name(p["id"]): p["value"] for p in r[2]["ok"]}
    assert "property-list" in device  # ALL includes it (bacpypes3 leaves it out)
    text = {k: v[0]["value"] for k, v in device.items() if v and v[0]["type"] in (2, 7)}
    assert text["vendor-identifier"] == 4242 and text["vendor-name"] == "Example Integrator"
    assert text["model-name"] == "ADR-GW-1" and text["location"] == "Plant room 2"
    from adrgw import __version__

    assert text["firmware-revision"] == __version__ and f"adrgw {__version__}" in text["application-software-version"]
    assert "Servisys" not in json.dumps(device) and "BAC0" not in text["model-name"]
    assert text["apdu-timeout"] == 4000 and text["number-of-apdu-retries"] == 2
    assert service_names(bits(device["protocol-services-supported"][0]["value"])) == {
        "read-property", "read-property-multiple", "write-property", "write-property-multiple", "subscribe-cov",
        "device-communication-control", "reinitialize-device", "who-is", "who-has", "time-synchronization",
        "utc-time-synchronization"}
    held = {str(oid[0]) for oid in gateway.device.app.objectIdentifier}
    assert {str(ObjectType(n)) for n in bits(device["protocol-object-types-supported"][0]["value"])} == held
    assert "utc-offset" in device and "local-date" in device and "local-time" in device
    # minutes to add to local *standard* time for UTC (positive west), whether or not in daylight saving
    assert device["utc-offset"][0]["value"] == time.timezone // 60
    excluded = {"object-identifier", "object-name", "object-type", "property-list"}
    device_list = {prop_name(v["value"]) for v in r[3]["ok"]}
    assert not device_list & excluded and "vendor-name" in device_list and "status-flags" not in device_list
    port_props = {prop_name(p["id"]) for p in r[4]["ok"]}
    assert {"network-number", "mac-address", "apdu-length", "network-type", "protocol-level",
            "network-number-quality", "changes-pending", "link-speed", "bacnet-ip-mode", "ip-address",
            "bacnet-ip-udp-port", "ip-subnet-mask", "status-flags", "reliability", "out-of-service"} <= port_props
    mac = next(p["value"][0]["value"] for p in r[4]["ok"] if prop_name(p["id"]) == "mac-address")
    assert mac == [127, 0, 0, 1, port >> 8, port & 0xFF]
    assert not {prop_name(v["value"]) for v in r[5]["ok"]} & excluded
    assert all("ok" in x for x in r[6:10]), r[6:10]
    assert "ok" in r[10], r[10]
    subs = [v["value"] for v in r[10]["ok"]]
    assert sorted(s["subscriptionProcessId"] for s in subs) == [11, 12, 13, 14]
    by_id = {s["subscriptionProcessId"]: s for s in subs}
    assert by_id[12]["issueConfirmedNotifications"] is True and by_id[11]["issueConfirmedNotifications"] is False
    assert by_id[13]["timeRemaining"] == 0 and 0 < by_id[11]["timeRemaining"] <= 300  # permanent; 300 s lifetime
    assert by_id[11]["monitoredObjectId"] == level
    assert len(r[11]["ok"]) >= 4  # the initial notification of each subscription
    assert "Code:40" in r[12]["error"]  # WriteProperty: write-access-denied
    assert "error" in r[13] and "TIMEOUT" not in r[13]["error"]  # WPM refused with an answer
    assert r[14]["ok"] == "ack"  # WritePropertyMultiple to the opt-out: accepted
    for n in (15, 16, 17):  # ReadRange, ConfirmedPrivateTransfer, SubscribeCOVProperty: Reject 9
        assert r[n]["error"] == "BacnetAbort - Reason:9", r[n]  # this client reports Reject as Abort
    assert {prop_name(p["id"]) for p in r[20]["ok"]} == set(device)  # segmented: the same properties
    assert r[21]["ok"] == "ack"  # WriteProperty to the opt-out: accepted (opting back in)
    written = [rec.getMessage() for rec in caplog.records
               if "written" in rec.getMessage() and "BACnet" in rec.getMessage()]
    assert written == ["ADR-Opt-Out written active over BACnet", "ADR-Opt-Out written inactive over BACnet"], written
    await wait_for(lambda: not gateway.controller.opt_out, 3, what="opt-in written by the second stack")
    told = gateway.device.app.last_time_sync
    assert told is not None and told[0] == "time-synchronization"
    assert r[22]["ok"][0]["value"].startswith("2026-01-02"), r[22]  # the device's date follows (issue 18)
    assert not errors_in_log(caplog), errors_in_log(caplog)
    assert any("utc-time-synchronization" in rec.getMessage() and "not changed" in rec.getMessage()
               for rec in caplog.records)


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
async def bas() -> AsyncIterator[SimulatedBas]:
    sim = SimulatedBas(free_port(socket.SOCK_DGRAM))
    sim.start()
    yield sim
    sim.stop()


@pytest.mark.integration
async def test_device_communication_control_during_an_event(vtn, meter, bas, start_gateway, tmp_path) -> None:
    settings = gateway_settings(vtn.url, meter, tmp_path)
    settings = replace(settings, bacnet=replace(settings.bacnet, password=PASSWORD),
                       writes=(WriteTarget("cooling", bas.address, "analogValue", 5, priority=10,
                                           values=((1.0, 74.0), (2.0, 76.0))),))
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    vtn.add_event(gateway.link.ven_id, [1.0], now() - timedelta(seconds=1), timedelta(minutes=5))
    await wait_for(lambda: bas.slot(bas.setpoint, 10) == 74.0, 8, what="74.0 written through")
    port = settings.bacnet.port
    level = {"type": ANALOG_VALUE, "instance": 1}
    r = await js_steps(port, [
        {"op": "dcc", "state": DCC_DISABLE, "minutes": 5, "password": "wrong"},
        {"op": "dcc", "state": DCC_DISABLE, "minutes": 70000, "password": PASSWORD},
        {"op": "dcc", "state": DCC_DISABLE, "minutes": 5},
        {"op": "read", **level, "property": PV},
        {"op": "dcc", "state": DCC_DISABLE, "minutes": 5, "password": PASSWORD},
        {"op": "read", **level, "property": PV},
        {"op": "whoIs", "low": 599, "high": 599},
    ])
    assert "Class:4 - Code:26" in r[0]["error"]  # security, password-failure
    assert r[1]["error"] == "BacnetAbort - Reason:6"  # Reject parameter-out-of-range
    assert "Class:4 - Code:26" in r[2]["error"]  # no password where one is configured
    assert r[3]["ok"][0]["value"] == 1.0
    assert r[4]["ok"] == "ack"
    assert r[5]["error"] == "ERR_TIMEOUT" and r[6]["ok"] == []  # disabled: no answers at all
    # the VEN side keeps working while the BACnet side is silent
    vtn.add_event(gateway.link.ven_id, [2.0], now() - timedelta(seconds=1), timedelta(minutes=5))
    await wait_for(lambda: gateway.device.level == 2.0, 8, what="level 2 from the VTN while disabled")
    # ...but nothing is initiated: the write-through target keeps the old value, no meter samples
    samples_before = len(gateway.samples)
    await asyncio.sleep(2.5)
    assert bas.slot(bas.setpoint, 10) == 74.0
    assert gateway.sampler.failures >= 1
    r = await js_steps(port, [
        {"op": "dcc", "state": DCC_DISABLE_INITIATION, "password": PASSWORD},
        {"op": "read", **level, "property": PV},
        {"op": "whoIs", "low": 599, "high": 599},
        {"op": "dcc", "state": DCC_ENABLE, "password": PASSWORD},
        {"op": "read", **level, "property": PV},
    ])
    assert r[0]["ok"] == "ack" and r[1]["ok"][0]["value"] == 2.0  # answers while initiation is off
    assert [d["deviceId"] for d in r[2]["ok"]] == [599]  # the I-Am answering Who-Is still goes out
    assert r[3]["ok"] == "ack" and r[4]["ok"][0]["value"] == 2.0
    await wait_for(lambda: bas.slot(bas.setpoint, 10) == 76.0, 70, what="write-through resumes after enable")
    await wait_for(lambda: gateway.sampler.failures == 0, 5, what="meter sampling resumes")
    assert len(gateway.samples) >= samples_before


@pytest.mark.integration
async def test_reinitialize_device_relinquishes_persists_and_exits_for_systemd(vtn, meter, bas, tmp_path) -> None:
    gw_port = free_port(socket.SOCK_DGRAM)
    text = config_text(vtn.url, gw_port, meter.port, bacnet={"password": PASSWORD})
    (tmp_path / "config.ini").write_text(text + f"""
[write.cooling]
address = {bas.address}
object = analogValue 5
priority = 10
values = 1=74.0, 2=76.0, 3=78.0
""")
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: vtn.ven_ids.get("process-ven") is not None, 15, what="registration")
        vtn.add_event(vtn.ven_ids["process-ven"], [3.0], now() - timedelta(seconds=1), timedelta(minutes=5))
        await wait_for(lambda: bas.slot(bas.setpoint, 10) == 78.0, 8, what="78.0 written")
        r = await js_steps(gw_port, [{"op": "reinit", "state": WARMSTART, "password": "wrong"},
                                     {"op": "reinit", "state": ENDBACKUP, "password": PASSWORD}])
        assert "Class:4 - Code:26" in r[0]["error"]  # password-failure
        assert "Class:5 - Code:45" in r[1]["error"]  # services, optional-functionality-not-supported
        assert proc.proc.returncode is None and bas.slot(bas.setpoint, 10) == 78.0
        r = await js_steps(gw_port, [{"op": "reinit", "state": WARMSTART, "password": PASSWORD}])
        assert r[0]["ok"] == "ack"
        code = await asyncio.wait_for(proc.proc.wait(), 15)
    finally:
        if proc.proc.returncode is None:
            await proc.stop(signal.SIGTERM)
    await asyncio.sleep(0.2)
    from adrgw.app import EXIT_REINITIALIZE

    assert code == EXIT_REINITIALIZE == 75, "\n".join(proc.lines[-20:])
    assert bas.slot(bas.setpoint, 10) is None, "\n".join(proc.lines[-20:])  # slot relinquished
    assert proc.has("ReinitializeDevice (warmstart)") and not proc.has("Traceback")
    import sqlite3

    db = sqlite3.connect(f"file:{tmp_path / 'state' / 'gateway.sqlite3'}?mode=ro", uri=True)
    try:  # the active event is persisted; no write-through slot is recorded as still held
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM kv WHERE key LIKE 'write-held:%'").fetchone()[0] == 0
    finally:
        db.close()
    unit = (ROOT / "systemd" / "bacnet-server-ven.service").read_text()
    assert re.search(r"^Restart=(on-failure|always)$", unit, re.M)  # exit 75 is restarted by systemd


# -- the PICS ---------------------------------------------------------------------------------------


def pics_tables() -> tuple[set[str], set[str], dict[str, dict[str, str]]]:
    """(services executed, object types, object type -> property -> R|W) from docs/PICS.md."""
    text = PICS.read_text()

    def section(title: str) -> str:
        m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
        assert m, f"docs/PICS.md has no '## {title}' section"
        return m.group(1)

    services = set(re.findall(r"^\| `([a-z-]+)` \|", section("Services executed (server side)"), re.M))
    objects: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"^### `([a-z-]+)`\n(.*?)(?=^### |\Z)", section("Object types and properties"),
                         re.M | re.S):
        objects[m.group(1)] = dict(re.findall(r"^\| `([a-z-]+)` \| (R|W)", m.group(2), re.M))
    return services, set(objects), objects


def pics_standard() -> dict[str, dict[str, bool]]:
    """object type -> property -> whether the PICS's ASHRAE 135 column says it is required here."""
    _, _, objects = pics_tables()
    text = PICS.read_text()
    table: dict[str, dict[str, bool]] = {}
    for m in re.finditer(r"^### `([a-z-]+)`\n(.*?)(?=^### |^## |\Z)", text, re.M | re.S):
        rows = re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| (required|optional)[^|]* \|$", m.group(2), re.M)
        table[m.group(1)] = {prop: column == "required" for prop, column in rows}
        assert set(table[m.group(1)]) == set(objects[m.group(1)]), f"{m.group(1)}: a row without its ASHRAE 135 column"
    return table


def pics_conditional() -> set[str]:
    """Properties the PICS marks as present only in some configurations ("only in ... mode")."""
    return set(re.findall(r"^\| `([a-z-]+)` \| R[^|]*only in", PICS.read_text(), re.M))


@pytest.mark.integration
async def test_pics_matches_the_device(vtn, meter, start_gateway, tmp_path) -> None:
    services, types, objects = pics_tables()
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    port = gateway.settings.bacnet.port
    await device_ready(port)
    oids = [(int(ObjectType(str(oid[0]))), int(oid[1])) for oid in gateway.device.app.objectIdentifier]
    steps: list[dict[str, Any]] = [{"op": "read", "type": DEVICE, "instance": 599, "property": SERVICES},
                                   {"op": "read", "type": DEVICE, "instance": 599, "property": OBJECT_TYPES},
                                   {"op": "read", "type": DEVICE, "instance": 599, "property": OBJECT_LIST}]
    steps += [{"op": "read", "type": t, "instance": i, "property": PROPERTY_LIST} for t, i in oids]
    steps += [{"op": "rpm", "type": t, "instance": i, "properties": [special]} for t, i in oids
              for special in (REQUIRED, OPTIONAL)]
    r = await js_steps(port, steps)
    assert service_names(bits(r[0]["ok"][0]["value"])) == services
    assert {str(ObjectType(n)) for n in bits(r[1]["ok"][0]["value"])} == types
    listed = {(v["value"]["type"], v["value"]["instance"]) for v in r[2]["ok"]}
    assert listed == set(oids)
    always = {"object-identifier", "object-name", "object-type", "property-list"}
    seen: dict[str, set[str]] = {}
    standard = pics_standard()
    answers = r[3 + len(oids):]
    for n, ((t, i), result) in enumerate(zip(oids, r[3:3 + len(oids)], strict=True)):
        props = {prop_name(v["value"]) for v in result["ok"]} | always
        name = str(ObjectType(t))
        assert props <= set(objects[name]), (name, i, props - set(objects[name]))
        seen.setdefault(name, set()).update(props)
        # ReadPropertyMultiple REQUIRED / OPTIONAL answer what the ASHRAE 135 column says
        required, optional = ({prop_name(p["id"]) for p in answers[2 * n + k]["ok"]} for k in (0, 1))
        assert required == {p for p in props if standard[name][p]}, (name, i, required)
        assert optional == {p for p in props if not standard[name][p]}, (name, i, optional)
    for name, props in seen.items():
        assert props == set(objects[name]) - pics_conditional(), (name, set(objects[name]) - props)
    writable = {(t, p) for t, props in objects.items() for p, access in props.items() if access == "W"}
    assert writable == {("binary-value", "present-value")}  # ADR-Opt-Out only, see the PICS note


# -- the same conformance checks from bac-py (the project's first independent stack) ---------------


@pytest.mark.integration
async def test_bac_py_sees_identity_network_port_rejects_and_dcc(vtn, meter, start_gateway, tmp_path) -> None:
    from .support.process import interop_python

    python = interop_python()
    settings = gateway_settings(vtn.url, meter, tmp_path)
    settings = replace(settings, bacnet=replace(settings.bacnet, password=PASSWORD, vendor_id=777))
    gateway = await start_gateway(settings)
    port = settings.bacnet.port
    await device_ready(port)
    proc = await asyncio.create_subprocess_exec(
        python, str(ROOT / "tests" / "interop" / "bacpy_conformance.py"), "--target", f"127.0.0.1:{port}",
        "--device", "599", "--port", str(free_port(socket.SOCK_DGRAM, avoid=(port,))), "--password", PASSWORD,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-3000:]
    r = json.loads(out.decode().strip().splitlines()[-1])
    assert (r["vendor_name"], r["vendor_id"]) == ("adrgw project", 777)
    assert "Servisys" not in json.dumps(r)
    set_bits = {i for i, c in enumerate(r["services"].split("'")[1]) if c == "1"}
    assert service_names(set_bits) == service_names(bits_of(conformance.services_supported()))
    for name in ("network-number", "mac-address", "apdu-length", "ip-address", "bacnet-ip-udp-port"):
        assert f"'{name}'" in r["port_all"], (name, r["port_all"])
    assert r["text_message"].endswith("UNRECOGNIZED_SERVICE") and r["read_range"].endswith("UNRECOGNIZED_SERVICE")
    assert r["dcc_wrong_password"].endswith("PASSWORD_FAILURE")
    assert r["dcc_disable"] is None and r["read_while_disabled"].startswith("ERROR: TimeoutError")
    assert r["dcc_enable"] is None and r["read_after_enable"] == gateway.device.level


def bits_of(value: Any) -> set[int]:
    return {i for i, b in enumerate(value) if b}


# -- on a real LAN (network namespaces, everybody on 47808, broadcasts) ------------------------------


@pytest.mark.integration
async def test_broadcast_who_is_and_dcc_on_a_real_lan(lan, tmp_path) -> None:
    """The second stack finds the gateway by broadcast Who-Is on a LAN; DeviceCommunicationControl
    disable silences it (even for Who-Is); enable brings it back."""
    import sys

    from .support.lan import HOSTS
    from .support.process import Lines

    node = node_client()
    env = dict(os.environ, HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    (tmp_path / "config.ini").write_text(f"""
[ven]
ven_name = lan-ven
; no VTN on this LAN: the BACnet side runs on its own
vtn_url = http://{HOSTS['peer']}:8080/OpenADR2/Simple/2.0b
request_timeout = 1
retry_max = 2
[bacnet]
address = {HOSTS['gw']}/24
device_id = 599
vendor_id = 4321
password = {PASSWORD}
""")
    gateway = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", lan["gw"], sys.executable, str(ROOT / "bacnet_server_ven.py"),
        cwd=str(tmp_path), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    gw_err = Lines(gateway.stderr)  # type: ignore[arg-type]
    try:
        await wait_for(lambda: gw_err.has("BACnet device 599"), 20, what="the gateway's device")
        who_is = {"op": "whoIs", "low": 599, "high": 599, "broadcast": True, "waitMs": 1500}
        steps = [who_is, {"op": "dcc", "state": DCC_DISABLE, "minutes": 10, "password": PASSWORD}, who_is,
                 {"op": "dcc", "state": DCC_ENABLE, "password": PASSWORD}, who_is]
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", lan["client"], node, str(JS / "bacnet_steps.js"),
            "--target", f"{HOSTS['gw']}:47808", "--port", "47808", "--interface", HOSTS["client"],
            "--broadcast", "10.77.0.255", "--steps", json.dumps(steps), cwd=str(JS),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-3000:]
        r = json.loads(out.decode().strip().splitlines()[-1])
        # (this client leaves the default port out of the address)
        assert r[0]["ok"] == [{"deviceId": 599, "vendorId": 4321, "address": HOSTS["gw"]}], r[0]
        assert r[1]["ok"] == "ack" and r[2]["ok"] == [], r
        assert r[3]["ok"] == "ack" and [d["deviceId"] for d in r[4]["ok"]] == [599], r
    finally:
        if gateway.returncode is None:
            gateway.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(gateway.wait(), 10)
            except asyncio.TimeoutError:
                gateway.kill()
                await gateway.wait()
    assert gateway.returncode == 0 and not gw_err.has("Traceback")

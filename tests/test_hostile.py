"""Hostile input: a fake VTN (plain aiohttp) serving every kind of bad reply, random BACnet/IP packets,
writes to every property of every object, the write allow-list, and fuzzed events. The gateway runs
as a separate process where a crash would show (a segfault kills only that process)."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import socket
import struct
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.basetypes import PropertyIdentifier
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier
from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.demo.embedded import free_port
from adrgw.core.schedule import Event
from adrgw.openadr.events import event_from_oadr

from .support.config import config_text, gateway_settings
from .support.process import PROBE, interop_python, spawn
from .support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.process, pytest.mark.interop]

BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%s;" % (str(i - 1).encode() if i > 2 else b"")) * 10)
                   for i in range(2, 10))
        + b"]>\n<lolz>&lol9;</lolz>")
VALID_HEAD = (b'<?xml version="1.0" encoding="utf-8"?><oadr:oadrPayload xmlns:oadr="http://openadr.org/oadr-2.0b/'
              b'2012/07"><oadr:oadrSignedObject><oadr:oadrCreatedPartyRegistration ei:schemaVersion="2.0b" xmlns:')

# kind -> (status, content type, body, seconds to stall, what the gateway's log must say)
HOSTILE: dict[str, tuple[int, str, bytes, float, str]] = {
    "garbage": (200, "application/xml", b"\x00\xff\xfe garbage <<<", 0, "refused reply: XMLSyntaxError"),
    "truncated": (200, "application/xml", VALID_HEAD, 0, "refused reply: XMLSyntaxError"),
    "xml bomb": (200, "application/xml", BOMB, 0, "DTD/entity declarations"),
    "huge body": (200, "application/xml", b"<a>" + b"x" * (5 * 1024 * 1024) + b"</a>", 0, "larger than"),
    "wrong content type": (200, "text/html", b"<html>hello</html>", 0, "content type 'text/html'"),
    "slow reply": (200, "application/xml", b"", 6, "no answer within"),
    "http 500": (500, "text/plain", b"boom", 0, "HTTP 500"),
    "http 404": (404, "text/plain", b"nope", 0, "HTTP 404"),
    "json": (200, "application/json", b'{"ok": true}', 0, "content type 'application/json'"),
}


async def hostile_vtn(kinds: list[str]) -> tuple[web.AppRunner, int, list[str]]:
    served: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        kind = kinds[len(served) % len(kinds)]
        served.append(kind)
        status, ctype, body, stall, _ = HOSTILE[kind]
        if stall:
            await asyncio.sleep(stall)
        return web.Response(status=status, body=body, headers={"Content-Type": ctype})

    app = web.Application(client_max_size=1024 ** 2)
    app.router.add_post("/OpenADR2/Simple/2.0b/{service}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port, served


async def test_hostile_vtn_replies_are_refused_and_the_gateway_keeps_running(meter, bacnet_client,
                                                                              tmp_path) -> None:
    kinds = list(HOSTILE)
    runner, port, served = await hostile_vtn(kinds)
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(
        f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b", gw_port, meter.port,
        ven={"ven_name": "hostile-test", "request_timeout": 2, "retry_max": 1}, state=None))
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: len(served) >= len(kinds) + 1, 40, step=0.1, what="every hostile reply served")
        assert proc.proc.returncode is None, "\n".join(proc.lines[-30:])
        failures = [line for line in proc.lines if "attempt" in line or "refused" in line]
        for kind in kinds:
            expected = HOSTILE[kind][4]
            assert any(expected in line for line in proc.lines), (kind, expected, "\n".join(failures))
        assert not proc.has("Traceback")
        # the BACnet side is unaffected: the point answers and meter samples keep coming
        value = await asyncio.wait_for(bacnet_client.read_property(
            Address(f"127.0.0.1:{gw_port}"), ObjectIdentifier("analog-value,1"), PropertyIdentifier("present-value")), 3)
        assert float(value) == 0.0
        assert proc.has("Adding ")
    finally:
        code, _ = await proc.stop(signal.SIGTERM)
        await runner.cleanup()
    assert code == 0


def random_packets(seed: int, count: int) -> list[bytes]:
    """Malformed BACnet/IP: truncated BVLC, wrong lengths, bad NPDU, unknown services, bogus segments."""
    rnd = random.Random(seed)
    packets = [b"", b"\x81", b"\x81\x0a", b"\x81\x0a\x00", b"\x81\x0a\x00\x04", b"\x81\x0a\xff\xff\x01\x00",
               b"\x81\x0a\x00\x08\x01\x00\x30\x01",  # simple-ack with nothing after it
               b"\x81\x0a\x00\x09\x01\x04\x00\x05\x01",  # confirmed request, truncated
               b"\x81\x0a\x00\x0c\x01\x04\x02\x45\x01\x0c\x0c\x00",  # ReadProperty, truncated tags
               b"\x81\x0a\x00\x0a\x01\x04\x0f\x45\x01\x7f",  # segmented request, unknown service
               b"\x81\x0b\x00\x08\x01\x20\xff\xff",  # broadcast NPDU with DNET but no DLEN
               b"\x81\x04\x00\x0a\x7f\x00\x00\x01\xba\xc0",  # forwarded NPDU with no payload
               b"\x82\x00\x00\x04", b"\x81\xff\x00\x04"]
    for _ in range(count):
        kind = rnd.randrange(4)
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 60)))
        if kind == 0:
            packets.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 1500))))
        elif kind == 1:  # valid BVLC header, wrong length, random NPDU/APDU
            packets.append(b"\x81\x0a" + struct.pack(">H", rnd.randrange(65536)) + body)
        elif kind == 2:  # valid BVLC + NPDU version 1, random control and APDU
            packets.append(b"\x81\x0a" + struct.pack(">H", 6 + len(body)) + b"\x01" + bytes([rnd.randrange(256)]) + body)
        else:  # confirmed request with a random service choice and segmentation flags
            apdu = bytes([rnd.choice((0x00, 0x08, 0x0c, 0x02)), 0x05, rnd.randrange(256), rnd.randrange(256)]) + body
            packets.append(b"\x81\x0a" + struct.pack(">H", 6 + len(apdu)) + b"\x01\x04" + apdu)
    return packets


async def test_random_bacnet_packets_do_not_stop_the_device(vtn, meter, tmp_path) -> None:
    python = interop_python()
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, gw_port, meter.port))
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: proc.has("BACnet device"), 15, what="the device")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            for n, packet in enumerate(random_packets(seed=20261126, count=2000)):
                sock.sendto(packet, ("127.0.0.1", gw_port))
                if n % 100 == 0:
                    await asyncio.sleep(0.01)
        await asyncio.sleep(1)
        assert proc.proc.returncode is None, "\n".join(proc.lines[-30:])
        probe = await asyncio.create_subprocess_exec(
            python, str(PROBE), "--target", f"127.0.0.1:{gw_port}", "--device", "599", "--name", "ADR-Event-Level",
            "--port", str(free_port(socket.SOCK_DGRAM, avoid=(gw_port,))),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(probe.communicate(), 60)
        assert probe.returncode == 0, err.decode()[-2000:]
        assert json.loads(out.decode().splitlines()[-1])["present_value"] == 0.0
    finally:
        code, _ = await proc.stop(signal.SIGTERM)
    assert code == 0


async def test_every_property_write_is_refused_except_the_opt_out(vtn, meter, start_gateway, bacnet_client,
                                                                  tmp_path) -> None:
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    address = Address(f"127.0.0.1:{gateway.settings.bacnet.port}")
    objects = await bacnet_client.read_property(address, ObjectIdentifier("device,599"),
                                                PropertyIdentifier("object-list"))
    assert len(objects) == 11  # device, network port, 9 points (ADR-Gateway-Status included)
    attempts = {"object-name": "renamed", "description": "x", "present-value": 1.0, "out-of-service": True}
    refused = tried = 0
    for oid in objects:
        for prop, value in attempts.items():
            if str(oid) == "binary-value,2" and prop == "present-value":
                continue  # ADR-Opt-Out: the one writable value (tested with valid and invalid values)
            if prop == "present-value" and str(oid).startswith("binary"):
                value = "active"
            if prop == "present-value" and str(oid).startswith("multi-state"):
                value = 2
            try:
                result = await asyncio.wait_for(
                    bacnet_client.write_property(address, oid, PropertyIdentifier(prop), value), 3)
                if isinstance(result, str) and result.startswith("-"):
                    continue  # bacpypes3's client found no such property for this type: nothing was sent
                tried += 1
            except ErrorRejectAbortNack as exc:
                tried += 1
                refused += 1
                assert "write-access-denied" in str(exc) or "invalid-data-type" in str(exc) \
                    or "unknown-property" in str(exc), (oid, prop, exc)
            else:
                raise AssertionError(f"write to {oid} {prop} was accepted")
    assert refused == tried >= 35
    name = await bacnet_client.read_property(address, ObjectIdentifier("device,599"), PropertyIdentifier("object-name"))
    assert name == "ADR-Gateway"


async def test_write_allow_list(vtn, meter, start_gateway, bacnet_client, tmp_path) -> None:
    settings = gateway_settings(vtn.url, meter, tmp_path)
    opt_out = ObjectIdentifier("binary-value,2")
    pv = PropertyIdentifier("present-value")
    denied = await start_gateway(replace(settings, bacnet=replace(settings.bacnet, allow_writes_from=("127.0.0.99/32",))))
    with pytest.raises(ErrorRejectAbortNack, match="write-access-denied"):
        await asyncio.wait_for(bacnet_client.write_property(
            Address(f"127.0.0.1:{denied.settings.bacnet.port}"), opt_out, pv, "active"), 3)
    assert not denied.controller.opt_out
    allowed = await start_gateway(replace(settings, bacnet=replace(
        settings.bacnet, port=free_port(socket.SOCK_DGRAM), allow_writes_from=("127.0.0.0/8",)),
        state=replace(settings.state, directory=str(tmp_path / "state2"))))
    await asyncio.wait_for(bacnet_client.write_property(
        Address(f"127.0.0.1:{allowed.settings.bacnet.port}"), opt_out, pv, "active"), 3)
    await wait_for(lambda: allowed.controller.opt_out, 2, what="the allowed opt-out")


# -- fuzzed events ------------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                      st.text(max_size=8), st.datetimes(timezones=st.just(timezone.utc)),
                      st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)))
json_like = st.recursive(json_leaf, lambda children: st.one_of(st.lists(children, max_size=4),
                                                               st.dictionaries(st.text(max_size=12), children, max_size=5)),
                         max_leaves=30)


def event_shaped() -> Any:
    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    interval = st.fixed_dictionaries({}, optional={"dtstart": st.one_of(json_leaf, st.just(now)),
                                                   "duration": json_leaf, "signal_payload": json_leaf})
    signal = st.fixed_dictionaries({"signal_name": st.one_of(st.just("SIMPLE"), json_leaf),
                                    "intervals": st.one_of(st.lists(st.one_of(interval, json_leaf), max_size=4),
                                                           json_leaf)})
    return st.fixed_dictionaries({
        "event_descriptor": st.one_of(json_like, st.fixed_dictionaries(
            {"event_id": json_leaf, "modification_number": json_leaf, "priority": json_leaf,
             "event_status": json_leaf, "test_event": json_leaf})),
        "active_period": st.one_of(json_like, st.fixed_dictionaries(
            {}, optional={"dtstart": json_leaf, "ramp_up": json_leaf,
                          "tolerance": st.one_of(json_like, st.just({"tolerate": {"startafter": timedelta(seconds=5)}}))})),
        "event_signals": st.one_of(st.lists(st.one_of(signal, json_leaf), max_size=3), json_like),
    })


@pytest.mark.parametrize("raw", [
    {"event_descriptor": {"event_id": "a"}, "event_signals": [1]},
    {"event_descriptor": {"event_id": "a"}, "event_signals": [{"intervals": [1]}]},
    {"event_descriptor": ["a"]}, {"event_descriptor": {"event_id": "a"}, "active_period": [1]}, [], "x", None,
])
def test_known_malformed_shapes_are_valueerrors(raw) -> None:
    with pytest.raises(ValueError):
        event_from_oadr(raw)


@settings(max_examples=400, deadline=None)
@given(st.one_of(event_shaped(), json_like))
def test_event_conversion_gives_an_event_or_a_clear_valueerror(raw) -> None:
    try:
        event = event_from_oadr(raw) if isinstance(raw, dict) else event_from_oadr({"x": raw})
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(event, Event) and event.intervals

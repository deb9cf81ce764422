"""The 3.1 demos' peers on their own (the gateway's 3.1 adapter is tested against them elsewhere): the
VTN answers with the demo program, lists the demo event (SIMPLE 1, 2, 3 a minute apart, asking for
USAGE) once a VEN exists and notifies it over MQTT; the printed configs carry the 3.1 [ven] keys; the
CLI takes --protocol with the demo modes only."""

from __future__ import annotations

import configparser
import socket
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest

from adrgw.demo.demo31 import (CLIENT_ID, CLIENT_SECRET, POLL_SECONDS, Peers31, demo_config31,
                               rehearsal_config31)
from adrgw.demo.embedded import free_port

from .support.oadr3 import MqttWatcher, Oadr3Client, require_mosquitto

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


@pytest.fixture
async def peers31() -> AsyncIterator[Peers31]:
    require_mosquitto()
    peers = Peers31(vtn_port=free_port(), meter_port=free_port(socket.SOCK_DGRAM))
    await peers.start()
    yield peers
    await peers.stop()


async def test_the_demo_vtn_lists_and_notifies_the_demo_event(peers31: Peers31) -> None:
    assert peers31.vtn is not None and peers31.broker is not None and peers31.mqtt
    async with Oadr3Client(peers31.vtn.url, CLIENT_ID, CLIENT_SECRET) as client:
        await client.login()
        status, notifiers = await client.call("GET", "/notifiers")
        assert status == 200 and notifiers["MQTT"]["URIS"] == [peers31.broker.url]
        status, programs = await client.call("GET", "/programs")
        assert [p["programName"] for p in programs] == ["demo"]
        assert (await client.call("GET", "/events"))[1] == []  # nothing before a VEN exists
        async with MqttWatcher(peers31.broker.url) as watcher:
            status, ven = await client.call("POST", "/vens", {"objectType": "VEN_VEN_REQUEST", "venName": "demo-ven"})
            assert status == 201
            _, note = await watcher.wait_for(lambda t, n: t == f"OpenADR/3.1.0/vens/{ven['id']}/events/create")
        status, events = await client.call("GET", "/events")
        assert status == 200 and [e["id"] for e in events] == [note["object"]["id"]]
        event = events[0]
        assert [i["payloads"][0]["values"] for i in event["intervals"]] == [[1], [2], [3]]
        assert event["intervalPeriod"]["duration"] == "PT60S"
        assert event["reportDescriptors"][0]["payloadType"] == "USAGE"
    if peers31.vtn.validator is not None:
        peers31.vtn.assert_valid()


async def test_without_mosquitto_the_demo_offers_webhooks_and_polls() -> None:
    peers = Peers31(vtn_port=free_port(), meter_port=free_port(socket.SOCK_DGRAM), use_mqtt=False)
    await peers.start()
    try:
        assert peers.vtn is not None and not peers.mqtt
        async with Oadr3Client(peers.vtn.url, CLIENT_ID, CLIENT_SECRET) as client:
            await client.login()
            assert (await client.call("GET", "/notifiers"))[1] == {"WEBHOOK": True}
    finally:
        await peers.stop()


def _ven(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(text)
    return parser["ven"]


@pytest.mark.unit
def test_printed_configs_carry_the_31_keys() -> None:
    ven = _ven(rehearsal_config31("http://127.0.0.1:8180/openadr3/3.1.0", mqtt=True))
    assert dict(ven) == {"protocol": "3.1", "vtn_url": "http://127.0.0.1:8180/openadr3/3.1.0",
                         "ven_name": "rehearsal-ven", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                         "notifications": "auto"}
    text = rehearsal_config31("http://x/openadr3/3.1.0", mqtt=False)
    assert _ven(text)["notifications"] == "poll" and _ven(text)["poll_interval"] == str(POLL_SECONDS)
    assert "[write.zone-setpoint]" in text and "--protocol 3.1" in text
    demo = demo_config31("http://127.0.0.1:1/openadr3/3.1.0", True, 47808, "127.0.0.1", 47809, "/tmp/s", 8047)
    assert _ven(demo)["protocol"] == "3.1" and "routes = 12345=127.0.0.1:47809" in demo


@pytest.mark.process
@pytest.mark.parametrize("args", [["--protocol", "3.1", "--check"], ["--protocol", "3.1", "--print-config"],
                                  ["--protocol", "2.0b"]])
def test_protocol_goes_with_the_demo_modes_only(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bacnet_server_ven.py"), *args], capture_output=True,
                          text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 2
    assert "--protocol goes with --demo or --demo-peers" in proc.stderr

"""The gateway as an OpenADR 3.1 VEN against the 3.1 test VTN (every message checked against the 3.1.0
spec, ``vtn.assert_valid()`` at teardown) and Debian's mosquitto, in process: registration and the token,
events over MQTT and by polling, [signal.NAME] points, USAGE reports, a broker and a VTN outage, restart,
malformed objects, webhook mode."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from adrgw.core.signals import SignalPoint
from adrgw.demo.embedded import free_port
from adrgw.config.settings import ReportPoint

from .support.oadr3 import require_spec
from .support.pki import issue, make_ca
from .support.readings import clock_value
from .support.ven31 import now_plus, simple, stamp, ven31_settings
from .support.wait import wait_for

pytestmark = pytest.mark.integration

PRICE = SignalPoint("price", "PRICE", None, "ADR-Signal-price", 100, idle=-1.0)


async def started(vtn: Any, meter: Any, start_gateway: Any, tmp_path: Any, **ven: Any) -> Any:
    gateway = await start_gateway(ven31_settings(vtn.url, meter, tmp_path, **ven))
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    if ven.get("notifications", "auto") != "poll" and vtn.mqtt_url:
        await wait_for(lambda: gateway.link.mqtt_connected, 5, what="MQTT connected")
        await asyncio.sleep(0.2)  # the connect's re-sync
    return gateway


async def test_registration_token_renewal_and_401(vtn31, meter, start_gateway, tmp_path) -> None:
    """VEN object and resources created once and kept in the state store; an expired token renewed
    before use, a token the VTN forgot renewed once on its 401; the ids re-validated at the next start."""
    vtn31.token_ttl = 2.0
    report_point = ReportPoint("feeder", "12345:2", "analogInput", 2, resource_id="feeder-1")
    settings = ven31_settings(vtn31.url, meter, tmp_path, notifications="poll", poll_interval=0.5)
    from dataclasses import replace
    settings = replace(settings, reports=(report_point,))
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    assert [v["venName"] for v in vtn31.vens.values()] == ["ven-31"]
    assert sorted(r["resourceName"] for r in vtn31.resources.values()) == ["device001", "feeder-1"]
    state = gateway.link.state()
    assert state.registered and state.ven_id == next(iter(vtn31.vens))
    assert await gateway.store.get("oa3_ven_id") == state.ven_id
    # renewed before expiry: polls keep working past 2 token lifetimes without a 401
    await asyncio.sleep(4.5)
    assert vtn31.tokens_issued >= 3
    assert not [r for r in vtn31.requests if r[2] == 401]
    vtn31.expire_tokens()
    before = vtn31.tokens_issued
    await wait_for(lambda: vtn31.tokens_issued > before and gateway.link.state().online, 3, what="renewal on 401")
    assert sum(1 for r in vtn31.requests if r[2] == 401) == 1
    await gateway.stop()
    again = await start_gateway(settings)
    await asyncio.wait_for(again.link.registered.wait(), 5)
    assert len(vtn31.vens) == 1 and len(vtn31.resources) == 2
    assert ("GET", f"/vens/{state.ven_id}", 200) in vtn31.requests


async def test_event_created_modified_deleted_over_mqtt_and_simple_boundaries(vtn31, meter, start_gateway,
                                                                             tmp_path) -> None:
    """poll_interval 30: only MQTT can bring these within 2 s; the interval boundaries of a SIMPLE
    event land within 0.5 s on ADR-Event-Level."""
    vtn31.add_program("p1")
    gateway = await started(vtn31, meter, start_gateway, tmp_path)
    syncs = gateway.link.syncs
    latencies = []
    t0 = time.monotonic()
    event = vtn31.add_event("p1", **simple([2], now_plus(-1), 600))
    await wait_for(lambda: gateway.device.level == 2.0, 2, what="created: level 2")
    latencies.append(time.monotonic() - t0)
    t0 = time.monotonic()
    vtn31.update_event(event["id"], intervals=[{"id": 0, "payloads": [{"type": "SIMPLE", "values": [3]}]}])
    await wait_for(lambda: gateway.device.level == 3.0, 2, what="modified: level 3")
    latencies.append(time.monotonic() - t0)
    t0 = time.monotonic()
    vtn31.delete_event(event["id"])
    await wait_for(lambda: gateway.device.level == 0.0, 2, what="deleted: level 0")
    latencies.append(time.monotonic() - t0)
    assert max(latencies) < 2.0, latencies
    # SIMPLE 1, 2, 3 then the end, 1.5 s apart: each change within 0.5 s of its boundary
    start = now_plus(1.5)
    vtn31.add_event("p1", **simple([1, 2, 3], start, 1.5))
    boundaries = [(start.timestamp() + 1.5 * k, level) for k, level in enumerate([1.0, 2.0, 3.0, 0.0])]
    seen = []
    deadline = time.time() + 9
    last = gateway.device.level
    while time.time() < deadline and len(seen) < 4:
        if gateway.device.level != last:
            last = gateway.device.level
            seen.append((time.time(), last))
        await asyncio.sleep(0.01)
    assert [level for _, level in seen] == [level for _, level in boundaries]
    for (at, _), (due, _) in zip(seen, boundaries):
        assert 0 <= at - due < 0.5, (at - due)
    assert gateway.link.syncs == syncs  # everything came by notification: no full re-sync was needed


async def test_price_on_its_signal_point_while_the_level_stays_0_and_targets(vtn31, meter, start_gateway,
                                                                           tmp_path) -> None:
    vtn31.add_program("p1")
    from dataclasses import replace
    settings = replace(ven31_settings(vtn31.url, meter, tmp_path), signals=(PRICE,))
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    await wait_for(lambda: gateway.link.mqtt_connected, 5, what="MQTT")
    assert gateway.device.get_value("ADR-Signal-price") == -1.0
    vtn31.add_event("p1", **simple([0.31], now_plus(-1), 600, kind="PRICE"))
    await wait_for(lambda: round(float(gateway.device.get_value("ADR-Signal-price")), 6) == 0.31, 2, what="price")
    assert gateway.device.level == 0.0
    # priority: 3.1's 0 is the highest; an event without priority is the lowest
    vtn31.add_event("p1", **simple([0.5], now_plus(-1), 600, kind="PRICE"), priority=0)
    await wait_for(lambda: round(float(gateway.device.get_value("ADR-Signal-price")), 6) == 0.5, 2, what="priority 0")
    vtn31.add_event("p1", **simple([0.9], now_plus(-1), 600, kind="PRICE"))
    await asyncio.sleep(0.5)
    assert round(float(gateway.device.get_value("ADR-Signal-price")), 6) == 0.5
    assert gateway.device.level == 0.0
    # targets: our venName, and a target the VTN gave our VEN object, make an event ours
    vtn31.add_event("p1", **simple([2], now_plus(-1), 600), targets=["ven-31"])
    await wait_for(lambda: gateway.device.level == 2.0, 2, what="an event targeted at our venName")
    vtn31.update_ven(gateway.link.ven_id, targets=["north"])
    await wait_for(lambda: "north" in gateway.link._mine, 3, what="our VEN object's new target")
    vtn31.add_event("p1", **simple([3], now_plus(-1), 600), targets=["north"], priority=0)
    await wait_for(lambda: gateway.device.level == 3.0, 2, what="an event targeted at our group")


async def test_a_report_whose_answer_was_lost_is_updated_not_duplicated(vtn31, meter, start_gateway,
                                                                       tmp_path) -> None:
    """The VTN holds the POST past the request timeout but stores the report: the gateway finds it by
    its reportName and PUTs it instead of POSTing a second one (the same after a kill -9)."""
    meter.value_fn = clock_value
    vtn31.add_program("p1")
    gateway = await started(vtn31, meter, start_gateway, tmp_path, request_timeout=1.0)
    start = datetime.fromtimestamp(int(time.time()) + 1, timezone.utc)
    vtn31.add_event("p1", **simple([1, 1], start, 2),
                    report_descriptors=[{"payloadType": "USAGE", "startInterval": 0, "frequency": 1, "repeat": 2}])
    await wait_for(lambda: gateway.reports.plans, 2, what="the plan")
    await vtn31.pause("stall")
    await wait_for(lambda: any(s.attempted for s in gateway.reports.plans.values()), 6, what="the first POST")
    await asyncio.sleep(1.5)  # past the request timeout: the gateway never hears the answer
    # a VTN that stored the POST anyway has this report now (this peer drops a request whose client left)
    (plan,) = [s.plan for s in gateway.reports.plans.values()]
    lost = vtn31.add_report({"eventID": plan.event_id, "clientName": "ven-31", "reportName": plan.report_name,
                             "resources": [{"resourceName": "device001", "intervals": []}]})
    await vtn31.resume()
    await wait_for(lambda: not gateway.reports.plans, 15, what="the last report")
    assert list(vtn31.reports) == [lost["id"]], vtn31.reports  # updated, not duplicated
    methods = [m for m, _ in vtn31.report_history]
    assert methods[0] == "POST" and set(methods[1:]) == {"PUT"}, methods


async def test_usage_reports_match_the_meter_and_survive_a_vtn_outage(vtn31, meter, start_gateway,
                                                                      tmp_path) -> None:
    """An event asking for USAGE after each of its 2 s intervals: first POST, then PUTs of the same
    report; every value is the meter's at its instant; a VTN outage delays, loses nothing."""
    meter.value_fn = clock_value
    vtn31.add_program("p1")
    gateway = await started(vtn31, meter, start_gateway, tmp_path)
    start = datetime.fromtimestamp(int(time.time()) + 1, timezone.utc)
    event = vtn31.add_event("p1", **simple([1, 1, 1, 1], start, 2),
                            report_descriptors=[{"payloadType": "USAGE", "readingType": "DIRECT_READ",
                                                 "startInterval": 0, "numIntervals": 1, "frequency": 1,
                                                 "repeat": -1}])
    await wait_for(lambda: len(vtn31.report_history) >= 1, 6, what="the first report")
    await vtn31.pause()
    await asyncio.sleep(3.0)
    await vtn31.resume()
    await wait_for(lambda: not gateway.reports.plans, 15, what="the last report")
    methods = [m for m, _ in vtn31.report_history]
    assert methods[0] == "POST" and set(methods[1:]) == {"PUT"}
    assert len(vtn31.reports) == 1
    report = next(iter(vtn31.reports.values()))
    assert report["eventID"] == event["id"] and report["clientName"] == "ven-31"
    (resource,) = report["resources"]
    assert resource["resourceName"] == "device001"
    stamps = [datetime.fromisoformat(i["intervalPeriod"]["start"].replace("Z", "+00:00")).timestamp()
              for i in resource["intervals"]]
    assert stamps == [start.timestamp() + k for k in range(8)], stamps  # every second of the 8 s, once
    for interval, ts in zip(resource["intervals"], stamps):
        assert interval["payloads"] == [{"type": "USAGE", "values": [clock_value(ts)]}]
    assert gateway.reports.reports_sent >= 2 and gateway.link.last_delivery is not None


async def test_broker_outage_falls_back_to_polling(vtn31, mqtt_broker, meter, start_gateway, tmp_path,
                                                   caplog) -> None:
    caplog.set_level(logging.INFO, logger="adrgw")
    vtn31.add_program("p1")
    gateway = await started(vtn31, meter, start_gateway, tmp_path, poll_interval=1.5)
    await mqtt_broker.stop()
    await wait_for(lambda: not gateway.link.mqtt_connected, 5, what="the broker lost")
    vtn31.add_event("p1", **simple([2], now_plus(-1), 600))
    await wait_for(lambda: gateway.device.level == 2.0, 3.5, what="the event by polling")
    assert any("polling the VTN every 1.5 s until it is back" in r.getMessage() for r in caplog.records)
    await mqtt_broker.start()
    await wait_for(lambda: gateway.link.mqtt_connected, 35, what="the broker back")


async def test_restart_with_the_vtn_down_keeps_the_level(vtn31, meter, start_gateway, tmp_path) -> None:
    vtn31.add_program("p1")
    settings = ven31_settings(vtn31.url, meter, tmp_path)
    gateway = await start_gateway(settings)
    await asyncio.wait_for(gateway.link.registered.wait(), 5)
    vtn31.add_event("p1", **simple([3], now_plus(-1), 600))
    await wait_for(lambda: gateway.device.level == 3.0, 3, what="level 3")
    await gateway.stop()
    await vtn31.pause()
    again = await start_gateway(settings)
    assert again.device.level == 3.0
    await asyncio.sleep(2.0)
    assert again.device.level == 3.0 and not again.link.state().online
    await vtn31.resume()
    await asyncio.wait_for(again.link.registered.wait(), 10)
    await asyncio.sleep(0.5)
    assert again.device.level == 3.0


async def test_bad_objects_are_refused_and_logged_once(vtn31, mqtt_broker, meter, start_gateway, tmp_path,
                                                       caplog) -> None:
    import aiomqtt

    caplog.set_level(logging.INFO, logger="adrgw")
    program = vtn31.add_program("p1")
    gateway = await started(vtn31, meter, start_gateway, tmp_path)
    good = vtn31.add_event("p1", **simple([1], now_plus(-1), 600))
    await wait_for(lambda: gateway.device.level == 1.0, 2, what="level 1")
    now = stamp(now_plus(-1))
    bad = vtn31.add_raw_event({"programID": program["id"], "intervalPeriod": {"start": now, "duration": "PT10M"},
                               "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [7]}]}],
                               "priority": 0})
    worse = vtn31.add_raw_event({"programID": program["id"], "intervalPeriod": {"start": "yesterday"},
                                 "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [3]}]}],
                                 "priority": 0})
    # hostile notifications straight to the broker: not JSON, not a notification, a forged event
    async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as attacker:
        topic = f"OpenADR/3.1.0/vens/{gateway.link.ven_id}/events/create"
        for payload in (b"\xff\x00", b"[]", json.dumps({"objectType": "EVENT", "operation": "CREATE",
                                                         "object": {"id": "../../x"}}).encode()):
            await attacker.publish(topic, payload)
    await gateway.link.sync(True, set())  # a full re-sync reads them again: still logged once
    await asyncio.sleep(1.0)
    assert gateway.device.level == 1.0
    lines = [r.getMessage() for r in caplog.records]
    for event_id in (bad["id"], worse["id"]):
        assert sum(f"event {event_id}:" in line and "refused malformed event" in line for line in lines) == 1, lines
    assert any("SIMPLE level 7 is not one of 0, 1, 2, 3" in line for line in lines)
    assert any("refused a MQTT notification" in line for line in lines)
    vtn31.delete_event(good["id"])
    await wait_for(lambda: gateway.device.level == 0.0, 2, what="the good one deleted")


async def test_webhook_mode_over_https(mqtt_broker, meter, start_gateway, tmp_path) -> None:
    """No MQTT: the VTN posts notifications to our https callback with our bearer token."""
    from adrgw.demo.vtn31 import Vtn31

    ca = make_ca(tmp_path)
    server = issue(tmp_path, ca, "127.0.0.1")
    trust = ssl.create_default_context(cafile=str(ca.cert))
    vtn = Vtn31(port=free_port(), spec=require_spec(), webhook_ssl=trust)
    await vtn.start()
    try:
        vtn.add_program("p1")
        port = free_port()
        gateway = await start_gateway(ven31_settings(
            vtn.url, meter, tmp_path, notifications="webhook", callback_url=f"https://127.0.0.1:{port}/oadr3/hook",
            callback_listen=("127.0.0.1", port), cert=str(server.cert), key=str(server.key)))
        await asyncio.wait_for(gateway.link.registered.wait(), 5)
        await wait_for(lambda: len(vtn.subscriptions) == 1, 5, what="the subscription")
        (sub,) = vtn.subscriptions.values()
        assert sub["objectOperations"][0]["callbackUrl"] == f"https://127.0.0.1:{port}/oadr3/hook"
        t0 = time.monotonic()
        event = vtn.add_event("p1", **simple([2], now_plus(-1), 600))
        await wait_for(lambda: gateway.device.level == 2.0, 2, what="level 2 by webhook")
        assert time.monotonic() - t0 < 2
        vtn.delete_event(event["id"])
        await wait_for(lambda: gateway.device.level == 0.0, 2, what="level 0 by webhook")
        assert all(status == 200 for _, status in vtn.webhook_log), vtn.webhook_log
        # a caller without our token is refused
        import aiohttp
        async with aiohttp.ClientSession() as session:
            async with session.post(f"https://127.0.0.1:{port}/oadr3/hook", json={}, ssl=trust,
                                    headers={"Authorization": "Bearer guess"}) as resp:
                assert resp.status == 401
        vtn.assert_valid()
    finally:
        await vtn.stop()


async def test_https_vtn_basic_token_auth_and_mqtts(meter, start_gateway, tmp_path) -> None:
    """The VTN over HTTPS and its broker over MQTTS, both trusted through [ven] ca_file; a token endpoint
    that wants HTTP Basic client authentication (401 with WWW-Authenticate: Basic) gets it."""
    from adrgw.demo.vtn31 import MqttBroker, Vtn31

    from .support.oadr3 import require_mosquitto

    require_mosquitto()
    ca = make_ca(tmp_path)
    server = issue(tmp_path, ca, "127.0.0.1")
    broker = MqttBroker(port=free_port(), tls=(str(server.cert), str(server.key)))
    await broker.start()
    https = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    https.load_cert_chain(str(server.cert), str(server.key))
    vtn = Vtn31(port=free_port(), spec=require_spec(), mqtt=broker.url, mqtt_ca=str(ca.cert), ssl=https,
                token_auth="basic")
    await vtn.start()
    try:
        assert broker.url.startswith("mqtts://") and vtn.url.startswith("https://")
        vtn.add_program("p1")
        gateway = await started(vtn, meter, start_gateway, tmp_path, ca_file=str(ca.cert))
        assert gateway.link.client._basic
        vtn.add_event("p1", **simple([2], now_plus(-1), 600))
        await wait_for(lambda: gateway.device.level == 2.0, 2, what="level 2 over MQTTS")
        vtn.assert_valid()
    finally:
        await vtn.stop()
        await broker.stop()

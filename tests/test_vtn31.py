"""The OpenADR 3.1.0 test VTN on its own: it must be right before the gateway's 3.1 adapter is tested
against it. Auth (form, Basic, expiry), CRUD and the VTN's rules, visibility by targets, notifications
over MQTT, MQTTS and an HTTPS webhook, the spec validator catching bad messages, the fault hooks."""

from __future__ import annotations

import asyncio
import base64
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from adrgw.demo.embedded import free_port
from adrgw.demo.oadr3spec import SpecValidator
from adrgw.demo.vtn31 import MqttBroker, Vtn31, parse_duration, topics_for, utc_stamp

from .support import pki
from .support.oadr3 import MqttWatcher, Oadr3Client, require_mosquitto, require_spec

pytestmark = pytest.mark.integration

SIMPLE_2 = [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [2]}]}]


def _period(minutes_from_now: float = 0.0, duration: str = "PT1M") -> dict[str, str]:
    start = datetime.now(timezone.utc) + timedelta(minutes=minutes_from_now)
    return {"start": utc_stamp(start), "duration": duration}


async def _registered(vtn: Vtn31, client: Oadr3Client, name: str = "gw-1") -> dict[str, Any]:
    await client.login()
    status, ven = await client.call("POST", "/vens", {"objectType": "VEN_VEN_REQUEST", "venName": name})
    assert status == 201, ven
    return dict(ven)


@pytest.fixture
async def client(vtn31: Vtn31) -> AsyncIterator[Oadr3Client]:
    async with Oadr3Client(vtn31.url) as c:
        yield c


# ---------------------------------------------------------------------------------------------
# the validator alone (no sockets)


@pytest.fixture(scope="module")
def validator() -> SpecValidator:
    return SpecValidator(require_spec())


def _event(**overrides: Any) -> dict[str, Any]:
    now = utc_stamp()
    event = {"id": "event-1", "createdDateTime": now, "modificationDateTime": now, "objectType": "EVENT",
             "programID": "program-1", "intervals": SIMPLE_2}
    event.update(overrides)
    return event


@pytest.mark.unit
def test_validator_accepts_a_valid_event_and_refuses_bad_ones(validator: SpecValidator) -> None:
    op, _ = validator.find("GET", "/events/event-1")
    assert op is not None and op.operation_id == "searchEventsByID"
    assert validator.check_response(op, 200, _event()) == []
    # null for an unset (non-nullable) field
    assert any("duration" in p and "nullable" in p for p in validator.check_response(op, 200, _event(duration=None)))
    # a missing required field
    missing = _event()
    del missing["programID"]
    assert any("'programID' is a required property" in p for p in validator.check_response(op, 200, missing))
    # a wrong type, a bad date-time, a bad duration
    assert validator.check_response(op, 200, _event(priority="high"))
    assert any("date-time" in p for p in validator.check_response(op, 200, _event(createdDateTime="yesterday")))
    assert validator.check_response(op, 200, _event(intervalPeriod={"duration": "1 minute"}))
    # a status the spec does not list for the operation
    assert validator.check_response(op, 418, {})


@pytest.mark.unit
def test_validator_checks_requests_and_queries(validator: SpecValidator) -> None:
    op, values = validator.find("POST", "/reports")
    assert op is not None
    good = {"eventID": "event-1", "clientName": "gw", "resources": [
        {"resourceName": "meter", "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [1.0]}]}]}]}
    assert validator.check_request(op, values, [], good, "application/json") == []
    assert validator.check_request(op, values, [], {**good, "clientName": 5}, "application/json")
    assert validator.check_request(op, values, [], {"eventID": "event-1"}, "application/json")
    search, _ = validator.find("GET", "/events")
    assert search is not None
    assert validator.check_request(search, {}, [("programID", "p-1"), ("targets", "a"), ("targets", "b"),
                                                ("limit", "10"), ("active", "true")]) == []
    assert validator.check_request(search, {}, [("limit", "many")])
    assert validator.check_request(search, {}, [("limit", "51")])  # over the spec's maximum
    assert validator.check_request(search, {}, [("venName", "x")])  # not a parameter of GET /events
    ven, values = validator.find("POST", "/vens")
    assert ven is not None
    assert validator.check_request(ven, values, [], {"objectType": "VEN_VEN_REQUEST", "venName": "gw"}) == []
    assert validator.check_request(ven, values, [], {"venName": "gw"})  # no discriminator
    assert validator.check_request(ven, values, []) == ["request POST /vens: request body required"]


@pytest.mark.unit
def test_validator_notifications_and_the_specs_contradictions(validator: SpecValidator) -> None:
    now = utc_stamp()
    ven = {"id": "ven-1", "createdDateTime": now, "modificationDateTime": now, "objectType": "VEN",
           "clientID": "c", "venName": "gw"}
    assert validator.check_notification({"objectType": "VEN", "operation": "CREATE", "object": ven}) == []
    assert validator.check_notification({"objectType": "EVENT", "operation": "DELETE", "object": _event()}) == []
    assert validator.check_notification({"objectType": "EVENT", "operation": "POST", "object": _event()})
    assert validator.check_notification({"objectType": "EVENT", "operation": "UPDATE",
                                         "object": _event(programID=None)})
    assert validator.check_schema_named("ven", {**ven, "clientID": None}, "ven")


@pytest.mark.unit
def test_topic_names_and_durations() -> None:
    assert topics_for("events", "vens/ven-1") == {
        "CREATE": "OpenADR/3.1.0/vens/ven-1/events/create", "UPDATE": "OpenADR/3.1.0/vens/ven-1/events/update",
        "DELETE": "OpenADR/3.1.0/vens/ven-1/events/delete", "ALL": "OpenADR/3.1.0/vens/ven-1/events/+"}
    assert "CREATE" not in topics_for("", "programs/program-1")  # one object: no CREATE, as the spec says
    assert parse_duration("PT1M") == timedelta(minutes=1)
    assert parse_duration("P1DT2H0.5S") == timedelta(days=1, hours=2, seconds=0.5)
    assert parse_duration("P9999Y") is None


# ---------------------------------------------------------------------------------------------
# auth


async def test_token_discovery_and_bearer_checks(vtn31: Vtn31, client: Oadr3Client) -> None:
    async with client.session.get(f"{vtn31.url}/auth/server") as resp:
        assert resp.status == 200
        assert (await resp.json())["tokenURL"] == f"{vtn31.url}/auth/token"
    token = await client.login()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert (await client.call("GET", "/programs"))[0] == 200
    status, problem = await client.call("GET", "/programs", token="forged")
    assert status == 401 and problem["status"] == 401 and problem["title"] == "Unauthorized"
    vtn31.expire_tokens()
    assert (await client.call("GET", "/events"))[0] == 401
    await client.login()
    assert (await client.call("GET", "/events"))[0] == 200
    async with client.session.post(f"{vtn31.url}/auth/token", data={
            "grant_type": "client_credentials", "client_id": "ven-1", "client_secret": "wrong"}) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "invalid_client"
    assert ("POST", "/auth/token", 401) in vtn31.requests


async def test_tokens_expire_after_their_ttl(mqtt_broker: MqttBroker) -> None:
    vtn = Vtn31(port=free_port(), spec=require_spec(), token_ttl=0.5)
    await vtn.start()
    try:
        async with Oadr3Client(vtn.url) as client:
            assert (await client.login())["expires_in"] == 1
            assert (await client.call("GET", "/programs"))[0] == 200
            await asyncio.sleep(0.6)
            status, problem = await client.call("GET", "/programs")
            assert status == 401 and "expired" in problem["detail"]
    finally:
        await vtn.stop()
    vtn.assert_valid()


async def test_basic_client_authentication() -> None:
    vtn = Vtn31(port=free_port(), spec=require_spec(), token_auth="basic")
    await vtn.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{vtn.url}/auth/token"
            async with session.post(url, data={"grant_type": "client_credentials", "client_id": "ven-1",
                                               "client_secret": "secret"}) as resp:
                assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
            basic = base64.b64encode(b"ven-1:secret").decode()
            async with session.post(url, data={"grant_type": "client_credentials"},
                                    headers={"Authorization": f"Basic {basic}"}) as resp:
                assert resp.status == 200 and (await resp.json())["access_token"]
            wrong = base64.b64encode(b"ven-1:nope").decode()
            async with session.post(url, data={"grant_type": "client_credentials"},
                                    headers={"Authorization": f"Basic {wrong}"}) as resp:
                assert resp.status == 401
    finally:
        await vtn.stop()
    vtn.assert_valid()


# ---------------------------------------------------------------------------------------------
# objects and rules


async def test_ven_resources_reports_crud(vtn31: Vtn31, client: Oadr3Client) -> None:
    ven = await _registered(vtn31, client)
    assert ven["objectType"] == "VEN" and ven["clientID"] == "ven-1" and ven["id"] in vtn31.vens
    status, dup = await client.call("POST", "/vens", {"objectType": "VEN_VEN_REQUEST", "venName": "gw-1"})
    assert status == 409
    status, found = await client.call("GET", "/vens", params={"venName": "gw-1"})
    assert status == 200 and [v["id"] for v in found] == [ven["id"]]
    status, renamed = await client.call("PUT", f"/vens/{ven['id']}",
                                        {"objectType": "VEN_VEN_REQUEST", "venName": "gw-1b"})
    assert status == 200 and renamed["modificationDateTime"] > ven["modificationDateTime"]
    assert renamed["createdDateTime"] == ven["createdDateTime"]
    status, resource = await client.call("POST", "/resources", {
        "objectType": "VEN_RESOURCE_REQUEST", "resourceName": "meter-1", "venID": ven["id"]})
    assert status == 201 and resource["objectType"] == "RESOURCE" and resource["clientID"] == "ven-1"
    assert (await client.call("POST", "/resources", {"objectType": "VEN_RESOURCE_REQUEST",
                                                     "resourceName": "meter-1", "venID": ven["id"]}))[0] == 409
    status, listed = await client.call("GET", "/resources", params={"venID": ven["id"]})
    assert [r["resourceName"] for r in listed] == ["meter-1"]

    vtn31.add_program("p1")
    event = vtn31.add_event("p1", intervals=SIMPLE_2, interval_period=_period(),
                            report_descriptors=[{"payloadType": "USAGE", "readingType": "DIRECT_READ"}])
    report = {"eventID": event["id"], "clientName": "gw-1b", "resources": [
        {"resourceName": "meter-1", "intervalPeriod": _period(-1),
         "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [12.5]}]}]}]}
    status, posted = await client.call("POST", "/reports", report)
    assert status == 201 and posted["clientID"] == "ven-1" and posted["objectType"] == "REPORT"
    report["resources"][0]["intervals"].append({"id": 1, "payloads": [{"type": "USAGE", "values": [13.0]}]})
    status, put = await client.call("PUT", f"/reports/{posted['id']}", report)
    assert status == 200 and len(put["resources"][0]["intervals"]) == 2
    assert [kind for kind, _ in vtn31.report_history] == ["POST", "PUT"]
    kept = vtn31.add_report({**report, "reportName": "kept"})  # a POST whose answer the VEN never got
    assert kept["clientID"] == "ven-1" and vtn31.reports[kept["id"]]["reportName"] == "kept"
    vtn31.reports.pop(kept["id"])
    status, mine = await client.call("GET", "/reports", params={"eventID": event["id"], "clientName": "gw-1b"})
    assert status == 200 and [r["id"] for r in mine] == [posted["id"]]
    # a report for no event: a foreign key the VTN refuses
    assert (await client.call("POST", "/reports", {**report, "eventID": "event-999"}))[0] == 409
    # programs and events are the BL's to write
    assert (await client.call("POST", "/programs", {"programName": "mine"}))[0] == 403
    assert (await client.call("DELETE", f"/events/{event['id']}"))[0] == 403
    vtn31.assert_valid()


async def test_a_ven_sees_only_its_own_ven_objects(mqtt_broker: MqttBroker) -> None:
    vtn = Vtn31(port=free_port(), spec=require_spec(), more_clients={"ven-2": "secret-2"})
    await vtn.start()
    try:
        async with Oadr3Client(vtn.url) as one, Oadr3Client(vtn.url, "ven-2", "secret-2") as two:
            first = await _registered(vtn, one, "gw-1")
            await _registered(vtn, two, "gw-2")
            assert [v["venName"] for v in (await one.call("GET", "/vens"))[1]] == ["gw-1"]
            assert (await two.call("GET", f"/vens/{first['id']}"))[0] == 403
            assert (await two.call("PUT", f"/vens/{first['id']}", {"objectType": "VEN_VEN_REQUEST",
                                                                   "venName": "stolen"}))[0] == 403
            assert (await two.call("POST", "/resources", {"objectType": "VEN_RESOURCE_REQUEST",
                                                          "resourceName": "r", "venID": first["id"]}))[0] == 403
            # a VEN cannot pass itself off as the BL
            assert (await two.call("POST", "/vens", {"objectType": "BL_VEN_REQUEST", "venName": "x",
                                                     "clientID": "ven-1"}))[0] == 403
    finally:
        await vtn.stop()
    vtn.assert_valid()


async def test_event_visibility_by_targets_and_queries(vtn31: Vtn31, client: Oadr3Client) -> None:
    ven = await _registered(vtn31, client, "gw-1")
    vtn31.add_program("p1")
    other = vtn31.add_program("p-other", targets=["elsewhere"])
    open_event = vtn31.add_event("p1", intervals=SIMPLE_2, interval_period=_period())
    named = vtn31.add_event("p1", intervals=SIMPLE_2, interval_period=_period(), targets=["gw-1"])
    hidden = vtn31.add_event("p1", intervals=SIMPLE_2, interval_period=_period(), targets=["group-9"])
    in_hidden_program = vtn31.add_event("p-other", intervals=SIMPLE_2, interval_period=_period())
    past = vtn31.add_event("p1", intervals=SIMPLE_2, interval_period=_period(-10))
    status, events = await client.call("GET", "/events")
    assert status == 200
    assert [e["id"] for e in events] == [open_event["id"], named["id"], past["id"]]
    assert (await client.call("GET", f"/events/{hidden['id']}"))[0] == 404
    assert (await client.call("GET", f"/programs/{other['id']}"))[0] == 404
    assert [e["id"] for e in (await client.call("GET", "/events", params={"active": "true"}))[1]] == [
        open_event["id"], named["id"]]
    assert [e["id"] for e in (await client.call("GET", "/events", params={"targets": "gw-1"}))[1]] == [named["id"]]
    assert [e["id"] for e in (await client.call("GET", "/events", params={"skip": "1", "limit": "1"}))[1]] == [
        named["id"]]
    # the BL gives the VEN a group: the group's event and program become visible
    vtn31.update_ven(ven["id"], targets=["group-9", "elsewhere"])
    ids = [e["id"] for e in (await client.call("GET", "/events"))[1]]
    assert hidden["id"] in ids and in_hidden_program["id"] in ids
    assert (await client.call("GET", "/events", params={"limit": "51"}))[0] == 400
    assert any("limit" in v for v in vtn31.violations)  # the request broke the spec: recorded
    vtn31.violations.clear()


async def test_a_request_that_breaks_the_spec_is_refused_and_recorded(vtn31: Vtn31, client: Oadr3Client) -> None:
    ven = await _registered(vtn31, client)
    # null for an unset field, a missing required field, a wrong type
    status, problem = await client.call("POST", "/resources", {
        "objectType": "VEN_RESOURCE_REQUEST", "resourceName": "m", "venID": ven["id"], "attributes": None,
        "targets": None})
    assert status == 201  # nullable in the spec: accepted, but the gateway's no-nulls rule is recorded
    assert any("null sent for /attributes" in v for v in vtn31.violations)
    vtn31.violations.clear()
    assert (await client.call("POST", "/vens", {"objectType": "VEN_VEN_REQUEST"}))[0] == 400
    assert any("'venName' is a required property" in v for v in vtn31.violations)
    vtn31.violations.clear()
    status, problem = await client.call("POST", "/subscriptions", {
        "clientName": "gw", "objectOperations": [{"objects": ["EVENT"], "operations": ["CREATE"],
                                                  "callbackUrl": 7}]})
    assert status == 400 and "callbackUrl" in problem["detail"]
    assert any("callbackUrl" in v for v in vtn31.violations)
    with pytest.raises(AssertionError, match="spec violation"):
        vtn31.assert_valid()
    vtn31.violations.clear()


async def test_a_raw_event_breaking_the_schema_is_served_without_a_violation(vtn31: Vtn31,
                                                                             client: Oadr3Client) -> None:
    await _registered(vtn31, client)
    vtn31.add_program("p1")
    raw = vtn31.add_raw_event({"programID": vtn31.add_program("p2")["id"], "intervals": [{"id": "zero"}]})
    status, events = await client.call("GET", "/events")
    assert status == 200 and raw["id"] in [e["id"] for e in events]
    vtn31.assert_valid()


# ---------------------------------------------------------------------------------------------
# notifications


async def test_mqtt_topics_and_notifications(vtn31: Vtn31, client: Oadr3Client, mqtt_broker: MqttBroker) -> None:
    ven = await _registered(vtn31, client)
    status, notifiers = await client.call("GET", "/notifiers")
    assert status == 200 and notifiers["WEBHOOK"] is True
    assert notifiers["MQTT"] == {"URIS": [mqtt_broker.url], "serialization": "JSON",
                                 "authentication": {"method": "ANONYMOUS"}}
    status, topics = await client.call("GET", f"/notifiers/mqtt/topics/vens/{ven['id']}/events")
    assert status == 200 and topics["topics"]["CREATE"] == f"OpenADR/3.1.0/vens/{ven['id']}/events/create"
    program = vtn31.add_program("p1")
    for path in ("programs", f"programs/{program['id']}", f"programs/{program['id']}/events",
                 f"vens/{ven['id']}", f"vens/{ven['id']}/programs", f"vens/{ven['id']}/resources"):
        status, body = await client.call("GET", f"/notifiers/mqtt/topics/{path}")
        assert status == 200 and "UPDATE" in body["topics"], path
    for bl_only in ("events", "reports", "subscriptions", "vens", "resources"):
        assert (await client.call("GET", f"/notifiers/mqtt/topics/{bl_only}"))[0] == 403, bl_only
    assert (await client.call("GET", "/notifiers/mqtt/topics/vens/ven-99/events"))[0] == 404

    async with MqttWatcher(mqtt_broker.url, topics["topics"]["ALL"]) as watcher:
        event = vtn31.add_event("p1", intervals=SIMPLE_2, interval_period=_period())
        topic, note = await watcher.wait_for(lambda t, n: n["operation"] == "CREATE")
        assert topic.endswith("/events/create") and note["objectType"] == "EVENT" and note["object"] == event
        vtn31.update_event(event["id"], intervals=[{"id": 0, "payloads": [{"type": "SIMPLE", "values": [3]}]}])
        _, note = await watcher.wait_for(lambda t, n: n["operation"] == "UPDATE")
        assert note["object"]["intervals"][0]["payloads"][0]["values"] == [3]
        assert note["object"]["modificationDateTime"] > event["modificationDateTime"]
        vtn31.delete_event(event["id"])
        topic, note = await watcher.wait_for(lambda t, n: n["operation"] == "DELETE")
        assert topic == f"OpenADR/3.1.0/vens/{ven['id']}/events/delete" and note["object"]["id"] == event["id"]
        # an event for another group reaches the global topic only, not this VEN's
        vtn31.add_event("p1", intervals=SIMPLE_2, targets=["group-9"])
        await asyncio.sleep(0.3)
        assert [n["operation"] for _, n in watcher.messages] == ["CREATE", "UPDATE", "DELETE"]
    assert any(t == "OpenADR/3.1.0/events/create" and n["object"].get("targets") == ["group-9"]
               for t, n in vtn31.notifications)


async def test_mqtts_notifications(tmp_path: Path) -> None:
    require_mosquitto()
    ca = pki.make_ca(tmp_path)
    cert = pki.issue(tmp_path, ca, "broker")
    broker = MqttBroker(port=free_port(), tls=(str(cert.cert), str(cert.key)))
    await broker.start()
    vtn = Vtn31(port=free_port(), spec=require_spec(), mqtt=broker.url, mqtt_ca=str(ca.cert))
    try:
        await vtn.start()
        assert broker.url.startswith("mqtts://") and vtn.mqtt_connected.is_set()
        async with MqttWatcher(broker.url, ca_file=str(ca.cert)) as watcher:
            vtn.add_program("p1")
            topic, note = await watcher.wait_for(lambda t, n: True)
            assert topic == "OpenADR/3.1.0/programs/create" and note["object"]["programName"] == "p1"
    finally:
        await vtn.stop()
        await broker.stop()
    vtn.assert_valid()


async def test_the_vtn_publishes_again_after_a_broker_outage(vtn31: Vtn31, mqtt_broker: MqttBroker) -> None:
    await mqtt_broker.stop()
    await asyncio.sleep(0.3)
    vtn31.add_program("during-outage")  # dropped: nobody could have received it
    await mqtt_broker.start()
    await asyncio.wait_for(vtn31.mqtt_connected.wait(), 5.0)
    async with MqttWatcher(mqtt_broker.url) as watcher:
        vtn31.add_program("after")
        _, note = await watcher.wait_for(lambda t, n: True)
        assert note["object"]["programName"] == "after"
    assert vtn31.mqtt_dropped >= 1


async def test_webhook_over_https_with_the_subscriptions_bearer_token(vtn31: Vtn31, client: Oadr3Client,
                                                                      tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path)
    cert = pki.issue(tmp_path, ca, "hook")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(cert.cert), str(cert.key))
    vtn31.webhook_ssl = ssl.create_default_context(cafile=str(ca.cert))
    received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def callback(request: web.Request) -> web.Response:
        await received.put((request.headers.get("Authorization", ""), await request.json()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", callback)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ctx).start()
    try:
        await _registered(vtn31, client)
        program = vtn31.add_program("p1")
        status, sub = await client.call("POST", "/subscriptions", {
            "clientName": "gw-1", "programID": program["id"], "objectOperations": [{
                "objects": ["EVENT"], "operations": ["CREATE", "DELETE"],
                "callbackUrl": f"https://127.0.0.1:{port}/hook", "bearerToken": "hook-token"}]})
        assert status == 201 and sub["clientID"] == "ven-1" and sub["id"] in vtn31.subscriptions
        event = vtn31.add_event("p1", intervals=SIMPLE_2)
        vtn31.update_event(event["id"], priority=1)  # not subscribed to UPDATE
        vtn31.delete_event(event["id"])
        auth, note = await asyncio.wait_for(received.get(), 5.0)
        assert auth == "Bearer hook-token" and note["operation"] == "CREATE" and note["object"]["id"] == event["id"]
        _, note = await asyncio.wait_for(received.get(), 5.0)
        assert note["operation"] == "DELETE"
        await asyncio.sleep(0.2)
        assert received.empty() and [status for _, status in vtn31.webhook_log] == [200, 200]
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------------------------
# fault hooks


async def test_fail_and_pause_hooks(vtn31: Vtn31, client: Oadr3Client) -> None:
    await client.login()
    vtn31.fail("/events", 503, times=2)
    assert (await client.call("GET", "/events"))[0] == 503
    assert (await client.call("GET", "/programs"))[0] == 200
    assert (await client.call("GET", "/events"))[0] == 503
    assert (await client.call("GET", "/events"))[0] == 200
    await vtn31.pause("refuse")
    with pytest.raises(aiohttp.ClientError):
        await client.call("GET", "/events")
    async with aiohttp.ClientSession() as fresh:
        with pytest.raises(aiohttp.ClientConnectorError):
            await fresh.get(f"{vtn31.url}/auth/server")
    await vtn31.resume()
    assert (await client.call("GET", "/events"))[0] == 200
    vtn31.pause("stall")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.call("GET", "/events"), 0.5)
    await vtn31.resume()
    assert (await client.call("GET", "/events"))[0] == 200

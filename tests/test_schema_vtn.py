"""The schema VTN itself: its messages are valid 2.0b, and the gateway works against it over HTTP."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .support.config import gateway_settings
from .support.schema_vtn import (SchemaVtn, Signal, event_xml, format_duration, parse_duration, report_request_xml,
                         validate)

pytestmark = pytest.mark.integration


def test_every_builder_produces_schema_valid_messages() -> None:
    vtn = SchemaVtn(port=1)
    vtn.ven_id, vtn.registration_id = "v1", "r1"
    now = datetime.now(timezone.utc)
    messages = [
        vtn.distribute_event(event_xml("e1", now, [Signal([1, 2], timedelta(seconds=5))],
                                       targets={"ven_id": ["v1"], "group_id": ["g"], "party_id": ["p"]}),
                             event_xml("e2", now, [Signal([0.31], timedelta(seconds=5), "ELECTRICITY_PRICE", "price")],
                                       test_event=True, priority=None)),
        vtn.distribute_event(),
        vtn.create_report(report_request_xml("rr1", "spec", ["a", "b"], timedelta(seconds=10),
                                             timedelta(seconds=60), (now, timedelta(hours=1)))),
        vtn.cancel_report(["rr1", "rr2"], True), vtn.request_reregistration(), vtn.cancel_party_registration(),
        vtn._response_message(), vtn._created_party_registration("q"),
    ]
    for message in messages:
        assert validate(message) == [], message
    assert validate("<oadrPayload/>") != []
    assert validate(b"not xml") != []


@given(st.integers(min_value=0, max_value=10 * 86400 * 1000))
def test_duration_format_round_trips(ms: int) -> None:
    value = timedelta(milliseconds=ms)
    assert parse_duration(format_duration(value)) == value


async def test_gateway_registers_polls_and_reports_against_the_schema_vtn(meter, start_gateway, tmp_path) -> None:
    vtn = SchemaVtn()
    await vtn.start()
    try:
        gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
        await vtn.wait_until(lambda: vtn.offered and vtn.messages("oadrPoll"), 10, "oadrRegisterReport and a poll")
        assert gateway.link.ven_id == "schema-ven-1"
        reg = vtn.registrations[0]
        assert (reg["ven_name"], reg["http_pull"], reg["registration_id"]) == ("test-ven", True, None)
        assert [o.report_name for o in vtn.offered][0] == "METADATA_TELEMETRY_USAGE"
        spec = vtn.offered[0]
        vtn.push(vtn.create_report(report_request_xml("rr-1", spec.report_specifier_id, list(spec.r_ids),
                                                      timedelta(seconds=1), timedelta(seconds=2))))
        await vtn.wait_until(lambda: vtn.created_reports and vtn.reports, 10, "oadrCreatedReport and a report")
        assert vtn.created_reports[0].response_code == 200
        assert all(r.report_request_id == "rr-1" for r in vtn.reports)
        assert all(v.value is not None for r in vtn.reports for v in r.intervals)
        # EiEvent: an event pushed on the poll is applied and answered with oadrCreatedEvent
        start = datetime.now(timezone.utc) + timedelta(seconds=60)
        vtn.push(vtn.distribute_event(event_xml("ev-1", start, [Signal([2.0], timedelta(minutes=1))])))
        await vtn.wait_until(lambda: vtn.event_responses, 10, "oadrCreatedEvent")
        assert vtn.event_responses[0] == ("ev-1", 0, "optIn", 200)
        assert "ev-1" in gateway.controller.events
        vtn.assert_valid()
    finally:
        await vtn.stop()


async def test_eiopt_and_fault_hooks_of_the_schema_vtn() -> None:
    """EiOpt as a VEN would send it (openleadr's own templates), and the fail/delay hooks."""
    import aiohttp
    from openleadr.messaging import create_message

    vtn = SchemaVtn()
    vtn.ven_id = "v1"
    await vtn.start()
    try:
        now = datetime.now(timezone.utc)
        create = create_message("oadrCreateOpt", opt_id="opt-1", opt_type="optOut", opt_reason="participating",
                                ven_id="v1", created_date_time=now, request_id="r-1", event_id="e-1",
                                modification_number=2)
        cancel = create_message("oadrCancelOpt", request_id="r-2", opt_id="opt-1", ven_id="v1")
        async with aiohttp.ClientSession() as session:
            async def post(message: str) -> tuple[int, str]:
                async with session.post(f"{vtn.url}/EiOpt", data=message) as resp:
                    return resp.status, await resp.text()

            status, body = await post(create)
            assert status == 200 and "oadrCreatedOpt" in body and validate(body) == []
            status, body = await post(cancel)
            assert status == 200 and "oadrCanceledOpt" in body and validate(body) == []
            vtn.fail("oadrCancelOpt", status=503)
            assert (await post(cancel))[0] == 503
            vtn.delay("oadrCancelOpt", 0.3)
            started = asyncio.get_running_loop().time()
            assert (await post(cancel))[0] == 200
            assert asyncio.get_running_loop().time() - started >= 0.3
        opt = vtn.opts[0]
        assert (opt.opt_id, opt.opt_type, opt.event_id, opt.modification_number) == ("opt-1", "optOut", "e-1", 2)
        assert vtn.opt_cancels == ["opt-1", "opt-1"]  # the failed one was not handled
        assert len(vtn.messages("oadrCancelOpt")) == 3  # but it was recorded
        vtn.assert_valid()
    finally:
        await vtn.stop()

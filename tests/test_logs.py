"""Logs an operator reads, measured on the real gateway process: at most one INFO line per meter cycle
(the contract's ``Adding ... to report``), report deliveries at most one line a minute, countdowns at
DEBUG, and no library traceback with a silent meter (bacpypes3's unretrieved InvalidStateError)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.demo.embedded import free_port
from adrgw.core.ratelog import BacklogNotice, DeliverySummary

from .support.config import config_text
from .support.process import spawn
from .support.wait import wait_for

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def info(lines: list[str]) -> list[str]:
    return [line for line in lines if " INFO " in line]


@pytest.mark.integration
@pytest.mark.process
async def test_one_info_line_per_meter_cycle_and_countdowns_at_debug(vtn, meter, tmp_path) -> None:
    (tmp_path / "config.ini").write_text(config_text(vtn.url, free_port(socket.SOCK_DGRAM), meter.port))
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: proc.has("report delivered") and proc.has("ADR-VTN-Online -> active"), 20,
                       what="the first delivered report")
        start = len(proc.lines)
        await wait_for(lambda: sum("Adding " in line for line in proc.lines[start:]) >= 8, 20,
                       what="8 samples outside events")
        quiet = info(proc.lines[start:])
        # An event with a countdown before it and two intervals: the level changes twice.
        ven_id = vtn.ven_ids["process-ven"]
        begin = datetime.now(timezone.utc) + timedelta(seconds=3)
        vtn.add_event(ven_id, [1.0, 2.0], begin, timedelta(seconds=4))
        mark = len(proc.lines)
        await wait_for(lambda: proc.has("ADR-Event-Level -> 0.0") and
                       any("ADR-Event-Level -> 2.0" in line for line in proc.lines[mark:]), 30,
                       what="the event's levels and its end")
        during = info(proc.lines[mark:])
    finally:
        code, _ = await proc.stop(signal.SIGTERM)
    assert code == 0
    samples = sum("Adding " in line for line in quiet)
    # Outside events: the sample line and nothing else (the first report was logged before `start`,
    # the next summary line comes a minute later).
    assert [line for line in quiet if "Adding " not in line] == [], quiet
    assert samples >= 8
    # During the event: no countdown and no meter-mirror lines at INFO; the level changes are there.
    for point in ("ADR-Event-Remaining ->", "ADR-Event-Start-In ->", "ADR-Meter-Value ->"):
        assert not any(point in line for line in during), point
    assert any("ADR-Event-Level -> 1.0" in line for line in during)
    assert sum("report delivered" in line for line in during) <= 1


@pytest.mark.integration
@pytest.mark.timeout(240)
@pytest.mark.process
@pytest.mark.slow
async def test_silent_meter_for_25_s_leaves_no_traceback_in_the_log(vtn, meter, tmp_path) -> None:
    """bacpypes3 0.0.110 sets an exception on the already-cancelled future of a timed-out read in a
    task nobody awaits; without adrgw.bacnet.bacpypes3_futures this printed 'Task exception was never
    retrieved ... InvalidStateError' (16 lines) every few reads: 25 failed reads show it, and the 10th
    read's summary line."""
    meter.online = False
    (tmp_path / "config.ini").write_text(config_text(vtn.url, free_port(socket.SOCK_DGRAM), meter.port))
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: proc.has("meter read failed"), 20, what="the first failed read")
        first = len(proc.lines)
        await asyncio.sleep(25)
        failed_reads = meter.reads  # the meter counts only answered reads: stays 0 while offline
        window = proc.lines[first:]
    finally:
        code, _ = await proc.stop(signal.SIGTERM)
    text = "\n".join(proc.lines)
    assert code == 0
    assert failed_reads == 0
    assert "Traceback" not in text and "never retrieved" not in text and "InvalidStateError" not in text, text
    # 25 failed reads at 1 s: the failure is said once, then rate-limited (10th read), not 25 times.
    assert sum("meter" in line for line in window) <= 3, window
    assert proc.has("meter still failing: 10 reads in a row")


# -- the pure rate rules ---------------------------------------------------------------------------

def test_delivery_summary_first_line_then_one_a_minute_with_counts() -> None:
    summary = DeliverySummary(every=60)
    lines = [summary.delivered(float(t), 1, T0 + timedelta(seconds=t), T0 + timedelta(seconds=t))
             for t in range(0, 130, 10)]
    said = [(i * 10, line) for i, line in enumerate(lines) if line]
    assert [t for t, _ in said] == [0, 60, 120]
    assert said[0][1].startswith("report delivered: 1 sample(s) 2026-11-26T12:00:00+00:00 ..")
    assert "(6 reports, 6 samples since the last line 60 s ago)" in said[1][1]


def test_backlog_notice_every_ten_minutes_while_unreachable() -> None:
    notice = BacklogNotice(every=600)
    said = [(t, notice.check(float(t), False, 5 + t // 10, T0)) for t in range(0, 1900, 10)]
    times = [t for t, line in said if line]
    assert times == [600, 1200, 1800]
    line = dict(said)[600]
    assert line == ("VTN unreachable for 10 min: 65 sample(s) queued, oldest 2026-11-26T12:00:00+00:00; "
                    "they are sent when the VTN answers")
    assert notice.check(1900.0, True, 0, None) is None
    assert notice.check(1910.0, False, 3, T0) is None  # a new outage starts its own clock


@pytest.mark.parametrize("online, depth", [(True, 10), (False, 0)])
def test_no_backlog_line_when_the_vtn_answers_or_nothing_waits(online: bool, depth: int) -> None:
    notice = BacklogNotice(every=600)
    assert all(notice.check(float(t), online, depth, T0) is None for t in range(0, 3600, 60))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 120), st.integers(1, 360)), min_size=1, max_size=60))
def test_delivery_lines_are_a_minute_apart_and_account_for_every_report(gaps: list[tuple[float, int]]) -> None:
    summary = DeliverySummary(every=60)
    now, said_at, pending_reports, pending_samples = 0.0, [], 0, 0
    for gap, samples in gaps:
        now += gap
        pending_reports, pending_samples = pending_reports + 1, pending_samples + samples
        line = summary.delivered(now, samples, T0, T0)
        if line:
            if said_at and pending_reports > 1:
                assert f"({pending_reports} reports, {pending_samples} samples since" in line
            said_at.append(now)
            pending_reports = pending_samples = 0
    assert said_at[0] == gaps[0][0]  # the first delivery is always said
    assert all(b - a >= 60 for a, b in zip(said_at, said_at[1:]))


@pytest.mark.integration
async def test_backlog_line_while_the_vtn_is_away_and_the_count_at_stop(meter, tmp_path, caplog, monkeypatch) -> None:
    """The real loop (snapshot.run) with the period shortened: the line carries the queue depth and the
    oldest queued instant; the stop says how many samples are kept."""
    import functools
    import logging

    from adrgw.ops import snapshot
    from adrgw.app import Gateway
    from adrgw.demo.embedded import DemoVtn

    from .support.config import gateway_settings

    caplog.set_level(logging.INFO, logger="adrgw")
    monkeypatch.setattr(snapshot, "SNAPSHOT_SECONDS", 0.5)
    monkeypatch.setattr(snapshot, "BacklogNotice", functools.partial(BacklogNotice, every=2.0))
    down = DemoVtn(port=free_port())  # never started: the VTN is unreachable
    gateway = Gateway(gateway_settings(down.url, meter, tmp_path))
    await gateway.start()
    try:
        await wait_for(lambda: any("VTN unreachable for" in r.getMessage() for r in caplog.records), 15,
                       what="the backlog line")
    finally:
        await gateway.stop()
    line = next(r.getMessage() for r in caplog.records if "VTN unreachable for" in r.getMessage())
    assert " sample(s) queued, oldest 20" in line and line.endswith("they are sent when the VTN answers")
    kept = [r.getMessage() for r in caplog.records if "not yet delivered (oldest 20" in r.getMessage()]
    assert len(kept) == 1 and kept[0].split()[0].isdigit() and int(kept[0].split()[0]) >= 2, kept


@pytest.mark.integration
async def test_late_answer_for_an_abandoned_request_is_dropped_without_a_traceback(caplog) -> None:
    """Pins the second site of the bacpypes3 0.0.110 bug (adrgw.bacnet.bacpypes3_futures): an answer that
    arrives after the request's future was cancelled (our bounded read gave up) made
    Application.confirmation raise InvalidStateError up the receive chain, logged with a traceback."""
    from bacpypes3.apdu import SimpleAckPDU
    from bacpypes3.app import Application
    from bacpypes3.pdu import Address

    from adrgw.bacnet import bacpypes3_futures

    bacpypes3_futures.install()
    source = Address("127.0.0.1:47999")
    request = SimpleAckPDU()
    request.apduInvokeID = 7
    abandoned: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    abandoned.cancel()
    app = type("App", (), {"_requests": {source: [(request, abandoned)]}})()
    answer = SimpleAckPDU()
    answer.apduInvokeID = 7
    answer.pduSource = source
    caplog.set_level(logging.DEBUG, logger="adrgw.bacnet")
    await Application.confirmation(app, answer)  # raised InvalidStateError before the workaround
    assert any("late answer" in r.getMessage() for r in caplog.records)

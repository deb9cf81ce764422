"""One snapshot of the gateway's facts (ops/facts.py) and its four readers: systemd's STATUS line,
the --status snapshot, /metrics and the status page, each fed the same GatewayFacts of one instant.

Stand-in parts (tests/support/facts.py), no gateway, sockets or store: the readers' text is pinned
here (names and formats are part of the operator's interface), the real gateway is in test_web.py,
test_status.py and test_operations.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adrgw.core.revision import Revision
from adrgw.core.schedule import Event, Interval
from adrgw.ops import snapshot
from adrgw.ops.facts import collect, gather
from adrgw.ops.metrics import Metrics
from adrgw.ops.pages import render_page
from adrgw.ops.sdnotify import status_follower, status_line
from adrgw.ops.statusview import page_view

from .support import facts as fake
from .support.facts import T0

pytestmark = pytest.mark.unit


def event(event_id: str = "ev1", start: datetime = T0 - timedelta(minutes=1), levels: tuple[float, ...] = (2.0,),
          rev: int = 0) -> Event:
    step = timedelta(minutes=10)
    return Event(event_id, Revision.number(rev), tuple(Interval(start + k * step, start + (k + 1) * step, level)
                                                        for k, level in enumerate(levels)))


class Target:
    name, priority = "fan", 8

    def __str__(self) -> str:
        return "192.168.1.30 analogValue 3 presentValue @8"


class Writer:
    target = Target()
    desired, applied, confirmed_at, failures, attempts, writes = 2.0, (2.0,), T0, 0, 3, 2


def busy_sources() -> Any:
    """A gateway with something to say about everything."""
    return fake.sources(
        link=fake.Link(registered=False, online=False, ven_id=None, last_contact=T0 - timedelta(minutes=5),
                       attempts=3, poll_period=timedelta(seconds=10)),
        reports=fake.Reports(last_delivery=T0 - timedelta(seconds=90), reports_sent=7, period=timedelta(minutes=1)),
        samples=fake.Queue(depth=5, oldest=T0 - timedelta(minutes=20), stored=40, delivered=35, dropped=1,
                           unstored=2),
        store=fake.Store(failing="disk full", episodes=1), events=(event(),), opt_out=True, writers=(Writer(),),
        gateway_status=4, dead=("vtn-link",), failures=4, reads_ok=41, read_errors=4, missed=1, late_reads=1,
        last_error="timeout")


# -- gathering ----------------------------------------------------------------------------------


def test_gather_reads_every_part_at_one_instant() -> None:
    f = gather(busy_sources(), T0, oldest_queued=T0 - timedelta(minutes=20))
    assert f.at == T0 and f.link.attempts == 3 and f.link.poll_period == timedelta(seconds=10)
    assert (f.queue_depth, f.oldest_queued, f.reports_sent, f.last_delivery) == (5, T0 - timedelta(minutes=20), 7,
                                                                                  T0 - timedelta(seconds=90))
    assert f.schedule.level == 2.0 and f.schedule.event_id == "ev1" and f.events[0].event_id == "ev1"
    assert (f.samples.taken, f.samples.delivered, f.samples.missed, f.meter.failures) == (41, 35, 1, 4)
    assert not f.storage_ok and f.storage_fault == "disk full" and f.gateway_status_text == "storage-failing"
    assert f.writes[0].holding == "2.0" and f.writes[0].confirmations == 2 and f.dead_tasks == ("vtn-link",)
    assert f.health().reasons == ("not registered with the VTN", "meter failing (4 reads in a row)",
                                  "report queue growing (oldest sample 1200 s old)", "state storage failing")


async def test_collect_asks_the_store_first_and_a_failing_query_is_a_fact() -> None:
    sources = fake.sources(samples=fake.Queue(depth=2, oldest=T0 - timedelta(seconds=30)))
    f = await collect(sources, clock=lambda: T0)
    assert f.at == T0 and f.oldest_queued == T0 - timedelta(seconds=30) and f.storage_ok
    sources.samples.depth = 0  # delivered while the query ran: nothing is queued at the facts' instant
    assert (await collect(sources, clock=lambda: T0)).oldest_queued is None
    sources.samples.fail = True
    f = await collect(sources, clock=lambda: T0)
    assert not f.storage_ok and f.oldest_queued is None and "state storage failing" in f.health().reasons


# -- systemd's STATUS -------------------------------------------------------------------------------


def test_status_line_text() -> None:
    quiet = fake.sources(link=fake.Link(last_contact=T0))
    assert status_line(gather(quiet, T0)) == "registered as ven-1; 0 sample(s) queued"
    assert status_line(gather(busy_sources(), T0)) == (
        "not registered (attempt 3); last report 2026-11-26 11:58:30Z; 5 sample(s) queued; meter failing (4 reads); "
        "event ev1 active; storage failing (disk full); restarting task(s) vtn-link")


def test_status_follower_sends_a_line_only_when_it_changed() -> None:
    sent: list[str] = []
    notifier: Any = type("N", (), {"status": lambda self, text: sent.append(text)})()
    follow = status_follower(notifier)
    sources = fake.sources(link=fake.Link(last_contact=T0))
    follow(gather(sources, T0))
    follow(gather(sources, T0 + timedelta(seconds=1)))
    sources.samples.depth = 3
    follow(gather(sources, T0 + timedelta(seconds=2)))
    assert sent == ["registered as ven-1; 0 sample(s) queued", "registered as ven-1; 3 sample(s) queued"]


# -- the --status snapshot ----------------------------------------------------------------------------


def test_snapshot_json_keys_and_one_moment() -> None:
    f = gather(busy_sources(), T0, oldest_queued=T0 - timedelta(minutes=20))
    info = snapshot.snapshot_json(f, running=True)
    assert list(info) == [
        "written_at", "running", "pid", "version", "snapshot_seconds", "min_spacing_s", "ven_name", "vtn_url",
        "ven_id", "registered", "registration_attempts", "last_contact", "poll_period_s", "report_requested",
        "report_period_s", "queue_depth", "oldest_queued", "last_delivery", "reports_sent", "meter",
        "meter_interval_s", "meter_unit", "meter_last_value", "meter_last_read", "meter_failures", "meter_last_error",
        "level", "event_status", "active_event", "events", "opt_out", "storage_ok"]
    assert info["written_at"] == T0.isoformat() and info["registration_attempts"] == 3
    assert info["poll_period_s"] == 10.0 and info["report_period_s"] == 60.0 and info["queue_depth"] == 5
    assert info["meter"] == fake.LABELS.meter and info["meter_last_error"] == "timeout"
    assert (info["level"], info["event_status"], info["active_event"]) == (2.0, "active", "ev1")
    assert info["events"][0]["status"] == "active" and info["events"][0]["modification_number"] == 0
    assert info["storage_ok"] is False and json.loads(json.dumps(info)) == info


async def test_snapshot_writer_hands_the_facts_to_its_listeners_then_writes() -> None:
    sources = fake.sources(link=fake.Link(last_contact=T0))
    heard: list[Any] = []
    writer = snapshot.SnapshotWriter(sources, listeners=[heard.append])
    facts = await writer.write_now()
    assert facts is not None and heard == [facts]
    written = json.loads(sources.store.written[snapshot.KEY])
    assert written["written_at"] == facts.at.isoformat() and written["ven_id"] == "ven-1"


# -- /metrics -------------------------------------------------------------------------------------------

METRICS = ["adrgw_event_level", "adrgw_event_status", "adrgw_opt_out", "adrgw_samples_taken", "adrgw_samples_stored",
           "adrgw_samples_delivered", "adrgw_samples_dropped", "adrgw_meter_read_failures",
           "adrgw_report_queue_depth", "adrgw_report_queue_oldest_age_seconds", "adrgw_reports_sent",
           "adrgw_vtn_online", "adrgw_vtn_registered", "adrgw_vtn_last_poll_timestamp_seconds",
           "adrgw_vtn_last_report_timestamp_seconds", "adrgw_vtn_registration_attempts",
           "adrgw_bacnet_requests_served", "adrgw_write_through_writes", "adrgw_write_through_confirmations",
           "adrgw_samples_missed", "adrgw_samples_late_discarded", "adrgw_samples_unstored", "adrgw_storage_failing",
           "adrgw_storage_fault_episodes", "adrgw_task_restarts", "adrgw_clock_steps", "adrgw_gateway_status",
           "adrgw_healthy", "adrgw_event_loop_lag_seconds"]


def test_metrics_render_the_facts() -> None:
    f = gather(busy_sources(), T0, oldest_queued=T0 - timedelta(minutes=20))
    metrics = Metrics()
    families = {m.name: m for m in text_string_to_metric_families(metrics.render(f).decode())}
    # prometheus_client adds NAME_created beside a histogram (when its series began): not ours.
    assert sorted(n for n in families if not n.endswith("_created")) == sorted(METRICS)

    def value(name: str, **labels: str) -> float:
        sample_name = name + ("_total" if families[name].type == "counter" else "")
        return next(s.value for s in families[name].samples if s.name == sample_name and s.labels == labels)

    assert value("adrgw_event_level") == 2.0 and value("adrgw_event_status", status="active") == 1.0
    assert value("adrgw_samples_taken") == 41 and value("adrgw_samples_delivered") == 35
    assert value("adrgw_report_queue_oldest_age_seconds") == 1200.0 and value("adrgw_reports_sent") == 7
    assert value("adrgw_vtn_registration_attempts") == 3 and value("adrgw_vtn_registered") == 0
    assert value("adrgw_vtn_last_poll_timestamp_seconds") == (T0 - timedelta(minutes=5)).timestamp()
    assert value("adrgw_write_through_writes", target="fan") == 3
    assert value("adrgw_write_through_confirmations", target="fan") == 2
    assert value("adrgw_storage_failing") == 1 and value("adrgw_gateway_status") == 4 and value("adrgw_healthy") == 0
    assert value("adrgw_task_restarts") == 1
    assert metrics.collector.facts is None  # nothing of this scrape is kept for the next one


# -- the status page ---------------------------------------------------------------------------------------


class Histories:
    """MeterHistory and EventHistory with nothing recorded."""

    version = 0
    records: dict[str, Any] = {}

    async def window(self, t0: float, t1: float) -> tuple[list[tuple[float, float]], list[float]]:
        return [(t0 + 10.0, 1.5)], []


async def test_page_view_shows_the_facts() -> None:
    f = gather(busy_sources(), T0, oldest_queued=T0 - timedelta(minutes=20))
    view = await page_view(f, Histories(), Histories())  # type: ignore[arg-type]
    assert view.now == T0 and view.device == fake.LABELS.device and view.level == 2.0
    assert (view.registered, view.registration_attempts, view.queue_depth) == (False, 3, 5)
    assert view.gateway_status == (4, "storage-failing") and view.writes[0].holding == "2.0"
    assert view.meter == "192.168.1.20 analogInput 2 every 10 s" and view.health == f.health()
    html = render_page(view)
    assert "not registered (attempt 3)" in html and "storage-failing (4)" in html

"""--status against a running gateway process and a stopped one: read-only, healthy/degraded exit
codes, stored events with their windows and levels, --json for scripts, exit 2 on a config error."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest

from adrgw.demo import free_port
from adrgw.status import main as status_main

from .conftest import wait_for
from .test_process import config_text, spawn

ROOT = Path(__file__).resolve().parent.parent


async def status(tmp_path: Path, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bacnet_server_ven.py"), "--status", *extra, cwd=str(tmp_path),
        env=dict(os.environ, HOME=str(tmp_path)), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode() + err.decode()


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.integration
async def test_status_of_a_running_gateway_healthy_then_degraded_then_stopped(vtn, meter, tmp_path) -> None:
    meter.set_value(42.5)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, free_port(socket.SOCK_DGRAM), meter.port))
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: proc.has("report delivered"), 20, what="a delivered report")
        ven_id = vtn.ven_ids["process-ven"]
        start = datetime.now(timezone.utc) + timedelta(minutes=5)
        vtn.add_event(ven_id, [1.0, 3.0], start, timedelta(minutes=10))
        await wait_for(lambda: proc.has("event ") and proc.has(" received "), 10, what="the event")
        await asyncio.sleep(11)  # one snapshot period, so the snapshot has the event's state
        code, text = await status(tmp_path)
        assert code == 0, text
        lines = text.splitlines()
        assert lines[0] == "gateway: healthy"
        assert f"registered as {ven_id} with {vtn.url}" in text
        # A sample waits in the queue until its report is due (the VTN's reportBackDuration).
        assert "42.5 kW at" in text and re.search(r"report queue  \d+ sample\(s\)", text), text
        assert "opted in" in text and "events        1 stored:" in text
        row = next(line for line in lines if "levels 1, 3" in line)
        assert " far " in row and start.isoformat()[:16] in row and "optIn" in row
        code, raw = await status(tmp_path, "--json")
        data = json.loads(raw)
        assert code == 0 and data["health"] == "healthy" and data["running"] is True
        assert data["registration"]["ven_id"] == ven_id and data["meter"]["last_value"] == 42.5
        assert data["events"][0]["levels"] == [1.0, 3.0] and data["events"][0]["status"] == "far"
        # Read-only: --status beside the gateway changes nothing in the state directory's database
        # beyond what the gateway itself writes (the kv snapshot); here: it creates no file.
        before = set(os.listdir(tmp_path / "state"))
        await status(tmp_path)
        assert set(os.listdir(tmp_path / "state")) == before
        # The meter stops answering: degraded once the snapshot holds 3 failed reads in a row.
        meter.online = False
        await wait_for(lambda: proc.has("meter read failed"), 10, what="a failed read")
        await asyncio.sleep(11)
        code, raw = await status(tmp_path, "--json")
        data = json.loads(raw)
        assert code == 1, raw
        assert data["health"] == "degraded" and data["running"] is True
        assert any(reason.startswith("meter failing (") for reason in data["reasons"]), data["reasons"]
        assert data["meter"]["failures"] >= 3 and "no answer within" in data["meter"]["last_error"]
    finally:
        code, _ = await proc.stop(signal.SIGTERM)
    assert code == 0
    files = digest(tmp_path / "state")
    code, text = await status(tmp_path)
    assert code == 1, text
    assert text.splitlines()[0].startswith("gateway: degraded: gateway not running")
    assert "stopped at" in text and "events        1 stored:" in text
    assert digest(tmp_path / "state") == files  # nothing written by --status


async def test_status_without_state_and_with_bad_config(tmp_path) -> None:
    (tmp_path / "config.ini").write_text(config_text("http://127.0.0.1:9/OpenADR2/Simple/2.0b", 47830, 47831))
    code, text = await status(tmp_path)
    assert code == 1 and text.startswith("gateway: degraded: no gateway state in ")
    (tmp_path / "config.ini").write_text("[ven]\nven_name = x\n")
    code, text = await status(tmp_path)
    assert code == 2 and "config.ini: [ven] vtn_url: required but missing" in text and "Traceback" not in text


def test_stale_snapshot_means_not_running(tmp_path) -> None:
    import sqlite3

    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "gateway.sqlite3")
    db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    written = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    snap = {"written_at": written.isoformat(), "running": True, "snapshot_seconds": 10, "registered": True,
            "last_contact": written.isoformat(), "poll_period_s": 10, "meter_failures": 0, "pid": 1}
    db.execute("INSERT INTO kv VALUES ('status_snapshot', ?)", (json.dumps(snap),))
    db.commit()
    db.close()
    code, _ = status_main(str(state), False, now=written + timedelta(seconds=29))
    assert code == 0
    code, text = status_main(str(state), False, now=written + timedelta(seconds=31))
    assert code == 1 and "no snapshot for 31 s" in text and "gateway not running" in text


# -- the snapshot writer's timing rule (a stand-in gateway; the store write replaced) ------------------

def stand_in_gateway(last_contact: Optional[datetime] = None) -> Any:
    from types import SimpleNamespace

    registered = asyncio.Event()
    registered.set()
    link = SimpleNamespace(online=lambda: True, registered=registered, last_poll_ok=last_contact,
                           poll_period=timedelta(seconds=1))
    return SimpleNamespace(link=link, samples=[], sampler=SimpleNamespace(failures=0),
                           reports=SimpleNamespace(report_period=lambda: None), store=SimpleNamespace(healthy=True))


def recorded_writes(monkeypatch: pytest.MonkeyPatch, spacing: float, heartbeat: float) -> list[float]:
    from adrgw import snapshot

    times: list[float] = []

    async def write(gateway: Any, running: bool = True, collected: Any = None) -> None:
        times.append(asyncio.get_running_loop().time())
        if collected is not None:
            collected({"oldest_queued": None})

    monkeypatch.setattr(snapshot, "write", write)
    monkeypatch.setattr(snapshot, "MIN_SPACING", spacing)
    monkeypatch.setattr(snapshot, "SNAPSHOT_SECONDS", heartbeat)
    return times


async def test_snapshot_writes_follow_changes_and_coalesce_bursts(monkeypatch) -> None:
    """Written at once after a quiet time; a burst of changes is at most one write per spacing, the
    last change written within one spacing; no write without a change before the heartbeat."""
    from adrgw import snapshot

    spacing = 0.2
    times = recorded_writes(monkeypatch, spacing, heartbeat=100.0)
    loop = asyncio.get_running_loop()
    writer = snapshot.SnapshotWriter(stand_in_gateway())
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: len(times) == 1, 5, what="the first snapshot")
        await asyncio.sleep(0.5)
        assert len(times) == 1  # nothing changed
        changed_at = loop.time()
        writer.changed()
        await wait_for(lambda: len(times) == 2, 5, what="the write after a change")
        assert times[1] - changed_at < 0.15  # quiet before: written at once, not after a spacing
        began, last_change = loop.time(), 0.0
        while loop.time() - began < 1.0:  # 100 changes in a second
            writer.changed()
            last_change = loop.time()
            await asyncio.sleep(0.01)
        await wait_for(lambda: times[-1] >= last_change, 5, what="the burst's last change written")
        assert times[-1] - last_change <= spacing + 0.1
        burst = [t for t in times if t >= began]
        assert len(burst) <= 1.0 / spacing + 2, burst
        assert all(b - a >= spacing - 0.005 for a, b in zip(times, times[1:])), times
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_snapshot_written_when_time_alone_changes_the_verdict(monkeypatch) -> None:
    """The VTN counts as silent 3 poll periods after its last answer, without any event: the writer
    wakes then (health.next_change) instead of at the next heartbeat."""
    from adrgw import snapshot

    times = recorded_writes(monkeypatch, 0.2, heartbeat=100.0)
    loop = asyncio.get_running_loop()
    silent_in = 0.5
    gateway = stand_in_gateway(last_contact=datetime.now(timezone.utc) - timedelta(seconds=3) +
                               timedelta(seconds=silent_in))
    began = loop.time()
    writer = snapshot.SnapshotWriter(gateway)
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: len(times) == 2, 5, what="the write when the VTN falls silent")
        assert silent_in <= times[1] - began <= silent_in + 0.3, times[1] - began
        await asyncio.sleep(0.5)
        assert len(times) == 2  # nothing more changes by time alone
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # The VTN answers before it would count as silent: the instant moves, no write for it.
    times.clear()
    gateway.link.last_poll_ok = datetime.now(timezone.utc) - timedelta(seconds=3) + timedelta(seconds=0.3)
    task = asyncio.create_task(snapshot.SnapshotWriter(gateway).run())
    try:
        await wait_for(lambda: len(times) == 1, 5, what="the first snapshot")
        await asyncio.sleep(0.1)
        gateway.link.last_poll_ok = datetime.now(timezone.utc)
        await asyncio.sleep(0.6)
        assert len(times) == 1, times
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_snapshot_heartbeat_without_changes(monkeypatch) -> None:
    from adrgw import snapshot

    times = recorded_writes(monkeypatch, 0.05, heartbeat=0.3)
    writer = snapshot.SnapshotWriter(stand_in_gateway())
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: len(times) >= 4, 5, what="heartbeat writes")
        assert all(0.29 <= b - a <= 0.6 for a, b in zip(times, times[1:])), times
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

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

import pytest

from adrgw.demo.embedded import free_port
from adrgw.ops.status import main as status_main

from .support.config import config_text
from .support.process import spawn
from .support.wait import wait_for

pytestmark = pytest.mark.unit

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
@pytest.mark.process
@pytest.mark.slow
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


@pytest.mark.process
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

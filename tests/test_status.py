"""--status against a running gateway process and a stopped one: read-only, healthy/degraded exit
codes, stored events with their windows and levels, --json for scripts, exit 2 on a config error.

Issue 18: --status, systemd's STATUS and /healthz follow the gateway within a second (registration,
an event starting and ending), one answer is one moment (the level agrees with the events' status),
the answer says how old it is, and a reader that closes the pipe early ends it quietly. Lags are
measured from timestamps (the gateway's log line, the snapshot's written_at, the arrival of a
STATUS datagram), never by racing a sleep.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import aiohttp
import pytest

from adrgw.core.revision import Revision
from adrgw.core.schedule import Event, Interval, event_to_dict
from adrgw.demo.embedded import free_port
from adrgw.ops.facts import gather
from adrgw.ops.status import main as status_main

from .support import facts as facts_support
from .support.config import config_text
from .support.notify import drain, notify_socket
from .support.process import Proc, spawn
from .support.wait import wait_for

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


async def status(tmp_path: Path, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bacnet_server_ven.py"), "--status", *extra, cwd=str(tmp_path),
        env=dict(os.environ, HOME=str(tmp_path)), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode() + err.decode()


async def status_until(tmp_path: Path, done: Callable[[int, str], bool], timeout: float,
                       *extra: str) -> tuple[int, str]:
    """Ask --status until its answer satisfies ``done`` (the last answer after ``timeout`` s)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        code, text = await status(tmp_path, *extra)
        if done(code, text) or asyncio.get_running_loop().time() > deadline:
            return code, text


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
        # The snapshot follows within a second (issue 18); --status itself takes a moment to start.
        code, text = await status_until(tmp_path, lambda code, text: "events        1 stored:" in text, 10)
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
        code, raw = await status_until(tmp_path, lambda code, raw: code == 1, 15, "--json")
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


# -- issue 18: how fresh and how consistent the answer is --------------------------------------------

# The rule is "within 1 s" (at most one snapshot write per second); this much more is allowed for the
# loop's wake-up and process scheduling on a loaded 2-core CI machine. The old code (a write every
# 10 s, STATUS every 30 s) misses it by seconds.
LAG_RULE = 1.0
LAG_SLACK = 0.5


def logged_at(line: str) -> datetime:
    """The timestamp of a gateway log line (local time, milliseconds) as UTC."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone(timezone.utc)


def line_with(proc: Proc, text: str) -> str:
    return next(line for line in proc.lines if text in line)


def written(snap: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(snap["written_at"])


class SnapshotLog:
    """Every distinct status snapshot the gateway writes, read from its state file (sqlite, read-only)
    every 50 ms in a thread, so the test sees when each was written (its written_at)."""

    def __init__(self, state: Path) -> None:
        self.path = state / "gateway.sqlite3"
        self.seen: list[dict[str, Any]] = []
        self._task = asyncio.create_task(self._run())

    def _read(self) -> Optional[dict[str, Any]]:
        if not Path(f"{self.path}-wal").exists():  # not running yet (mode=ro needs the live WAL)
            return None
        try:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
            try:
                row = db.execute("SELECT value FROM kv WHERE key = 'status_snapshot'").fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return None
        return json.loads(row[0]) if row else None

    async def _run(self) -> None:
        while True:
            snap = await asyncio.to_thread(self._read)
            if snap is not None and (not self.seen or self.seen[-1]["written_at"] != snap["written_at"]):
                self.seen.append(snap)
            await asyncio.sleep(0.05)

    def first(self, predicate: Callable[[dict[str, Any]], bool],
              after: Optional[datetime] = None) -> Optional[dict[str, Any]]:
        return next((s for s in self.seen if (after is None or written(s) >= after) and predicate(s)), None)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def pipe_command(args: str) -> list[str]:
    """``bacnet_server_ven.py ARGS | head -1`` through a real shell pipe, exiting with the exit code
    of the gateway's side (what head printed on stdout, the gateway's stderr on stderr)."""
    return ["bash", "-c", f'"{sys.executable}" "{ROOT / "bacnet_server_ven.py"}" {args} | head -1; '
                          'exit "${PIPESTATUS[0]}"']


async def shell_pipe(tmp_path: Path, args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *pipe_command(args), cwd=str(tmp_path), env=dict(os.environ, HOME=str(tmp_path)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def shell_pipe_sync(tmp_path: Path, args: str) -> tuple[int, str, str]:
    done = subprocess.run(pipe_command(args), cwd=tmp_path, env=dict(os.environ, HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.integration
async def test_status_follows_registration_within_a_second(vtn, meter, tmp_path) -> None:
    """The real process against openleadr's VTN: the snapshot (--status), systemd's STATUS and
    /healthz say "registered" within a second of the log line; the answer states its age."""
    sock, sock_path = notify_socket(tmp_path)
    config = config_text(vtn.url, free_port(socket.SOCK_DGRAM), meter.port)
    match = re.search(r"listen = 127\.0\.0\.1:(\d+)", config)
    assert match is not None
    http = f"http://127.0.0.1:{match.group(1)}/healthz"
    (tmp_path / "config.ini").write_text(config)
    statuses: list[tuple[datetime, str]] = []  # (arrival, STATUS text)

    async def follow_status() -> None:
        while True:
            for message in drain(sock):
                arrived = datetime.now(timezone.utc)
                statuses.extend((arrived, f[len("STATUS="):]) for f in message.split("\n") if f.startswith("STATUS="))
            await asyncio.sleep(0.02)

    os.environ["NOTIFY_SOCKET"] = sock_path  # no WATCHDOG_USEC: STATUS comes with READY and on changes
    try:
        proc = await spawn(cwd=tmp_path, home=tmp_path)
    finally:
        del os.environ["NOTIFY_SOCKET"]
    snaps = SnapshotLog(tmp_path / "state")
    follower = asyncio.create_task(follow_status())
    try:
        await wait_for(lambda: proc.has("registered with the VTN as venID"), 30, what="the registration line")
        registered_at = logged_at(line_with(proc, "registered with the VTN as venID"))
        # /healthz and the status page are judged in the gateway when asked: the first answers after
        # the line know it.
        async with aiohttp.ClientSession() as session:
            async with session.get(http) as response:
                health = await response.json()
            async with session.get(http.replace("/healthz", "/")) as response:
                page = await response.text()
        assert "not registered with the VTN" not in health["reasons"], health
        assert "registered as ven-" in page, page[:3000]
        # The snapshot --status reads: written within a second of the change.
        await wait_for(lambda: snaps.first(lambda s: bool(s.get("registered"))) is not None, 15,
                       what="a snapshot saying registered")
        first = snaps.first(lambda s: bool(s.get("registered")))
        assert first is not None
        snapshot_lag = (written(first) - registered_at).total_seconds()
        print(f"\nmeasured: snapshot {snapshot_lag:.3f} s after the log line")
        assert snapshot_lag <= LAG_RULE + LAG_SLACK, (snapshot_lag, [s["written_at"] for s in snaps.seen])
        # systemd's STATUS line follows the same snapshots.
        await wait_for(lambda: any("registered as" in text for _, text in statuses), 15,
                       what="a STATUS line saying registered")
        status_lag = (next(t for t, text in statuses if "registered as" in text) - registered_at).total_seconds()
        print(f"measured: systemd STATUS {status_lag:.3f} s after the log line")
        assert status_lag <= LAG_RULE + LAG_SLACK, (status_lag, statuses)
        # --status itself, asked once the rule's second (plus slack) has passed: registered, healthy,
        # and saying how old its figures are.
        due = registered_at + timedelta(seconds=LAG_RULE + LAG_SLACK)
        await asyncio.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()))
        code, raw = await status(tmp_path, "--json")
        data = json.loads(raw)
        assert data["registration"]["registered"] is True, raw
        assert code == 0 and data["health"] == "healthy", raw
        assert 0 <= data["snapshot_age_s"] < 5 and data["as_of"] == datetime.fromisoformat(data["as_of"]).isoformat()
        assert datetime.fromisoformat(data["as_of"]) >= registered_at
        code, text = await status(tmp_path)
        assert code == 0 and re.search(r"\n  as of         \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\dZ \(snapshot "
                                       r"\d+\.\d s old; rewritten within 1 s of a change", text), text
        # A reader that stops after the first line: no traceback, the verdict as exit code.
        code, out, err = await shell_pipe(tmp_path, "--status --json")
        assert (code, out, err) == (0, "{\n", ""), (code, out, err)
    finally:
        follower.cancel()
        await snaps.stop()
        code, _ = await proc.stop(signal.SIGTERM)
        sock.close()
    assert code == 0


def level_at(at: datetime, start: datetime, step: timedelta, levels: list[float]) -> Optional[tuple[float, str]]:
    """(level, event status) of the test's event at ``at``; None within 5 ms of a boundary."""
    bounds = [start + n * step for n in range(len(levels) + 1)]
    if any(abs((at - b).total_seconds()) < 0.005 for b in bounds):
        return None
    if at < start:
        return 0.0, "far"
    for n, level in enumerate(levels):
        if at < bounds[n + 1]:
            return level, "active"
    return 0.0, "completed"


def check_one_moment(answer: dict[str, Any], at: datetime, event_id: str, start: datetime, step: timedelta,
                     levels: list[float]) -> None:
    """The level, the event status and the event's row all agree, as of the answer's moment."""
    expected = level_at(at, start, step, levels)
    if expected is None:
        return
    level, status = expected
    row = next((r for r in answer.get("events") or [] if r["event_id"] == event_id), None)
    assert answer["level"] == level, (at.isoformat(), level, answer["level"], row)
    if row is not None:
        assert row["status"] == status, (at.isoformat(), status, row)
    if status == "active":
        assert answer["active_event"] == event_id, answer


@pytest.mark.integration
async def test_status_answer_is_one_moment_through_an_event(vtn, meter, tmp_path) -> None:
    """An event received, starting and ending: each shows in the snapshot within a second of the log
    line, and every --status answer and snapshot has the level that goes with its events' status."""
    (tmp_path / "config.ini").write_text(config_text(vtn.url, free_port(socket.SOCK_DGRAM), meter.port))
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    snaps = SnapshotLog(tmp_path / "state")
    answers: list[tuple[datetime, dict[str, Any]]] = []

    asking = True

    async def ask() -> None:
        while asking:  # stopped between two calls: a cancelled call would leave its child behind
            _, raw = await status(tmp_path, "--json")
            data = json.loads(raw)
            answers.append((datetime.fromisoformat(data.get("as_of") or data["checked_at"]), data))

    asker: Optional[asyncio.Task[None]] = None
    levels, step = [1.0, 3.0], timedelta(seconds=3)
    try:
        await wait_for(lambda: proc.has("registered with the VTN as venID"), 30, what="the registration line")
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5)
        event_id = vtn.add_event(vtn.ven_ids["process-ven"], levels, start, step)
        asker = asyncio.create_task(ask())
        await wait_for(lambda: proc.has(f"event {event_id} received"), 15, what="the event")
        await wait_for(lambda: proc.has(f"event {event_id} is active"), 15, what="the event's start")
        await wait_for(lambda: proc.has(f"event {event_id} is completed"), 15, what="the event's end")
        ended_at = logged_at(line_with(proc, f"event {event_id} is completed"))
        await wait_for(lambda: snaps.first(lambda s: s.get("level") == 0.0, after=ended_at) is not None
                       and any(at > ended_at + timedelta(seconds=1) for at, _ in answers), 15,
                       what="the end in a snapshot and an answer after it")
    finally:
        asking = False
        if asker is not None:
            await asyncio.wait_for(asyncio.gather(asker, return_exceptions=True), 60)
        await snaps.stop()
        code, _ = await proc.stop(signal.SIGTERM)
    assert code == 0
    # One moment: every answer (as of its snapshot) and every snapshot (as of its written_at).
    assert len(answers) >= 3, answers
    for at, data in answers:
        check_one_moment(data, at, event_id, start, step, levels)
    for snap in snaps.seen:
        check_one_moment(snap, written(snap), event_id, start, step, levels)
    # Within a second of the log line: the event received, started, ended.
    lags = {}
    for what, line, predicate in (
            ("received", f"event {event_id} received",
             lambda s: any(r["event_id"] == event_id for r in s.get("events") or [])),
            ("active", f"event {event_id} is active", lambda s: s.get("active_event") == event_id),
            ("completed", f"event {event_id} is completed",
             lambda s: s.get("active_event") is None and s.get("level") == 0.0)):
        at = logged_at(line_with(proc, line))
        seen = snaps.first(predicate, after=at - timedelta(seconds=0.005))
        assert seen is not None, (what, [s["written_at"] for s in snaps.seen])
        lags[what] = (written(seen) - at).total_seconds()
    print(f"\nmeasured: snapshot after the log line: {lags}")
    assert all(lag <= LAG_RULE + LAG_SLACK for lag in lags.values()), lags
    assert all(data["snapshot_age_s"] is not None and data["snapshot_age_s"] >= 0 for _, data in answers)


def test_status_into_a_closed_pipe_ends_quietly(tmp_path) -> None:
    """``--status --json | head -1`` (and the text form) through a real shell pipe, with an answer far
    larger than a pipe's buffer so the reader is gone while --status still writes: no BrokenPipeError
    traceback, and the exit code is still the verdict (1: this gateway is not running)."""
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "config.ini").write_text(config_text("http://127.0.0.1:9/OpenADR2/Simple/2.0b", 47830, 47831))
    start = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    events = [Event(f"event-{n:05d}", Revision.number(0), (Interval(start + timedelta(minutes=n), start + timedelta(minutes=n + 1),
                                                    float(n % 4)),)) for n in range(3000)]
    db = sqlite3.connect(state / "gateway.sqlite3")
    db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE events (event_id TEXT PRIMARY KEY, data TEXT NOT NULL)")
    db.executemany("INSERT INTO events VALUES (?, ?)", [(e.event_id, json.dumps(event_to_dict(e))) for e in events])
    snap = {"written_at": start.isoformat(), "running": False, "snapshot_seconds": 10, "registered": True, "pid": 1}
    db.execute("INSERT INTO kv VALUES ('status_snapshot', ?)", (json.dumps(snap),))
    db.commit()
    db.close()
    size = len(subprocess.run([sys.executable, str(ROOT / "bacnet_server_ven.py"), "--status", "--json"],
                              cwd=tmp_path, env=dict(os.environ, HOME=str(tmp_path)), capture_output=True).stdout)
    assert size > 500_000  # far more than a pipe holds (64 kB): the reader leaves while we write
    code, out, err = shell_pipe_sync(tmp_path, "--status --json")
    assert (code, out, err) == (1, "{\n", ""), (code, out, err[-2000:])
    code, out, err = shell_pipe_sync(tmp_path, "--status")
    assert code == 1 and out.startswith("gateway: degraded: gateway not running") and err == "", (code, out, err[-2000:])


# -- the snapshot writer's timing rule (stand-in parts; the store write replaced) ---------------------

def stand_in_sources(last_contact: Optional[datetime] = None) -> Any:
    return facts_support.sources(link=facts_support.Link(last_contact=last_contact))


def recorded_writes(monkeypatch: pytest.MonkeyPatch, spacing: float, heartbeat: float) -> list[float]:
    from adrgw.ops import snapshot

    times: list[float] = []

    async def write(sources: Any, running: bool = True, collected: Any = None) -> None:
        times.append(asyncio.get_running_loop().time())
        if collected is not None:
            collected(gather(sources, datetime.now(timezone.utc)))

    monkeypatch.setattr(snapshot, "write", write)
    monkeypatch.setattr(snapshot, "MIN_SPACING", spacing)
    monkeypatch.setattr(snapshot, "SNAPSHOT_SECONDS", heartbeat)
    return times


async def test_snapshot_writes_follow_changes_and_coalesce_bursts(monkeypatch) -> None:
    """Written at once after a quiet time; a burst of changes is at most one write per spacing, the
    last change written within one spacing; no write without a change before the heartbeat."""
    from adrgw.ops import snapshot

    spacing = 0.2
    times = recorded_writes(monkeypatch, spacing, heartbeat=100.0)
    loop = asyncio.get_running_loop()
    writer = snapshot.SnapshotWriter(stand_in_sources())
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
    from adrgw.ops import snapshot

    times = recorded_writes(monkeypatch, 0.2, heartbeat=100.0)
    loop = asyncio.get_running_loop()
    silent_in = 0.5
    sources = stand_in_sources(last_contact=datetime.now(timezone.utc) - timedelta(seconds=3) +
                               timedelta(seconds=silent_in))
    began = loop.time()
    writer = snapshot.SnapshotWriter(sources)
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
    sources.link.last_contact = datetime.now(timezone.utc) - timedelta(seconds=3) + timedelta(seconds=0.3)
    task = asyncio.create_task(snapshot.SnapshotWriter(sources).run())
    try:
        await wait_for(lambda: len(times) == 1, 5, what="the first snapshot")
        await asyncio.sleep(0.1)
        sources.link.last_contact = datetime.now(timezone.utc)
        await asyncio.sleep(0.6)
        assert len(times) == 1, times
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_snapshot_heartbeat_without_changes(monkeypatch) -> None:
    from adrgw.ops import snapshot

    times = recorded_writes(monkeypatch, 0.05, heartbeat=0.3)
    writer = snapshot.SnapshotWriter(stand_in_sources())
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: len(times) >= 4, 5, what="heartbeat writes")
        assert all(0.29 <= b - a <= 0.6 for a, b in zip(times, times[1:])), times
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

"""``--status``: how the gateway is, read from its state directory (read-only, safe beside it).

The running gateway keeps its events, opt-out state and undelivered samples in the sqlite store and
rewrites a status snapshot there within a second of any change and at least every 10 s
(snapshot.py). This module opens that file read-only (sqlite ``mode=ro``: it never writes, never
locks the gateway out), judges the facts with the shared health rule (health.py) and prints them for
a person, or as JSON for scripts.

One answer is one moment: every figure comes from the snapshot, taken by the gateway in one turn of
its loop (the level, the event status and each event's status from the same events at the same
instant), and the answer says how old that moment is (``as of``, ``snapshot_age_s``). Recomputing
the events' status here at "now" instead mixed moments (issue 18: ``level 0`` beside an ``active``
event); recomputing everything here would need the gateway's whole configuration and schedule rules
and could still disagree with the point a BACnet client reads. Only a state without a snapshot (a
gateway that never ran this version) falls back to the stored tables, evaluated at one instant.

Exit codes: 0 healthy, 1 degraded (or not running), 2 for a config error (cli.py). Printing to a
reader that went away (``--status --json | head -1``) ends quietly with the same code.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from adrgw.ops import snapshot
from adrgw.core.health import Health, HealthFacts, verdict
from adrgw.core.schedule import Event, event_from_dict
from adrgw.persist.samples import EVERYTHING_OWED, Ledger
from adrgw.persist.store import FILENAME

EXIT_HEALTHY = 0
EXIT_DEGRADED = 1
# A snapshot older than this many snapshot periods means the gateway is not running (or is stuck).
STALE_SNAPSHOTS = 3


class StatusError(Exception):
    """The state cannot be read at all (no state file, unreadable); the message is one line."""


@dataclass(frozen=True)
class StoredState:
    """What the state directory holds: the snapshot (None if never written), events, opt-out, queue."""

    path: Path
    snapshot: Optional[dict[str, Any]]
    events: list[dict[str, Any]]
    opt_out: bool
    ven_id: Optional[str]
    queue_depth: int
    oldest_queued: Optional[datetime]


def _dt(text: Optional[str]) -> Optional[datetime]:
    return datetime.fromisoformat(text) if text else None


def read_state(directory: str, ledger: Ledger = EVERYTHING_OWED) -> StoredState:
    """Read the store in ``directory`` without writing anything; StatusError when there is none.
    ``ledger``: how the configured protocol adapter records what the VTN acknowledged (links.py)."""
    path = Path(directory) / FILENAME
    if not path.is_file():
        raise StatusError(f"no gateway state in {str(Path(directory).resolve())!r} ({FILENAME} not found): "
                          "the gateway has not run with this config, or [state] directory is relative "
                          "and resolves against another working directory")
    # A running gateway keeps a write-ahead log (-wal/-shm files) that a read-only reader shares. A
    # stopped one leaves none, and sqlite would create them even for mode=ro: open that file as
    # immutable instead, so --status never writes into the state directory.
    live = Path(f"{path}-wal").exists()
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{'mode=ro' if live else 'immutable=1'}", uri=True,
                             timeout=5)
    except sqlite3.Error as exc:
        raise StatusError(f"cannot open {str(path)!r} read-only: {exc}") from None
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        kv: dict[str, str] = dict(db.execute("SELECT key, value FROM kv")) if "kv" in tables else {}
        events = [json.loads(data) for _, data in db.execute("SELECT event_id, data FROM events")] \
            if "events" in tables else []
        # Undelivered: what some report still owes the VTN (the adapter's ledger); a store from before
        # the report service has no request tables, and every sample in it is undelivered.
        owed = f" WHERE ts >= ({ledger.owed_from_sql})" if set(ledger.tables) <= tables else ""
        depth, oldest = (db.execute(f"SELECT COUNT(*), MIN(ts) FROM samples{owed}").fetchone()
                         if "samples" in tables else (0, None))
    except (sqlite3.Error, ValueError) as exc:
        raise StatusError(f"cannot read {str(path)!r}: {exc}") from None
    finally:
        db.close()
    raw = kv.get(snapshot.KEY)
    try:
        snap = json.loads(raw) if raw else None
    except ValueError:
        snap = None
    return StoredState(path=path, snapshot=snap, events=events, opt_out=kv.get("opt_out") == "1",
                       ven_id=kv.get("ven_id") or None, queue_depth=int(depth or 0),
                       oldest_queued=datetime.fromtimestamp(oldest, timezone.utc) if oldest is not None else None)


def running(state: StoredState, now: datetime) -> tuple[bool, str]:
    """(is a gateway writing this state now?, one phrase saying why we think so)."""
    snap = state.snapshot
    if snap is None:
        return False, "never wrote a status snapshot (not running, or an older version)"
    written = _dt(snap.get("written_at"))
    age = (now - written).total_seconds() if written else float("inf")
    if not snap.get("running", False):
        return False, f"stopped at {snap.get('written_at')}"
    period = float(snap.get("snapshot_seconds") or snapshot.SNAPSHOT_SECONDS)
    if age > STALE_SNAPSHOTS * period:
        return False, f"no snapshot for {age:.0f} s (last {snap.get('written_at')}): stopped without a clean " \
                      "shutdown, or stuck"
    return True, f"running (pid {snap.get('pid')}, version {snap.get('version')})"


def as_of(state: StoredState, now: datetime) -> datetime:
    """The moment every figure of the answer is from: the snapshot's, else (no snapshot) now."""
    written = _dt((state.snapshot or {}).get("written_at"))
    return written if written is not None and written < now else now


def _queue(state: StoredState) -> tuple[int, Optional[datetime]]:
    """The report queue as of the answer's moment: the snapshot's figures when it has them."""
    snap = state.snapshot
    if snap is not None and "queue_depth" in snap:
        return int(snap.get("queue_depth") or 0), _dt(snap.get("oldest_queued"))
    return state.queue_depth, state.oldest_queued


def judge(state: StoredState, now: datetime) -> tuple[Health, str]:
    snap = state.snapshot or {}
    alive, why = running(state, now)
    period = snap.get("report_period_s")
    facts = HealthFacts(
        registered=bool(snap.get("registered")),
        last_contact=_dt(snap.get("last_contact")),
        poll_period=timedelta(seconds=float(snap.get("poll_period_s") or 10.0)),
        meter_failures=int(snap.get("meter_failures") or 0),
        oldest_queued=_queue(state)[1],
        report_period=timedelta(seconds=float(period)) if period else None,
        storage_ok=bool(snap.get("storage_ok", True)),
        running=alive,
    )
    # Every fact is as of the snapshot (the gateway rewrites it within a second of a change and at
    # the instant time alone changes the verdict; a stopped one was as it says at its stop): judge
    # them at its time. Whether the snapshot is fresh is the "running" fact, judged at ``now``.
    return verdict(facts, as_of(state, now)), why


def _event_rows(state: StoredState, at: datetime) -> list[dict[str, Any]]:
    """The events as of ``at``: the snapshot's rows (the gateway's own evaluation at that instant),
    else the stored events evaluated at ``at`` (a snapshot from before issue 18 has no rows)."""
    rows = (state.snapshot or {}).get("events")
    if isinstance(rows, list):
        return rows
    parsed: list[Event] = []
    damaged: list[dict[str, Any]] = []
    for data in state.events:
        try:
            parsed.append(event_from_dict(data))
        except (ValueError, KeyError, TypeError):
            damaged.append({"event_id": str(data.get("event_id")), "status": "damaged record"})
    return snapshot.event_rows(parsed, at) + damaged


def as_dict(state: StoredState, now: datetime) -> dict[str, Any]:
    """Everything --status knows, JSON-ready (the --json output), all as of one moment (``as_of``)."""
    health, why = judge(state, now)
    snap = state.snapshot or {}
    at = as_of(state, now)
    depth, oldest = _queue(state)
    return {
        "health": health.word,
        "reasons": list(health.reasons),
        "gateway": why,
        "running": running(state, now)[0],
        "state_file": str(state.path),
        "checked_at": now.isoformat(),
        # The moment every figure below is from, and how old it is when asked.
        "as_of": at.isoformat(),
        "snapshot_age_s": round((now - at).total_seconds(), 3) if state.snapshot is not None else None,
        "registration": {"ven_name": snap.get("ven_name"), "ven_id": snap.get("ven_id") or state.ven_id,
                         "vtn_url": snap.get("vtn_url"), "registered": bool(snap.get("registered")),
                         "last_contact": snap.get("last_contact"), "poll_period_s": snap.get("poll_period_s")},
        "reports": {"queue_depth": depth, "oldest_queued": oldest.isoformat() if oldest else None,
                    "last_delivery": snap.get("last_delivery"), "reports_sent": snap.get("reports_sent")},
        "meter": {"point": snap.get("meter"), "last_value": snap.get("meter_last_value"),
                  "unit": snap.get("meter_unit"), "last_read": snap.get("meter_last_read"),
                  "failures": snap.get("meter_failures"), "last_error": snap.get("meter_last_error")},
        "opt_out": bool(snap["opt_out"]) if "opt_out" in snap else state.opt_out,
        "level": snap.get("level"),
        "event_status": snap.get("event_status"),
        "active_event": snap.get("active_event"),
        "events": _event_rows(state, at),
    }


def _moment(info: dict[str, Any]) -> str:
    """The "as of" line: when the figures are from, how old, and how fresh the gateway keeps them."""
    at = _dt(info["as_of"])
    assert at is not None
    age = info.get("snapshot_age_s")
    if age is None:
        return f"{at:%Y-%m-%d %H:%M:%S}Z (no status snapshot: events from the state file at this moment)"
    keeps = "rewritten within 1 s of a change, at least every 10 s" if info.get("running") else \
        "the gateway's last snapshot"
    return f"{at:%Y-%m-%d %H:%M:%S.%f}"[:-5] + f"Z (snapshot {age:.1f} s old; {keeps})"


def _ago(text: Optional[str], now: datetime) -> str:
    when = _dt(text)
    if when is None:
        return "never"
    return f"{when:%Y-%m-%d %H:%M:%S}Z ({(now - when).total_seconds():.0f} s ago)"


def as_text(info: dict[str, Any], now: datetime) -> list[str]:
    """The lines --status prints for a person."""
    reg, rep, met = info["registration"], info["reports"], info["meter"]
    lines = [f"gateway: {info['health']}" + (f": {'; '.join(info['reasons'])}" if info["reasons"] else ""),
             f"  process       {info['gateway']}",
             f"  state         {info['state_file']}",
             f"  as of         {_moment(info)}"]
    registered = f"registered as {reg['ven_id']}" if reg["registered"] else \
        f"not registered (last venID {reg['ven_id'] or 'none'})"
    lines.append(f"  VTN           {registered} with {reg['vtn_url'] or '?'}")
    lines.append(f"  last contact  {_ago(reg['last_contact'], now)}; polls every "
                 f"{reg['poll_period_s'] if reg['poll_period_s'] is not None else '?'} s")
    oldest = f", oldest {_ago(rep['oldest_queued'], now)}" if rep["oldest_queued"] else ""
    lines.append(f"  report queue  {rep['queue_depth']} sample(s){oldest}")
    lines.append(f"  last report   {_ago(rep['last_delivery'], now)}")
    value = "no good read yet" if met["last_value"] is None else \
        f"{met['last_value']:g} {met['unit'] or ''} at {_ago(met['last_read'], now)}".replace("  ", " ")
    failing = f"; {met['failures']} failed read(s) in a row: {met['last_error']}" if met["failures"] else ""
    lines.append(f"  meter         {met['point'] or '?'}: {value}{failing}")
    level, status = info["level"], info.get("event_status")
    shown = f"{level:g}" if isinstance(level, (int, float)) else "?"
    if status:
        shown += f" (event status {status}" + (f", event {info['active_event']})" if info.get("active_event")
                                              else ")")
    lines.append(f"  level         {shown}")
    lines.append(f"  opt state     {'opted out (ADR-Opt-Out active)' if info['opt_out'] else 'opted in'}")
    events = info["events"]
    lines.append(f"  events        {len(events)} stored" + (":" if events else ""))
    for e in events:
        if "levels" not in e:
            lines.append(f"    {e['event_id']}  {e['status']}")
            continue
        levels = ", ".join(f"{v:g}" for v in e["levels"])
        lines.append(f"    {e['event_id']}  {e['status']:<9} {e['start']} .. {e['end'] or 'open end'}  "
                     f"levels {levels}  {e['opt']}" + ("  (test event)" if e["test_event"] else ""))
    return lines


def emit(text: str) -> bool:
    """Print the answer; False when the reader went away (``--status --json | head -1``).

    Why not let the error surface: a reader that stops after the first line is a normal use in a
    pipe, not a failure of --status; the verdict (the exit code) does not depend on how much of the
    text was read. stdout is pointed at /dev/null afterwards, so that Python's flush at exit does not
    fail a second time ("Exception ignored ... BrokenPipeError")."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False


def run(directory: str, as_json: bool, ledger: Ledger = EVERYTHING_OWED) -> int:
    """--status from the command line: print the answer, return the exit code."""
    code, text = main(directory, as_json, ledger=ledger)
    emit(text)
    return code


def main(directory: str, as_json: bool, now: Optional[datetime] = None,
         ledger: Ledger = EVERYTHING_OWED) -> tuple[int, str]:
    """(exit code, text to print) for --status."""
    now = now or datetime.now(timezone.utc)
    try:
        state = read_state(directory, ledger)
    except StatusError as exc:
        if as_json:
            return EXIT_DEGRADED, json.dumps({"health": "degraded", "reasons": [str(exc)], "running": False})
        return EXIT_DEGRADED, f"gateway: degraded: {exc}"
    info = as_dict(state, now)
    code = EXIT_HEALTHY if info["health"] == "healthy" else EXIT_DEGRADED
    return code, json.dumps(info, indent=2) if as_json else "\n".join(as_text(info, now))

"""``--status``: how the gateway is, read from its state directory (read-only, safe beside it).

The running gateway keeps its events, opt-out state and undelivered samples in the sqlite store and
rewrites a status snapshot there every few seconds (snapshot.py). This module opens that file
read-only (sqlite ``mode=ro``: it never writes, never locks the gateway out), judges the facts with
the shared health rule (health.py) and prints them for a person, or as JSON for scripts.

Exit codes: 0 healthy, 1 degraded (or not running), 2 for a config error (cli.py).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from adrgw.ops import snapshot
from adrgw.core.health import Health, HealthFacts, verdict
from adrgw.core.schedule import event_from_dict
from adrgw.openadr.report_store import OWED_FROM_SQL
from adrgw.openadr3.ledger import OWED_FROM_SQL as OWED_FROM_SQL_31
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


def read_state(directory: str) -> StoredState:
    """Read the store in ``directory`` without writing anything; StatusError when there is none."""
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
        # Undelivered: what some report still owes the VTN (store.OWED_FROM_SQL); a store from before
        # the report service has no request tables, and every sample in it is undelivered.
        owed = f" WHERE ts >= ({OWED_FROM_SQL})" if {"report_requests", "report_delivered"} <= tables else ""
        if "oa3_report_plans" in tables:  # an OpenADR 3.1 gateway's ledger (adrgw/openadr3/ledger.py)
            owed = f" WHERE ts >= ({OWED_FROM_SQL_31})"
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
    return True, f"running (pid {snap.get('pid')}, version {snap.get('version')}, snapshot {age:.0f} s old)"


def judge(state: StoredState, now: datetime) -> tuple[Health, str]:
    snap = state.snapshot or {}
    alive, why = running(state, now)
    period = snap.get("report_period_s")
    facts = HealthFacts(
        registered=bool(snap.get("registered")),
        last_contact=_dt(snap.get("last_contact")),
        poll_period=timedelta(seconds=float(snap.get("poll_period_s") or 10.0)),
        meter_failures=int(snap.get("meter_failures") or 0),
        oldest_queued=state.oldest_queued,
        report_period=timedelta(seconds=float(period)) if period else None,
        storage_ok=bool(snap.get("storage_ok", True)),
        running=alive,
    )
    # The VTN and meter facts are as of the snapshot (the gateway may have polled since; a stopped one
    # was as it says at its stop): judge them at its time. Whether the snapshot is fresh is the
    # "running" fact, judged at ``now``.
    written = _dt(snap.get("written_at"))
    at = written if written is not None and written < now else now
    return verdict(facts, at), why


def _event_rows(state: StoredState, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for data in state.events:
        try:
            event = event_from_dict(data)
        except (ValueError, KeyError, TypeError):
            rows.append({"event_id": str(data.get("event_id")), "status": "damaged record"})
            continue
        rows.append({
            "event_id": event.event_id,
            "modification_number": int(event.revision.key[0]) if event.revision.key else 0,
            "status": event.status(now),
            "start": event.start.isoformat() if event.start else None,
            "end": event.end.isoformat() if event.end else None,
            "levels": [i.level for i in event.intervals],
            "opt": "optOut" if event.opted_out else "optIn",
            "signal": event.signal_name,
            "priority": event.priority,
            "test_event": event.test_event,
        })
    return sorted(rows, key=lambda r: r.get("start") or "")


def as_dict(state: StoredState, now: datetime) -> dict[str, Any]:
    """Everything --status knows, JSON-ready (the --json output)."""
    health, why = judge(state, now)
    snap = state.snapshot or {}
    return {
        "health": health.word,
        "reasons": list(health.reasons),
        "gateway": why,
        "running": running(state, now)[0],
        "state_file": str(state.path),
        "checked_at": now.isoformat(),
        "registration": {"ven_name": snap.get("ven_name"), "ven_id": snap.get("ven_id") or state.ven_id,
                         "vtn_url": snap.get("vtn_url"), "registered": bool(snap.get("registered")),
                         "last_contact": snap.get("last_contact"), "poll_period_s": snap.get("poll_period_s")},
        "reports": {"queue_depth": state.queue_depth,
                    "oldest_queued": state.oldest_queued.isoformat() if state.oldest_queued else None,
                    "last_delivery": snap.get("last_delivery"), "reports_sent": snap.get("reports_sent")},
        "meter": {"point": snap.get("meter"), "last_value": snap.get("meter_last_value"),
                  "unit": snap.get("meter_unit"), "last_read": snap.get("meter_last_read"),
                  "failures": snap.get("meter_failures"), "last_error": snap.get("meter_last_error")},
        "opt_out": state.opt_out,
        "level": snap.get("level"),
        "active_event": snap.get("active_event"),
        "events": _event_rows(state, now),
    }


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
             f"  state         {info['state_file']}"]
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
    level = info["level"]
    lines.append(f"  level         {level:g}" if isinstance(level, (int, float)) else "  level         ?")
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


def main(directory: str, as_json: bool, now: Optional[datetime] = None) -> tuple[int, str]:
    """(exit code, text to print) for --status."""
    now = now or datetime.now(timezone.utc)
    try:
        state = read_state(directory)
    except StatusError as exc:
        if as_json:
            return EXIT_DEGRADED, json.dumps({"health": "degraded", "reasons": [str(exc)], "running": False})
        return EXIT_DEGRADED, f"gateway: degraded: {exc}"
    info = as_dict(state, now)
    code = EXIT_HEALTHY if info["health"] == "healthy" else EXIT_DEGRADED
    return code, json.dumps(info, indent=2) if as_json else "\n".join(as_text(info, now))

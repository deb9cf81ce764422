"""The OpenADR 3.1 adapter's durable report bookkeeping, beside the samples in the state store.

One row per report plan (an event's reportDescriptor asking for USAGE): its schedule (JSON), the
report object the VTN created for it (once a POST was answered), how many of its reports the VTN
accepted and the cursor (every sample before it was in a report the VTN accepted). ``attempted``
is set before the first POST goes out, so a restart after a kill -9 between the POST and its answer
looks for that report (by reportName) instead of creating a second one. The sample queue's
``LEDGER`` says which samples are still owed: from the oldest cursor of a running plan on.
Plain functions on a connection, run with Store.call: each is one transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Optional

from adrgw.persist.samples import Ledger

SCHEMA = """
CREATE TABLE IF NOT EXISTS oa3_report_plans (
    plan_id TEXT PRIMARY KEY,        -- eventID/descriptor index
    body TEXT NOT NULL,              -- reports.Plan.to_json()
    report_id TEXT,                  -- the VTN's report object, once a POST was answered
    accepted INTEGER NOT NULL DEFAULT 0,  -- reports of the plan the VTN accepted
    cursor REAL NOT NULL,            -- samples before it were in an accepted report
    attempted INTEGER NOT NULL DEFAULT 0, -- a POST went out (its answer may be lost)
    done INTEGER NOT NULL DEFAULT 0
);
"""

# Samples from the oldest cursor of a running plan on are owed (1e300: nothing is owed).
OWED_FROM_SQL = "SELECT COALESCE(MIN(cursor), 1e300) FROM oa3_report_plans WHERE done = 0"

LEDGER = Ledger(SCHEMA, OWED_FROM_SQL, ("oa3_report_plans",))

Row = tuple[str, str, Optional[str], int, float, int, int]


def load(db: sqlite3.Connection) -> list[Row]:
    db.executescript(SCHEMA)
    return db.execute("SELECT plan_id, body, report_id, accepted, cursor, attempted, done FROM oa3_report_plans "
                      "ORDER BY plan_id").fetchall()


def upsert(db: sqlite3.Connection, plan_id: str, body: str, cursor: float) -> None:
    """A new plan, or a new schedule for a known one (its report, count and cursor stay)."""
    with db:
        db.execute("INSERT INTO oa3_report_plans (plan_id, body, cursor) VALUES (?, ?, ?) "
                   "ON CONFLICT (plan_id) DO UPDATE SET body = excluded.body WHERE done = 0", (plan_id, body, cursor))


def mark_attempted(db: sqlite3.Connection, plan_id: str) -> None:
    with db:
        db.execute("UPDATE oa3_report_plans SET attempted = 1 WHERE plan_id = ?", (plan_id,))


def accept(db: sqlite3.Connection, plan_id: str, report_id: str, accepted: int, cursor: float, done: bool) -> None:
    """The VTN accepted report number ``accepted - 1`` of the plan: everything before ``cursor`` is delivered."""
    with db:
        db.execute("UPDATE oa3_report_plans SET report_id = ?, accepted = ?, cursor = MAX(cursor, ?), done = ? "
                   "WHERE plan_id = ?", (report_id, accepted, cursor, 1 if done else 0, plan_id))


def finish(db: sqlite3.Connection, plan_ids: list[str]) -> None:
    with db:
        db.executemany("UPDATE oa3_report_plans SET done = 1 WHERE plan_id = ?", [(p,) for p in plan_ids])


def prune_samples(db: sqlite3.Connection, keep_after: float) -> int:
    """Delete samples older than ``keep_after`` that no running plan may still send (a PUT carries
    everything from the plan's start, so a running plan keeps its whole span)."""
    with db:
        starts = [s for (s,) in db.execute("SELECT json_extract(body, '$.lo') FROM oa3_report_plans WHERE done = 0")
                  if s is not None]
        owed = db.execute(OWED_FROM_SQL).fetchone()[0]
        limit = min([keep_after, owed, *starts])
        removed = db.execute("DELETE FROM samples WHERE ts < ?", (limit,)).rowcount
        # A finished plan is kept while its event may still be listed (so it is not planned again).
        db.execute("DELETE FROM oa3_report_plans WHERE done = 1 AND json_extract(body, '$.hi') < ?", (keep_after,))
        return int(removed)

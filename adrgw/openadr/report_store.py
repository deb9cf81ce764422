"""The OpenADR 2.0b report service's durable state: report requests, cursors, delivered watermarks.

Moved out of the generic store (adrgw/persist/store.py): which samples the VTN still owes is 2.0b
report bookkeeping. The tables are unchanged (state files of earlier releases load as they are);
they live in the same sqlite file as the samples, so ``OWED_FROM_SQL`` can say which samples are
still owed (the sample queue's ``LEDGER``). Plain functions on a connection, run with Store.call:
each is one transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Optional

from adrgw.persist.samples import Ledger

REPORT_SCHEMA = """
-- the report service (adrgw/reports.py): running report requests and what each has delivered
CREATE TABLE IF NOT EXISTS report_requests (
    request_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,               -- usage, history, status
    body TEXT NOT NULL,               -- ReportRequest.to_json()
    cursor REAL                       -- instants before it were acknowledged; NULL: from the oldest sample
);
CREATE TABLE IF NOT EXISTS report_delivered (
    specifier_id TEXT PRIMARY KEY,    -- a TELEMETRY_USAGE specifier
    ts REAL NOT NULL                  -- everything before it was acknowledged by the VTN
);
"""

# The oldest instant telemetry still owes the VTN (epoch seconds; -1e300: everything is owed): the
# cursor of every running TELEMETRY_USAGE request, and the end of what TELEMETRY_USAGE last delivered
# (nothing delivered yet: everything). Samples from here on are "undelivered": the backlog bound counts
# them and they are never pruned; older ones are kept [state] history_hours, and HISTORY_USAGE
# requests are answered from what is kept (their cursors do not hold samples back: a history request
# reaching back a week must not make the backlog bound drop history).
OWED_FROM_SQL = """SELECT MIN(m) FROM (
    SELECT COALESCE(cursor, -1e300) AS m FROM report_requests WHERE kind = 'usage'
    UNION ALL SELECT COALESCE((SELECT MIN(ts) FROM report_delivered), -1e300))"""

# The sample queue's view of this bookkeeping (adrgw/persist/samples.py).
LEDGER = Ledger(REPORT_SCHEMA, OWED_FROM_SQL, ("report_requests", "report_delivered"))


def create_tables(db: sqlite3.Connection) -> None:
    """Create the report tables if this state file does not have them yet."""
    db.executescript(REPORT_SCHEMA)


def load_report_requests(db: sqlite3.Connection) -> tuple[list[tuple[str, Optional[float]]], dict[str, float]]:
    """(request body JSON, cursor) of every running request, and the delivered watermarks."""
    rows = db.execute("SELECT body, cursor FROM report_requests ORDER BY request_id").fetchall()
    marks = dict(db.execute("SELECT specifier_id, ts FROM report_delivered").fetchall())
    return [(body, cursor) for body, cursor in rows], marks


def save_report_requests(db: sqlite3.Connection, removed: list[str],
                         added: list[tuple[str, str, str, Optional[float]]]) -> None:
    """Remove request ids and add (request_id, kind, body, cursor) rows in one transaction."""
    with db:
        db.executemany("DELETE FROM report_requests WHERE request_id = ?", [(r,) for r in removed])
        db.executemany("INSERT OR REPLACE INTO report_requests (request_id, kind, body, cursor) VALUES (?, ?, ?, ?)",
                       added)


def commit_report_cursor(db: sqlite3.Connection, request_id: str, cursor: float,
                         delivered_specifier: Optional[str], finished: bool) -> None:
    """Record that the VTN acknowledged everything of ``request_id`` before ``cursor`` (and, for a
    usage report, raise its specifier's watermark); ``finished`` removes the request."""
    with db:
        if finished:
            db.execute("DELETE FROM report_requests WHERE request_id = ?", (request_id,))
        else:
            db.execute("UPDATE report_requests SET cursor = ? WHERE request_id = ?", (cursor, request_id))
        if delivered_specifier is not None:
            db.execute("INSERT INTO report_delivered (specifier_id, ts) VALUES (?, ?) ON CONFLICT (specifier_id) "
                       "DO UPDATE SET ts = MAX(ts, excluded.ts)", (delivered_specifier, cursor))


def rewind_report_cursors(db: sqlite3.Connection, cursors: list[tuple[str, float]], marks: dict[str, float]) -> None:
    """Move cursors and delivered watermarks back (a backward wall-clock step: samples are stamped on
    the new timeline, before them); commit_report_cursor only ever moves them forward."""
    with db:
        db.executemany("UPDATE report_requests SET cursor = ? WHERE request_id = ?", [(c, r) for r, c in cursors])
        db.executemany("UPDATE report_delivered SET ts = MIN(ts, ?) WHERE specifier_id = ?",
                       [(ts, spec) for spec, ts in marks.items()])


def prune_samples(db: sqlite3.Connection, keep_after: float) -> int:
    """Delete samples older than ``keep_after`` that no report owes any more; how many."""
    with db:
        owed = db.execute(OWED_FROM_SQL).fetchone()[0]
        return db.execute("DELETE FROM samples WHERE ts < ?", (min(owed, keep_after),)).rowcount

"""Persistence in ``[state] directory``: one sqlite3 file, used from one worker thread.

sqlite3 is synchronous; every call runs on a dedicated single-thread executor so the event loop never
waits on the disk (DESIGN.md: never block the loop). Writes are committed with synchronous=FULL in WAL
mode: a sample that ``put`` returned for survives kill -9 and power loss.

A file that sqlite cannot open or that fails its integrity check is moved aside (``*.corrupt-<time>``)
with one clear log line, and the gateway starts with an empty store instead of crashing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

log = logging.getLogger("adrgw.store")

T = TypeVar("T")
FILENAME = "gateway.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL DEFAULT '',  -- '' for [meter], NAME for [report.NAME]
    ts REAL NOT NULL,                 -- cadence instant, epoch seconds UTC
    value REAL NOT NULL,
    UNIQUE (stream, ts)
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_ts ON samples (ts);
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


class StoreError(Exception):
    """The state directory cannot be used at all (not creatable, not writable)."""


class Store:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="adrgw-store")
        self._db: Optional[sqlite3.Connection] = None
        self._closed = False

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the store thread."""
        if self._closed:
            raise StoreError("the state store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, args)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._db is not None, "store not open"
        return fn(self._db, *args)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        ok = db.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            db.close()
            raise sqlite3.DatabaseError(f"integrity check failed: {ok[0] if ok else 'no answer'}")
        columns = [row[1] for row in db.execute("PRAGMA table_info(samples)")]
        if columns and "stream" not in columns:
            # A state file from before [report.NAME]: keep its samples as the [meter] stream.
            db.executescript("""
                BEGIN;
                ALTER TABLE samples RENAME TO samples_v1;
                CREATE TABLE samples (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL DEFAULT '',
                                      ts REAL NOT NULL, value REAL NOT NULL, UNIQUE (stream, ts));
                INSERT INTO samples (id, stream, ts, value) SELECT id, '', ts, value FROM samples_v1;
                DROP TABLE samples_v1;
                COMMIT;""")
        db.executescript(SCHEMA)
        return db

    def _open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"[state] directory {str(self.directory)!r}: {exc.strerror or exc}") from None
        if not os.access(self.directory, os.W_OK):
            raise StoreError(f"[state] directory {str(self.directory)!r} is not writable")
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{FILENAME}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            log.error("state file %s is unreadable (%s): moved aside to %s, starting with an empty store",
                      self.path, exc, aside.name)
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(self.path) + suffix)
                if part.exists():
                    part.replace(Path(str(aside) + suffix))
            self._db = self._connect()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()

        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await loop.run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=False)

    # -- key/value (registration, opt state, ...) --------------------------------------------------

    async def get(self, key: str) -> Optional[str]:
        def _get(db: sqlite3.Connection) -> Optional[str]:
            row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            return row[0] if row else None

        return await self.call(_get)

    async def delete(self, key: str) -> None:
        await self.call(lambda db: db.execute("DELETE FROM kv WHERE key = ?", (key,)))

    async def items(self, prefix: str) -> list[tuple[str, str]]:
        def _items(db: sqlite3.Connection) -> list[tuple[str, str]]:
            return db.execute("SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
                              (len(prefix), prefix)).fetchall()

        return await self.call(_items)

    async def set(self, key: str, value: str) -> None:
        await self.call(lambda db: db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value)))


# -- report requests and cursors (the report service's durable state) ----------------------------
# Plain functions on a connection, run with Store.call: each is one transaction.


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


def prune_samples(db: sqlite3.Connection, keep_after: float) -> int:
    """Delete samples older than ``keep_after`` that no report owes any more; how many."""
    with db:
        owed = db.execute(OWED_FROM_SQL).fetchone()[0]
        return db.execute("DELETE FROM samples WHERE ts < ?", (min(owed, keep_after),)).rowcount

"""Persistence in ``[state] directory``: one sqlite3 file, used from one worker thread.

sqlite3 is synchronous; every call runs on a dedicated single-thread executor so the event loop never
waits on the disk (the loop also serves BACnet and the VTN: it must never block). Writes are committed with synchronous=FULL in WAL
mode: a sample that ``put`` returned for survives kill -9 and power loss.

A file that sqlite cannot open or that fails its integrity check is moved aside (``*.corrupt-<time>``)
with one clear log line, and the gateway starts with an empty store instead of crashing.

Storage faults (disk full, I/O error, the directory removed or read-only) never stop the gateway:
the BACnet device, the level and the schedule live in memory and only *persist* here. A fault opens
an *episode* (one ERROR line with the cause, ``failing`` set, ADR-Gateway-Status storage-failing);
``check()``, called every few seconds, retries and closes the episode by itself when the cause goes
away. Three mechanisms make that possible:

* read-only or unusable directory at start: the store works from an in-memory database (loaded from
  the existing file when it can be read) and copies it into the file once the directory is writable;
* directory or file removed while running: sqlite keeps writing the unlinked file, so ``check()``
  notices the missing path, recreates the directory and copies the open database into a new file
  (sqlite's online backup): the active event and the queued samples survive a later kill -9;
* disk full: a small reserve file (``gateway.reserve``) is kept beside the database and released to
  commit a critical write (an acknowledged report's deletion) so that an ack that the VTN has
  already taken is not resent after a restart; it is recreated once space is back.
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
RESERVE_NAME = "gateway.reserve"
# Enough free pages for a few acknowledgement commits (each deletes rows: a few WAL pages of 4 kB).
RESERVE_BYTES = 256 * 1024
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
"""
# The protocol adapters keep their own tables in the same file (the OpenADR 2.0b report requests
# and cursors: adrgw/openadr/report_store.py), created by their own code.


class StoreError(Exception):
    """The state store cannot be used (closed, or a storage fault: see StoreFault)."""


class StoreFault(StoreError):
    """A write or read failed because of the storage (disk full, I/O error, read-only, removed)."""


# sqlite errors that are the storage's fault; IntegrityError/ProgrammingError are our bugs, not faults.
_FAULTS = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)
_NOT_FAULTS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


def _is_disk_full(exc: BaseException) -> bool:
    return "full" in str(exc).lower() or (isinstance(exc, OSError) and exc.errno == 28)


class Store:
    def __init__(self, directory: str | os.PathLike[str], on_change: Callable[[], None] = lambda: None) -> None:
        """``on_change``: called when a storage fault episode starts or ends (the status snapshot
        follows within a second: ops/snapshot.py)."""
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self.reserve_path = self.directory / RESERVE_NAME
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="adrgw-store")
        self._db: Optional[sqlite3.Connection] = None
        self._closed = False
        self._in_memory = False  # working from memory: the file could not be opened
        self._inode: Optional[int] = None  # of the open file, to notice it was removed or replaced
        self.failing: Optional[str] = None  # the cause while a storage fault episode lasts
        self._failing_since: Optional[float] = None
        self.failed_writes = 0  # during the current episode
        self.episodes = 0
        self._reserve_used = False
        self._healthy = asyncio.Event()
        self._healthy.set()
        self.on_change = on_change

    @property
    def healthy(self) -> bool:
        return self.failing is None

    async def wait_healthy(self) -> None:
        await self._healthy.wait()

    async def call(self, fn: Callable[..., T], *args: Any, critical: bool = False) -> T:
        """Run ``fn(connection, *args)`` on the store thread.

        A storage failure raises StoreFault and opens a fault episode. ``critical``: on a full disk,
        release the reserve file and try once more (for commits that must not be lost).
        """
        if self._closed:
            raise StoreError("the state store is closed")
        loop = asyncio.get_running_loop()
        try:
            # Shielded: a caller cancelled at shutdown (the VTN link saving a distribution) must not
            # drop its write from the executor's queue; close() runs after it, in order.
            result = await asyncio.shield(loop.run_in_executor(self._executor, self._run, fn, args, critical))
        except _NOT_FAULTS:
            raise
        except _FAULTS as exc:
            self._fault(f"{type(exc).__name__}: {exc}")
            raise StoreFault(str(exc)) from exc
        if self._reserve_used:
            self._reserve_used = False
            self._fault("disk full (the reserve file was used for an acknowledgement)")
        return result

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...], critical: bool = False) -> T:
        assert self._db is not None, "store not open"
        try:
            return fn(self._db, *args)
        except _NOT_FAULTS:
            raise
        except _FAULTS as exc:
            if not (critical and _is_disk_full(exc) and self._release_reserve()):
                raise
            log.warning("disk full: released the reserve file to commit an acknowledgement")
            self._reserve_used = True  # an episode even though this commit succeeds
            return fn(self._db, *args)

    def _release_reserve(self) -> bool:
        try:
            self.reserve_path.unlink()
            return True
        except OSError:
            return False

    def _fault(self, cause: str) -> None:
        self.failed_writes += 1
        if self.failing is not None:
            return
        self.failing = cause
        self._failing_since = time.monotonic()
        self.episodes += 1
        self._healthy.clear()
        self.on_change()
        log.error("state storage failing (%s): %s; the gateway keeps working from memory and retries "
                  "every few seconds", self.directory, cause)

    def _recovered(self) -> None:
        if self.failing is None:
            return
        took = time.monotonic() - (self._failing_since or time.monotonic())
        log.warning("state storage works again after %.0f s (%d failed write(s) in this episode)",
                    took, self.failed_writes)
        self.failing = None
        self.failed_writes = 0
        self._healthy.set()
        self.on_change()

    async def open(self) -> None:
        """Open the state file; on a storage fault work from memory (never raises for the disk)."""
        loop = asyncio.get_running_loop()
        cause = await loop.run_in_executor(self._executor, self._open)
        if cause is not None:
            self._fault(cause)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            ok = db.execute("PRAGMA quick_check").fetchone()
            if not ok or ok[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {ok[0] if ok else 'no answer'}")
            _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> Optional[str]:
        """Open the file (moving a corrupt one aside); on a storage fault open memory and return the cause."""
        try:
            self._db = self._open_file()
            return None
        except (OSError, sqlite3.OperationalError, StoreError) as exc:
            cause = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
        self._db = self._memory_copy_of_file()
        self._in_memory = True
        return cause

    def _open_file(self) -> sqlite3.Connection:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"[state] directory {str(self.directory)!r}: {exc.strerror or exc}") from None
        if not os.access(self.directory, os.W_OK) or _read_only_mount(self.directory):
            raise StoreError(f"[state] directory {str(self.directory)!r} is not writable")
        try:
            db = self._connect()
        except sqlite3.OperationalError:
            raise  # the disk's fault (full, I/O error): not a reason to move the file aside
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{FILENAME}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            log.error("state file %s is unreadable (%s): moved aside to %s, starting with an empty store",
                      self.path, exc, aside.name)
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(self.path) + suffix)
                if part.exists():
                    part.replace(Path(str(aside) + suffix))
            db = self._connect()
        self._inode = os.stat(self.path).st_ino
        self._make_reserve()
        return db

    def _memory_copy_of_file(self) -> sqlite3.Connection:
        """An in-memory database holding what the state file holds (if it can be read at all)."""
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if self.path.exists():
            for uri in (f"file:{self.path}?mode=ro", f"file:{self.path}?immutable=1"):
                try:
                    source = sqlite3.connect(uri, uri=True, check_same_thread=False)
                    try:
                        source.backup(memory)
                    finally:
                        source.close()
                    log.warning("loaded the state file %s read-only into memory", self.path)
                    break
                except sqlite3.Error:
                    continue
        _migrate(memory)
        return memory

    def _make_reserve(self) -> bool:
        """Keep the reserve file; False when there is no room for it (the disk is still full)."""
        if self.reserve_path.exists():
            return True
        try:
            with open(self.reserve_path, "wb") as f:
                f.write(b"\0" * RESERVE_BYTES)
                f.flush()
                os.fsync(f.fileno())
            return True
        except OSError:
            try:
                self.reserve_path.unlink()
            except OSError:
                pass
            return False

    async def check(self) -> bool:
        """Notice faults the writes cannot see (file removed) and recover from any fault whose cause
        went away. True when the store is healthy afterwards. Call every few seconds."""
        if self._closed or self._db is None:
            return False
        loop = asyncio.get_running_loop()
        try:
            cause = await loop.run_in_executor(self._executor, self._check)
        except Exception as exc:  # noqa: BLE001 - the check itself must never kill its caller
            cause = f"{type(exc).__name__}: {exc}"
        if cause is None:
            self._recovered()
            return True
        self._fault(cause)
        return False

    def _check(self) -> Optional[str]:
        """On the store thread: None when healthy (after repairing what can be repaired), else the cause."""
        if self._in_memory:
            return self._move_to_file("the state directory was not usable")
        try:
            inode = os.stat(self.path).st_ino
        except OSError:
            inode = None
        if inode != self._inode:
            log.error("state file %s was removed or replaced while running: writing the gateway's state "
                      "into a new file", self.path)
            return self._move_to_file("the state file was removed")
        if _read_only_mount(self.directory):
            return f"[state] directory {str(self.directory)!r} is read-only"
        if self.failing is None:
            return None  # healthy: the writes themselves report the next fault (no probe writes)
        try:
            assert self._db is not None
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('store_probe', ?)",
                                 (str(time.time()),))
        except _NOT_FAULTS:
            raise
        except _FAULTS as exc:
            return f"{type(exc).__name__}: {exc}"
        if not self._make_reserve():
            return f"disk full: no room for the {RESERVE_BYTES // 1024} kB reserve file in {self.directory}"
        return None

    def _move_to_file(self, why: str) -> Optional[str]:
        """Copy the working database (memory, or a removed file still open) into a new state file."""
        assert self._db is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not os.access(self.directory, os.W_OK) or _read_only_mount(self.directory):
                return f"{why}; [state] directory {str(self.directory)!r} is not writable"
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(self.path) + suffix)
                if part.exists() and (self._in_memory or suffix):
                    # memory mode: the file's content was loaded at start (or it was unreadable).
                    part.replace(Path(str(self.path) + f".replaced-{time.strftime('%Y%m%dT%H%M%S')}{suffix}"))
            target = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5)
            try:
                self._db.backup(target)
                target.execute("PRAGMA journal_mode=WAL")
                target.execute("PRAGMA synchronous=FULL")
            except BaseException:
                target.close()
                raise
        except (OSError, sqlite3.Error) as exc:
            return f"{why}; cannot write a new state file: {type(exc).__name__}: {exc}"
        old, self._db = self._db, target
        old.close()
        self._in_memory = False
        self._inode = os.stat(self.path).st_ino
        self._make_reserve()
        log.warning("state written to %s: the events, registration and queued samples are on disk again",
                    self.path)
        return None

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


def _migrate(db: sqlite3.Connection) -> None:
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


def _read_only_mount(directory: Path) -> bool:
    """True on a read-only filesystem (root ignores permission bits, not ST_RDONLY)."""
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False

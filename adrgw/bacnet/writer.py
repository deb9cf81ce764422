"""Write-through: command the building's own points during events, and give them back afterwards.

One ``TargetWriter`` per ``[write.NAME]`` section, each with its own task, so a target that does not
answer is retried (capped backoff) without delaying the others or the gateway's points. At each level
change the target gets the mapped value at its configured priority, or is relinquished (NULL at that
priority) when the level has no mapping (0 outside events, after cancellation, while opted out).
Every write is confirmed by reading ``priorityArray[priority]`` back. Only the configured priority slot
is ever written.

What the gateway holds is remembered in the state store *before* it writes, so after a crash (kill -9)
the next start relinquishes every slot it may still hold; SIGTERM relinquishes too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Any, Optional

from adrgw.config.settings import WriteTarget
from adrgw.core.backoff import Backoff

log = logging.getLogger("adrgw.writer")

# Seconds one write or confirming read may take (the stack's APDU retries included).
WRITE_TIMEOUT = 3.0
RETRY_INITIAL, RETRY_MAX = 1.0, 60.0
# At shutdown all targets together get this long to be relinquished (inside the 5 s grace).
RELINQUISH_AT_STOP = 3.0
HELD_PREFIX = "write-held:"


class WriteError(Exception):
    pass


def _encode(target_kind: str, value: object) -> Any:
    from bacpypes3.basetypes import BinaryPV
    from bacpypes3.primitivedata import Null, Real, Unsigned

    if value is None:
        return Null(())
    if target_kind == "analog":
        return Real(float(value))  # type: ignore[arg-type]
    if target_kind == "binary":
        return BinaryPV(str(value))
    return Unsigned(int(value))  # type: ignore[call-overload]


def slot_value(priority_value: Any) -> Optional[object]:
    """A PriorityValue choice -> None for NULL (relinquished), else the plain value."""
    if priority_value is None or getattr(priority_value, "null", None) is not None:
        return None
    for name in ("real", "enumerated", "unsigned", "boolean", "integer", "double"):
        value = getattr(priority_value, name, None)
        if value is not None:
            return value
    return priority_value


def same(target_kind: str, wanted: object, got: object) -> bool:
    if wanted is None or got is None:
        return wanted is None and got is None
    if target_kind == "analog":
        return abs(float(wanted) - float(got)) <= 1e-4 * max(1.0, abs(float(wanted)))  # type: ignore[arg-type]
    if target_kind == "binary":
        return int(got) == (1 if wanted == "active" else 0)  # type: ignore[call-overload]
    return int(got) == int(wanted)  # type: ignore[call-overload]


class TargetWriter:
    def __init__(self, target: WriteTarget, app_getter: Any, store: Any) -> None:
        self.target = target
        self._app = app_getter
        self._store = store
        self.desired: Optional[object] = None  # None: relinquished
        # What the device confirmed we hold, boxed; (None,) = nothing held. A slot we do not hold is
        # never written, not even with NULL: it may be an operator's.
        self.applied: Optional[tuple[Optional[object]]] = (None,)
        self._changed = asyncio.Event()
        self.writes = 0  # confirmed writes
        self.failures = 0
        self.attempts = 0  # writes sent (confirmed or not), for /metrics
        # When the device last confirmed our slot (priorityArray read back), for the status page.
        self.confirmed_at: Optional[datetime] = None

    @property
    def key(self) -> str:
        return HELD_PREFIX + self.target.name

    def set_level(self, level: float) -> None:
        desired = self.target.value_for(level)
        if self.applied is not None and self.applied[0] == desired and desired == self.desired:
            return
        self.desired = desired
        self._changed.set()

    async def run(self) -> None:
        backoff = Backoff(RETRY_INITIAL, RETRY_MAX)
        while True:
            await self._changed.wait()
            self._changed.clear()
            wanted = self.desired
            try:
                await self.apply(wanted)
            except WriteError as exc:
                self.failures += 1
                delay = backoff.next()
                if self.failures == 1 or self.failures % 10 == 0:
                    log.warning("write %s (%s) failed (%d in a row): %s; retrying in %.1f s", self.target.name,
                                self.target, self.failures, exc, delay)
                try:
                    await asyncio.wait_for(self._changed.wait(), delay)  # a newer level goes first
                except asyncio.TimeoutError:
                    pass
                self._changed.set()
                continue
            if self.failures:
                log.info("write %s works again after %d failure(s)", self.target.name, self.failures)
            self.failures = 0
            backoff.reset()

    async def apply(self, wanted: Optional[object]) -> None:
        """Write ``wanted`` (None: relinquish) at the target's priority and confirm it."""
        t = self.target
        if wanted is not None:
            await self._remember(held=True)  # before writing: a crash right after still relinquishes
        self.attempts += 1
        await self.write_slot(t.address, t.object_type, t.instance, t.property_id, t.priority, t.kind, wanted)
        self.applied = (wanted,)
        self.writes += 1
        self.confirmed_at = datetime.now(timezone.utc)
        if wanted is None:
            await self._remember(held=False)

    async def write_slot(self, address: str, object_type: str, instance: int, prop: str, priority: int,
                         kind: str, wanted: Optional[object]) -> None:
        from bacpypes3.basetypes import PropertyIdentifier
        from bacpypes3.pdu import Address
        from bacpypes3.primitivedata import ObjectIdentifier

        app = self._app()
        may_initiate = getattr(app, "may_initiate", None)  # conformance.GatewayApplication (issue 13)
        if may_initiate is not None and not may_initiate():
            raise WriteError("not written: DeviceCommunicationControl has disabled initiation")
        addr, oid = Address(address), ObjectIdentifier(f"{object_type},{instance}")
        what = "relinquish" if wanted is None else f"<- {wanted}"
        # A retry of a failing target repeats the same attempt: only the first one is an INFO line
        # (the failures themselves are logged as warnings, rate-limited, in run()).
        log.log(logging.DEBUG if self.failures else logging.INFO, "write %s: %s %s %d %s @%d %s", self.target.name,
                address, object_type, instance, prop, priority, what)
        from adrgw.bacnet.device import bounded

        result = await bounded(app.write_property(addr, oid, PropertyIdentifier(prop), _encode(kind, wanted), None,
                                                  priority), WRITE_TIMEOUT, WriteError)
        if isinstance(result, str) and result.startswith("-"):
            raise WriteError(f"the stack could not encode the write ({result})")
        slot = await bounded(app.read_property(addr, oid, PropertyIdentifier("priority-array"), priority),
                             WRITE_TIMEOUT, WriteError)
        got = slot_value(slot)
        if not same(kind, wanted, got):
            raise WriteError(f"priorityArray[{priority}] reads {got!r} after writing {wanted!r}")
        log.info("write %s: confirmed priorityArray[%d] = %s", self.target.name, priority,
                 "NULL" if got is None else got)

    async def _remember(self, held: bool) -> None:
        t = self.target
        record = {"address": t.address, "object_type": t.object_type, "instance": t.instance,
                  "property": t.property_id, "priority": t.priority, "kind": t.kind}
        if self._store is None:
            return
        if held:
            await self._store.set(self.key, json.dumps(record))
        else:
            await self._store.delete(self.key)


class WriteThrough:
    """All targets: level changes in, confirmed writes out; relinquish at start (after a crash) and stop."""

    def __init__(self, targets: tuple[WriteTarget, ...], app_getter: Any, store: Any) -> None:
        self.writers = [TargetWriter(t, app_getter, store) for t in targets]
        self._store = store
        self._app = app_getter
        self._tasks: list[asyncio.Task[None]] = []
        self.level: Optional[float] = None

    async def start(self) -> None:
        """In the background: relinquish whatever a previous run may still hold (remembered in the
        store), then run the writers. Start-up (and READY) never waits on the building's devices."""
        self._tasks = [asyncio.create_task(self._start(), name="write-through")]

    async def _start(self) -> None:
        if self._store is not None:
            for key, text in await self._store.items(HELD_PREFIX):
                try:
                    held = json.loads(text)
                    probe = TargetWriter(WriteTarget(name=key[len(HELD_PREFIX):], address=held["address"],
                                                     object_type=held["object_type"], instance=held["instance"],
                                                     property_id=held["property"], priority=held["priority"]),
                                         self._app, self._store)
                    log.warning("write %s: relinquishing priority %d left from the previous run",
                                probe.target.name, probe.target.priority)
                    await probe.write_slot(held["address"], held["object_type"], held["instance"],
                                           held["property"], held["priority"], held["kind"], None)
                    await self._store.delete(key)
                except WriteError as exc:
                    log.error("write %s: could not relinquish the slot left from the previous run (%s); "
                              "will retry", key[len(HELD_PREFIX):], exc)
                    # the target's own writer retries: it starts out wanting NULL
                    for writer in self.writers:
                        if writer.key == key:
                            writer._changed.set()
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("damaged write record %s (%s): dropped", key, exc)
                    await self._store.delete(key)
        self._tasks += [asyncio.create_task(w.run(), name=f"write-{w.target.name}") for w in self.writers]

    def set_level(self, level: float) -> None:
        self.level = level
        for writer in self.writers:
            writer.set_level(level)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        held = [w for w in self.writers if (w.applied is not None and w.applied[0] is not None)
                or w.desired is not None]
        if not held:
            return

        async def relinquish(writer: TargetWriter) -> None:
            try:
                await writer.apply(None)
            except WriteError as exc:
                log.error("write %s: could not relinquish at shutdown (%s); the next start will", writer.target.name,
                          exc)

        await asyncio.wait([asyncio.create_task(relinquish(w)) for w in held], timeout=RELINQUISH_AT_STOP)

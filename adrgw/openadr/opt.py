"""Telling the VTN about the building's opt changes (ADR-Opt-Out): EiOpt, and re-sent event answers.

Two channels, both retried until the VTN answers:

* **EiOpt** (OpenADR 2.0b ``oadrCreateOpt`` / ``oadrCancelOpt``): ADR-Opt-Out going active sends one
  oadrCreateOpt per affected event (optType ``optOut``, optReason ``overrideStatus``: an operator
  override, the event's qualifiedEventID, eiTarget our venID; the schema allows one event per opt);
  an event that arrives while the opt-out stays active gets its own. Going inactive sends
  oadrCancelOpt for every opt created. The queue of messages and the opts in force are kept in the
  state store before anything is sent, so a restart or a VTN outage loses none of them; messages go
  out in order, each until the VTN answers it (oadrCreatedOpt / oadrCanceledOpt, or an
  oadrResponse). An answer with an error code ends the retries of that message (logged): the VTN
  has decided. Transport failures and HTTP errors (a VTN without an EiOpt endpoint answers 404)
  are retried with capped backoff.
* **oadrCreatedEvent** answers whose delivery failed or that changed (opt-out/in of held events):
  kept (in memory: the next distribution re-answers every event anyway) and sent again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Optional, Protocol, Sequence

from openleadr import utils

from adrgw.openadr.payloads import response_code as _response_code
from adrgw.core.backoff import Backoff
from adrgw.core.model import OptChange
from adrgw.openadr.errors import RETRY_INITIAL, VtnError, VtnProtocolError

log = logging.getLogger("adrgw.opt")

# State store key of the EiOpt queue and the opts in force.
STORE_KEY = "eiopt"
# Messages kept while the VTN does not answer: an opt-out and opt-in of one event every 5 minutes
# (2 messages) through a week of VTN outage (4032) stays below it. Past it the oldest message is
# dropped (logged, counted).
MAX_QUEUE = 10000
# OpenADR 2.0b optReason for an opt decided by the site's operator (ADR-Opt-Out written over BACnet).
OPT_REASON = "overrideStatus"


class KeyValueStore(Protocol):
    async def get(self, key: str) -> Optional[str]: ...

    async def set(self, key: str, value: str) -> None: ...


class Client(Protocol):
    """What of GatewayClient (ven.py) is used: its venID, message factory and bounded transport."""

    ven_id: Optional[str]

    def _create_message(self, message_type: str, **payload: Any) -> str: ...

    async def _perform_request(self, service: str, message: Any) -> tuple[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class OptMessage:
    """One oadrCreateOpt ('create') or oadrCancelOpt ('cancel') waiting for the VTN's answer."""

    kind: str
    opt_id: str
    event_id: str
    modification_number: int
    created: float  # epoch seconds: the opt's createdDateTime

    def name(self) -> str:
        return "oadrCreateOpt" if self.kind == "create" else "oadrCancelOpt"


class OptService:
    """EiOpt for ADR-Opt-Out, and re-sent oadrCreatedEvent answers (see the module docstring)."""

    def __init__(self, client: Client, registered: asyncio.Event, store: Optional[KeyValueStore],
                 retry_max: float) -> None:
        self.client = client
        self.registered = registered
        self.store = store
        self.retry_max = retry_max
        self.queue: list[OptMessage] = []
        self.in_force: dict[str, OptMessage] = {}  # event_id -> its oadrCreateOpt (until cancelled)
        self.dropped = 0
        self._pending = asyncio.Event()
        self._answers: dict[str, tuple[int, str]] = {}  # event_id -> (modification_number, opt)
        self._answers_pending = asyncio.Event()

    # -- state ------------------------------------------------------------------------------------

    async def restore(self) -> None:
        """Load the queue and the opts in force saved by the previous run."""
        if self.store is None:
            return
        try:
            raw = await self.store.get(STORE_KEY)
            if raw:
                data = json.loads(raw)
                self.queue = [OptMessage(**m) for m in data.get("queue", [])]
                self.in_force = {k: OptMessage(**m) for k, m in data.get("in_force", {}).items()}
        except (ValueError, TypeError, KeyError) as exc:
            log.error("stored EiOpt state is damaged (%s): starting without it", exc)
        except Exception as exc:  # noqa: BLE001 - the gateway runs without the disk
            log.error("could not read the EiOpt state: %s", exc)
        if self.queue:
            log.info("restored %d EiOpt message(s) not yet answered by the VTN", len(self.queue))
            self._pending.set()

    async def _save(self) -> None:
        if self.store is None:
            return
        data = {"queue": [asdict(m) for m in self.queue],
                "in_force": {k: asdict(m) for k, m in self.in_force.items()}}
        try:
            await self.store.set(STORE_KEY, json.dumps(data))
        except Exception as exc:  # noqa: BLE001
            log.error("could not save the EiOpt state: %s", exc)

    def _enqueue(self, message: OptMessage) -> None:
        self.queue.append(message)
        if len(self.queue) > MAX_QUEUE:
            lost = self.queue.pop(0)
            self.dropped += 1
            log.error("EiOpt queue full (%d): dropped the oldest message, %s %s for event %s (%d dropped so far)",
                      MAX_QUEUE, lost.name(), lost.opt_id, lost.event_id, self.dropped)

    # -- what the building did ------------------------------------------------------------------

    async def opted_out(self, events: list[tuple[str, int]]) -> None:
        """ADR-Opt-Out active: one oadrCreateOpt per event not already opted out by an opt."""
        now = datetime.now(timezone.utc).timestamp()
        added = 0
        for event_id, modification_number in events:
            if event_id in self.in_force:
                continue
            message = OptMessage("create", utils.generate_id(), event_id, int(modification_number), now)
            self.in_force[event_id] = message
            self._enqueue(message)
            added += 1
        if added:
            await self._save()
            self._pending.set()

    async def opted_in(self) -> None:
        """ADR-Opt-Out inactive: oadrCancelOpt for every opt in force."""
        if not self.in_force:
            return
        now = datetime.now(timezone.utc).timestamp()
        for created in self.in_force.values():
            self._enqueue(OptMessage("cancel", created.opt_id, created.event_id, created.modification_number, now))
        self.in_force.clear()
        await self._save()
        self._pending.set()

    # -- delivery ---------------------------------------------------------------------------------

    def _message(self, m: OptMessage) -> str:
        c = self.client
        request_id = utils.generate_id()
        if m.kind == "create":
            return c._create_message(
                "oadrCreateOpt", opt_id=m.opt_id, opt_type="optOut", opt_reason=OPT_REASON, ven_id=c.ven_id,
                created_date_time=datetime.fromtimestamp(m.created, timezone.utc), request_id=request_id,
                event_id=m.event_id, modification_number=m.modification_number, targets=[{"ven_id": c.ven_id}])
        return c._create_message("oadrCancelOpt", request_id=request_id, opt_id=m.opt_id, ven_id=c.ven_id)

    async def _send(self, m: OptMessage) -> bool:
        """Send one message; True/False once the VTN took/refused it, VtnError to retry."""
        message_type, payload = await self.client._perform_request("EiOpt", self._message(m))
        code = _response_code(payload)
        expected = "oadrCreatedOpt" if m.kind == "create" else "oadrCanceledOpt"
        if message_type not in (expected, "oadrResponse"):
            raise VtnProtocolError(f"{m.name()} {m.opt_id}: unexpected answer {message_type or 'empty body'}")
        answered = payload.get("opt_id")
        if message_type == expected and answered is not None and str(answered) != m.opt_id:
            # 2.0b: IDs are validated; an answer about another opt does not answer this one.
            raise VtnProtocolError(f"{m.name()} {m.opt_id}: answer names optID {answered}")
        if code not in (None, 200):
            description = (payload.get("response") or {}).get("response_description", "")
            log.warning("VTN refused %s %s (event %s): %s %s", m.name(), m.opt_id, m.event_id, code, description)
            return False
        log.info("VTN took %s %s (optOut of event %s)", m.name(), m.opt_id, m.event_id)
        return True

    async def run(self) -> None:
        """Deliver both channels until cancelled."""
        await asyncio.gather(self._deliver_opts(), self._deliver_answers())

    async def _deliver_opts(self) -> None:
        backoff = Backoff(RETRY_INITIAL, self.retry_max)
        failures = 0
        while True:
            await self._pending.wait()
            await self.registered.wait()
            if not self.queue:
                self._pending.clear()
                continue
            head = self.queue[0]
            try:
                taken = await self._send(head)
            except VtnError as exc:
                failures += 1
                delay = backoff.next()
                if failures == 1 or failures % 20 == 0:
                    log.warning("could not deliver %s %s (%d failure(s), %d EiOpt message(s) kept): %s; retry in "
                                "%.1f s", head.name(), head.opt_id, failures, len(self.queue), exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            backoff.reset()
            if self.queue and self.queue[0] == head:
                self.queue.pop(0)
            if not taken and head.kind == "create" and self.in_force.get(head.event_id) == head:
                del self.in_force[head.event_id]  # nothing in force at the VTN: nothing to cancel later
            await self._save()

    # -- oadrCreatedEvent answers (moved from VtnLink) ----------------------------------------------

    def queue_answers(self, opts: list[tuple[str, int, str]]) -> None:
        """Tell the VTN (oadrCreatedEvent) about opt changes; retried until the VTN takes them."""
        for event_id, modification_number, opt in opts:
            self._answers[event_id] = (modification_number, opt)
        if self._answers:
            self._answers_pending.set()

    async def _deliver_answers(self) -> None:
        backoff = Backoff(RETRY_INITIAL, self.retry_max)
        while True:
            await self._answers_pending.wait()
            await self.registered.wait()
            sending = dict(self._answers)
            c = self.client
            request_id = utils.generate_id()
            responses = [{"response_code": 200, "response_description": "OK", "request_id": request_id,
                          "event_id": event_id, "modification_number": mod, "opt_type": opt}
                         for event_id, (mod, opt) in sending.items()]
            try:
                message_type, payload = await c._perform_request("EiEvent", c._create_message(
                    "oadrCreatedEvent", ven_id=c.ven_id, event_responses=responses,
                    response={"response_code": 200, "response_description": "OK", "request_id": request_id}))
                code = _response_code(payload)
                if message_type not in ("", "oadrResponse") or code not in (None, 200):
                    raise VtnProtocolError(f"opt change not acknowledged: {message_type} {code}")
            except VtnError as exc:
                delay = backoff.next()
                log.warning("could not send %d opt change(s) to the VTN: %s; retry in %.1f s",
                            len(sending), exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for event_id, value in sending.items():
                log.info("VTN told %s for event %s", value[1], event_id)
                if self._answers.get(event_id) == value:
                    del self._answers[event_id]
            if not self._answers:
                self._answers_pending.clear()


class OptChannel:
    """The core's OptPort (core/ports.py) in 2.0b terms, on an OptService: re-sent oadrCreatedEvent
    answers, oadrCreateOpt per event opted out, oadrCancelOpt at opt-in."""

    def __init__(self, service: OptService) -> None:
        self.service = service

    def answers_changed(self, changes: Sequence[OptChange]) -> None:
        self.service.queue_answers([(c.event_id, _modification_number(c), "optOut" if c.opted_out else "optIn")
                                    for c in changes])

    async def opted_out(self, changes: Sequence[OptChange]) -> None:
        await self.service.opted_out([(c.event_id, _modification_number(c)) for c in changes])

    async def opted_in(self) -> None:
        await self.service.opted_in()


def _modification_number(change: OptChange) -> int:
    """The modificationNumber of a 2.0b revision (``Revision.number``)."""
    return int(change.revision.key[0]) if change.revision.key else 0


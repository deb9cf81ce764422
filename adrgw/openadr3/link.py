"""The OpenADR 3.1 VtnLink: the session with the VTN, the event re-sync, and the notifications.

* Session: a token (client.py), then the VEN object (found by venName, or created with
  VEN_VEN_REQUEST) and one resource per ``[meter] resource_id`` and ``[report.NAME]`` resource (found
  by resourceName, or created with VEN_RESOURCE_REQUEST). Their ids are kept in the state store and
  checked again at every start (the VTN may have lost or replaced them). Retried forever with capped
  backoff; a VTN that is away at start leaves the restored events driving the points.
* Events: a full re-sync reads the followed programs (``[ven] programs``, empty: every program this
  VEN sees) and every visible event of them; a notification makes the link re-GET only the event it
  names (its content is never used: retained or forged messages move nothing). The core gets the
  whole list each time it changed (core.model.Distribution: an event no longer listed ends now).
* Notifications: ``auto`` takes MQTT when ``GET /notifiers`` offers it, else polls; MQTT subscribes
  the per-VEN topics first (vens/{venID}/events and /programs), else the global ones; every
  (re)connect re-syncs in full; while the broker is away the periodic re-sync is the poll. Webhook:
  a subscription with our https callback and a bearer token we generate, served with [ven] cert/key.
  ``poll_interval`` is the poll period and the full re-sync period in every mode.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import ssl
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Optional
from urllib.parse import urlsplit

from adrgw.config.settings import Settings
from adrgw.core.backoff import Backoff
from adrgw.core.model import Distribution, LinkState, Outcome
from adrgw.core.schedule import Event
from adrgw.core.ports import EventSink
from adrgw.core.ratelog import Summary
from adrgw.core.supervise import TaskHealth, supervised
from adrgw.openadr3 import events as E
from adrgw.openadr3 import wire
from adrgw.openadr3.client import (Client, NotAuthorized, NotRegistered, VtnError, VtnHttpError, VtnProtocolError,
                                   client_tls)
from adrgw.openadr3.config import Ven31Settings
from adrgw.openadr3.report_service import ReportService
from adrgw.persist.store import Store

log = logging.getLogger("adrgw.openadr3")

RETRY_INITIAL = 1.0
MQTT_RETRY_MAX = 30.0
STORE_VEN = "oa3_ven_id"
STORE_RESOURCES = "oa3_resources"
STORE_SUBSCRIPTION = "oa3_subscription_id"


class Link31:
    """core.ports.VtnLink for OpenADR 3.1 (and the attributes the page, /metrics and --status read)."""

    def __init__(self, settings: Settings, client: Client, sink: EventSink, reports: ReportService, store: Store,
                 tasks: Optional[TaskHealth] = None, on_change: Callable[[], None] = lambda: None) -> None:
        """``on_change``: called when the session is won or lost and when the VTN stops or starts
        answering (the status snapshot follows at once)."""
        ven = settings.ven
        assert isinstance(ven, Ven31Settings)
        self.settings = settings
        self.ven: Ven31Settings = ven
        self.client = client
        self.sink = sink
        self.reports = reports
        self.store = store
        self.tasks = tasks or TaskHealth()
        self.on_change = on_change
        self.level_signal = settings.points.signal_name
        self.registered = asyncio.Event()
        self.ven_id: Optional[str] = None
        self.resource_ids: dict[str, str] = {}
        self.registration_attempts = 0
        self.last_poll_ok: Optional[datetime] = None
        self.poll_period = timedelta(seconds=ven.poll_interval)
        self.mode = "poll"  # how changes reach us now: poll | mqtt | webhook
        self.mqtt_connected = False
        self.syncs = 0  # full re-syncs done, for tests
        self._mine: frozenset[str] = frozenset()
        self._programs: dict[str, str] = {}  # followed program id -> programName
        self._events: dict[str, Any] = {}  # visible events of the followed programs, by id, as read
        self._applied: Optional[str] = None  # what the core got last (JSON), so it gets a list once
        self._dirty: set[str] = set()
        self._full = True
        self._wake = asyncio.Event()
        self._not_ours_logged: set[tuple[str, str]] = set()
        self._randomize_logged: set[tuple[str, str]] = set()  # per-interval randomizeStart noted (id, version)
        self._malformed_seen: set[tuple[Optional[str], str]] = set()
        self._last_good: dict[str, Event] = {}
        self._missing_logged: set[str] = set()
        self._bad_notes = Summary()
        self._failures = Summary()
        self._notifier: Optional[asyncio.Task[None]] = None
        self._webhook: Any = None  # aiohttp runner of the callback server
        self._bearer = secrets.token_urlsafe(32)

    # -- what the page, /metrics and --status read

    @property
    def last_delivery(self) -> Optional[datetime]:
        return self.reports.last_delivery

    @property
    def reports_sent(self) -> int:
        return self.reports.reports_sent

    def online(self) -> bool:
        """Registered, and the VTN answered a re-sync within 3 poll periods (and the request timeout)."""
        if not self.registered.is_set() or self.last_poll_ok is None:
            return False
        age = datetime.now(timezone.utc) - self.last_poll_ok
        return age <= 3 * self.poll_period + timedelta(seconds=self.ven.request_timeout)

    def state(self) -> LinkState:
        """core.ports.VtnLink: registered = VEN object known and a valid token; online = answering."""
        return LinkState(registered=self.registered.is_set() and self.client.token_valid, online=self.online(),
                         ven_id=self.ven_id, last_contact=self.last_poll_ok, attempts=self.registration_attempts,
                         poll_period=self.poll_period)

    # -- lifecycle

    async def run(self) -> None:
        """Register (retrying forever), then follow the events until cancelled."""
        try:
            self.ven_id = await self.store.get(STORE_VEN) or None
            self.resource_ids = json.loads(await self.store.get(STORE_RESOURCES) or "{}")
        except Exception as exc:  # noqa: BLE001 - the VTN is asked again anyway
            log.warning("could not read the VEN object ids from the state store: %s", exc)
        reporter = asyncio.create_task(supervised("report-delivery", self.reports.run, self.tasks),
                                       name="report-delivery")
        backoff = Backoff(RETRY_INITIAL, self.ven.retry_max)
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.registration_attempts += 1
                try:
                    await self.register()
                    backoff.reset()
                    await self.follow()
                except VtnError as exc:
                    if self.registered.is_set():
                        self.registered.clear()
                        self.on_change()
                    await self._stop_notifier()
                    delay = backoff.next()
                    covered = self._failures.hit(loop.time(), type(exc).__name__)
                    if covered is not None:
                        log.warning("OpenADR 3.1 VTN session attempt %d failed%s: %s; retrying in %.1f s",
                                    self.registration_attempts,
                                    "" if covered == 1 else f" ({covered} failures since the last line)", exc, delay)
                    await asyncio.sleep(delay)
        finally:
            reporter.cancel()
            await self._stop_notifier()
            await asyncio.gather(reporter, return_exceptions=True)
            if self._webhook is not None:
                await self._webhook.cleanup()
            await self.client.close()

    async def register(self) -> None:
        """Token, VEN object and resources; raises VtnError unless all are known."""
        await self.client.token()
        ven = await self._find_ven()
        if ven is None:
            ven = wire.ven(await self.client.call("POST", "/vens", {"objectType": "VEN_VEN_REQUEST",
                                                                  "venName": self.ven.ven_name}))
            log.info("created the VEN object %s (venName %s)", ven["id"], self.ven.ven_name)
        if self.ven_id and self.ven_id != ven["id"]:
            log.warning("the VTN knows this VEN as %s now (was %s)", ven["id"], self.ven_id)
        self.ven_id = str(ven["id"])
        mine = {self.ven.ven_name, *wire.targets(ven.get("targets"), "ven")}
        names = [self.settings.meter.resource_id] + [p.resource_id for p in self.settings.reports]
        resources: dict[str, str] = {}
        for name in dict.fromkeys(names):
            res = await self._find_resource(name)
            if res is None:
                res = wire.resource(await self.client.call("POST", "/resources", {
                    "objectType": "VEN_RESOURCE_REQUEST", "resourceName": name, "venID": self.ven_id}))
                log.info("created the resource %s (resourceName %s)", res["id"], name)
            resources[name] = str(res["id"])
            mine |= set(wire.targets(res.get("targets"), "resource"))
        self.resource_ids = resources
        self._mine = frozenset(mine)
        try:
            await self.store.set(STORE_VEN, self.ven_id)
            await self.store.set(STORE_RESOURCES, json.dumps(resources))
        except Exception as exc:  # noqa: BLE001 - the ids are read from the VTN again next start
            log.warning("could not save the VEN object ids to the state store: %s", exc)
        self.registered.set()
        self.last_poll_ok = datetime.now(timezone.utc)
        self.on_change()
        log.info("OpenADR 3.1 session with %s: VEN object %s (venName %s), resources %s", self.ven.vtn_url,
                 self.ven_id, self.ven.ven_name, ", ".join(f"{n}={i}" for n, i in resources.items()))

    async def _refresh_identity(self) -> None:
        """The targets the VTN gave our VEN and resource objects (they say which events are ours)."""
        raw = await self.client.call("GET", f"/vens/{self.ven_id}", missing_ok=True, ok=(200,))
        if raw is None:
            raise NotRegistered(f"the VTN no longer knows our VEN object {self.ven_id}: registering again")
        mine = {self.ven.ven_name, *wire.targets(self._checked(wire.ven, raw).get("targets"), "ven")}
        for raw in await self.client.list_all("/resources", {"venID": self.ven_id}):
            res = self._checked(wire.resource, raw)
            if res["resourceName"] in self.resource_ids:
                mine |= set(wire.targets(res.get("targets"), "resource"))
        self._mine = frozenset(mine)

    async def _find_ven(self) -> Optional[dict[str, Any]]:
        """Our VEN object: the stored id if the VTN still has it under our venName, else by venName."""
        if self.ven_id:
            raw = await self.client.call("GET", f"/vens/{self.ven_id}", missing_ok=True, ok=(200,))
            if raw is not None:
                ven = self._checked(wire.ven, raw)
                if ven["venName"] == self.ven.ven_name:
                    return ven
        for raw in await self.client.list_all("/vens", {"venName": self.ven.ven_name}):
            ven = self._checked(wire.ven, raw)
            if ven["venName"] == self.ven.ven_name:
                return ven
        return None

    async def _find_resource(self, name: str) -> Optional[dict[str, Any]]:
        for raw in await self.client.list_all("/resources", {"venID": self.ven_id, "resourceName": name}):
            res = self._checked(wire.resource, raw)
            if res["resourceName"] == name and res["venID"] == self.ven_id:
                return res
        return None

    @staticmethod
    def _checked(check: Any, raw: Any) -> dict[str, Any]:
        try:
            return dict(check(raw))
        except wire.Invalid as exc:
            raise VtnProtocolError(f"refused an object from the VTN: {exc}") from None

    # -- following the events

    async def follow(self) -> None:
        """Start the notifications, then re-sync on each notification and every poll_interval."""
        await self._start_notifier()
        self._full = True
        loop = asyncio.get_running_loop()
        backoff = Backoff(RETRY_INITIAL, self.ven.retry_max)
        last_full = 0.0
        failing = False
        while True:
            period = self.ven.poll_interval
            if failing:
                wait = min(backoff.next(), period)
            else:
                wait = max(0.0, last_full + period - loop.time()) if not (self._full or self._dirty) else 0.0
            if wait > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    self._full = True
            self._wake.clear()
            if loop.time() - last_full >= period:
                self._full = True
            full, dirty = self._full, self._dirty
            self._full, self._dirty = False, set()
            try:
                await self.sync(full, dirty)
            except (NotAuthorized, NotRegistered):
                raise
            except VtnError as exc:
                self._full = True  # what failed is read again, all of it
                if not failing:
                    self.on_change()
                failing = True
                covered = self._failures.hit(loop.time(), type(exc).__name__)
                if covered is not None:
                    log.warning("OpenADR 3.1 re-sync failed (%s); retrying, the points keep the events held", exc)
                continue
            if full:
                last_full = loop.time()
            if failing:
                self.on_change()
                log.info("the VTN answers again after %d failure(s)", self._failures.reset())
                failing = False
                backoff.reset()

    def request_full(self) -> None:
        """Re-read everything at once (a notifier (re)connected)."""
        self._full = True
        self._wake.set()

    async def sync(self, full: bool, dirty: set[str]) -> None:
        """Read what changed from the VTN (all of it when ``full``) and hand the core the list."""
        if full:
            await self._read_all()
        else:
            for event_id in sorted(dirty):
                raw = await self.client.call("GET", f"/events/{event_id}", missing_ok=True, ok=(200,))
                if raw is not None and (not isinstance(raw, Mapping) or raw.get("id") != event_id):
                    log.warning("GET /events/%s answered another object: reading everything again", event_id)
                    await self._read_all()
                    break
                if raw is None or not self._followed(raw):
                    self._events.pop(event_id, None)
                else:
                    self._events[event_id] = raw
        self.last_poll_ok = datetime.now(timezone.utc)
        await self._apply()

    def _followed(self, raw: Any) -> bool:
        if not self.ven.programs:
            return True
        return isinstance(raw, Mapping) and raw.get("programID") in self._programs

    async def _read_all(self) -> None:
        await self._refresh_identity()
        programs: dict[str, str] = {}
        for raw in await self.client.list_all("/programs"):
            try:
                program = wire.program(raw)
            except wire.Invalid as exc:
                covered = self._bad_notes.hit(time.monotonic(), "program")
                if covered is not None:
                    log.warning("refused a program from the VTN: %s", exc)
                continue
            if not self.ven.programs or program["programName"] in self.ven.programs:
                programs[str(program["id"])] = str(program["programName"])
        for name in self.ven.programs:
            if name not in programs.values() and name not in self._missing_logged:
                self._missing_logged.add(name)
                log.warning("[ven] programs: the VTN shows no program named %r to this VEN", name)
        self._programs = programs
        found: list[Any] = []
        if self.ven.programs:
            for program_id in programs:
                found += await self.client.list_all("/events", {"programID": program_id})
        else:
            found = await self.client.list_all("/events")
        events: dict[str, Any] = {}
        for n, raw in enumerate(found):
            event_id = raw.get("id") if isinstance(raw, Mapping) else None
            key = event_id if isinstance(event_id, str) and wire.OBJECT_ID.match(event_id) else f"?{n}"
            if self._followed(raw) or key.startswith("?"):
                events[key] = raw
        self._events = events
        self.syncs += 1

    async def _apply(self) -> None:
        """The core gets the list when it changed since it last got it (so a malformed event is
        logged once per version, and nothing moves for a re-read that found nothing new)."""
        text = json.dumps(self._events, sort_keys=True, default=str)
        if text == self._applied:
            return
        dist = self._once(E.distribution(list(self._events.values()), self.level_signal, self._mine))
        outcomes = await self.sink.apply(dist)
        self._applied = text
        foreign: set[tuple[str, str]] = set()
        for outcome in outcomes:
            if outcome.outcome is Outcome.NOT_TARGETED:
                key = (outcome.event_id, outcome.revision.label)
                foreign.add(key)
                if key not in self._not_ours_logged:
                    log.warning("event %s (modified %s) is not targeted at this VEN (targets: %s): not applied",
                                outcome.event_id, outcome.revision.label,
                                ", ".join(sorted(dist.targets.get(outcome.event_id, {}).get("ven_id", ()))))
        self._not_ours_logged = foreign  # logged once while listed; the set stays bounded
        not_ours = {o.event_id for o in outcomes if o.outcome is Outcome.NOT_TARGETED}
        noted: set[tuple[str, str]] = set()
        for event in dist.events:
            raw_event = self._events.get(event.event_id)
            note = E.interval_randomize_note(raw_event) \
                if isinstance(raw_event, Mapping) and event.event_id not in not_ours else None
            if note is not None:
                key = (event.event_id, event.revision.label)
                noted.add(key)
                if key not in self._randomize_logged:
                    log.info("%s", note)
        self._randomize_logged = noted  # once per event version while listed; bounded as above
        planned: dict[str, tuple[Mapping[str, Any], list[tuple[datetime, Optional[datetime]]]]] = {}
        for event in dist.events:
            if event.event_id in not_ours:
                continue
            raw = self._events.get(event.event_id)
            if isinstance(raw, Mapping):
                planned[event.event_id] = (raw, E.spans(raw))
        await self.reports.events_changed(planned)

    def _once(self, dist: Distribution) -> Distribution:
        """A malformed event reaches the core (which logs it and keeps its last good version) once per
        version; later lists carry that last good version instead, or nothing when there was none."""
        events = list(dist.events)
        malformed = []
        seen: set[tuple[Optional[str], str]] = set()
        for bad in dist.malformed:
            key = (bad.event_id, bad.revision.label if bad.event_id else bad.reason)
            seen.add(key)
            if key not in self._malformed_seen:
                malformed.append(bad)
            elif bad.event_id in self._last_good:
                events.append(self._last_good[bad.event_id])
        self._malformed_seen = seen
        listed = {e.event_id for e in events} | {b.event_id for b in dist.malformed if b.event_id}
        self._last_good = {**{k: v for k, v in self._last_good.items() if k in listed},
                           **{e.event_id: e for e in dist.events}}
        return Distribution(tuple(events), tuple(malformed), dist.targets)

    # -- notifications

    def on_notification(self, payload: bytes | str, source: str) -> bool:
        """One notification (MQTT message or webhook body): re-GET what it names; False if refused."""
        try:
            kind, _operation, object_id = wire.notification(json.loads(payload))
        except (ValueError, wire.Invalid) as exc:
            covered = self._bad_notes.hit(time.monotonic(), source)
            if covered is not None:
                log.warning("refused a %s notification: %s%s", source, str(exc)[:200],
                            "" if covered == 1 else f" ({covered} refused since the last line)")
            return False
        if kind == "EVENT":
            self._dirty.add(object_id)
        elif kind in ("PROGRAM", "VEN", "RESOURCE"):
            self._full = True  # programs, targets and so visibility may have changed
        else:
            return True
        self._wake.set()
        return True

    async def _start_notifier(self) -> None:
        await self._stop_notifier()
        wanted = self.ven.notifications
        self.mode = "poll"
        if wanted == "webhook":
            self.mode = "webhook"
            await self._start_webhook()
            return
        if wanted == "poll":
            log.info("OpenADR 3.1: polling the VTN every %g s", self.ven.poll_interval)
            return
        binding = None
        try:
            binding = wire.notifiers(await self.client.call("GET", "/notifiers", ok=(200,)))
        except wire.Invalid as exc:
            log.warning("refused the VTN's notifier list (%s): polling every %g s", exc, self.ven.poll_interval)
        except NotAuthorized:
            raise
        except VtnError as exc:
            log.warning("could not read the VTN's notifiers (%s): polling every %g s", exc, self.ven.poll_interval)
        uri = _mqtt_uri(binding)
        method = (binding or {}).get("authentication", {}).get("method")
        if binding is None or uri is None or method == "CERTIFICATE":
            why = "offers no MQTT" if binding is None else (
                "offers no mqtt:// or mqtts:// URI" if uri is None else "asks for MQTT client certificates it hands out")
            log.log(logging.WARNING if wanted == "mqtt" else logging.INFO,
                    "the VTN %s: polling every %g s", why, self.ven.poll_interval)
            return
        topics = await self._topics()
        self._notifier = asyncio.create_task(self._mqtt(uri, binding, topics), name="oa3-mqtt")
        self.mode = "mqtt"

    async def _stop_notifier(self) -> None:
        if self._notifier is not None:
            self._notifier.cancel()
            await asyncio.gather(self._notifier, return_exceptions=True)
            self._notifier = None
        self.mqtt_connected = False

    async def _topics(self) -> list[str]:
        """Per-VEN topics first (events and programs of this VEN), else the global ones."""
        found: list[str] = []
        for scoped, general in ((f"vens/{self.ven_id}/events", "events"), (f"vens/{self.ven_id}/programs", "programs")):
            for path in (scoped, general):
                try:
                    answer = await self.client.call("GET", f"/notifiers/mqtt/topics/{path}", ok=(200,))
                    found += wire.topics(answer)
                    break
                except (VtnHttpError, wire.Invalid) as exc:
                    log.info("no MQTT topics at /notifiers/mqtt/topics/%s (%s)", path, exc)
        try:
            found += wire.topics(await self.client.call("GET", f"/notifiers/mqtt/topics/vens/{self.ven_id}", ok=(200,)))
        except (VtnHttpError, wire.Invalid) as exc:
            log.info("no MQTT topics for our VEN object (%s): its targets are re-read every %g s",
                     exc, self.ven.poll_interval)
        return list(dict.fromkeys(found))

    async def _mqtt(self, uri: str, binding: Mapping[str, Any], topics: list[str]) -> None:
        """Connect, subscribe, re-sync in full on each (re)connect; reconnect with backoff forever."""
        import aiomqtt

        parts = urlsplit(uri)
        secure = parts.scheme in ("mqtts", "ssl")
        backoff = Backoff(RETRY_INITIAL, min(MQTT_RETRY_MAX, self.ven.retry_max))
        auth = binding.get("authentication") or {}
        lost_logged = False
        while True:
            try:
                username = password = None
                if auth.get("method") == "OAUTH2_BEARER_TOKEN":
                    name = str(auth.get("username", ""))
                    username = self.ven.client_id if name == "{clientID}" else name
                    password = await self.client.token()
                async with aiomqtt.Client(
                        parts.hostname or "127.0.0.1", parts.port or (8883 if secure else 1883),
                        username=username, password=password, identifier=f"adrgw-{secrets.token_hex(6)}",
                        tls_context=client_tls(self.ven) if secure else None, timeout=self.ven.request_timeout,
                        keepalive=max(5, int(self.ven.poll_interval))) as mq:
                    for topic in topics:
                        await mq.subscribe(topic, qos=1)
                    self.mqtt_connected = True
                    backoff.reset()
                    log.info("MQTT notifications from %s on %d topic(s): %s%s", uri, len(topics), ", ".join(topics),
                             " (broker back: polling stops)" if lost_logged else "")
                    lost_logged = False
                    self.request_full()
                    async for message in mq.messages:
                        if message.retain:
                            continue  # an old message: the re-sync at connect read the current state
                        self.on_notification(bytes(message.payload) if isinstance(message.payload, (bytes, bytearray))
                                             else str(message.payload), "MQTT")
            except aiomqtt.MqttError as exc:
                self.mqtt_connected = False
                if not lost_logged:
                    lost_logged = True
                    log.warning("MQTT broker %s lost or unreachable (%s): polling the VTN every %g s until it is "
                                "back", uri, exc, self.ven.poll_interval)
                await asyncio.sleep(backoff.next())
            except VtnError as exc:  # the token for the broker
                self.mqtt_connected = False
                log.warning("MQTT: no token for the broker (%s)", exc)
                await asyncio.sleep(backoff.next())
            except (OSError, ValueError, ssl.SSLError) as exc:  # TLS files, a broker answering garbage
                self.mqtt_connected = False
                if not lost_logged:
                    lost_logged = True
                    log.error("MQTT broker %s: %s: polling the VTN every %g s", uri, exc, self.ven.poll_interval)
                await asyncio.sleep(backoff.next())

    # -- webhook

    async def _start_webhook(self) -> None:
        """Serve the callback (once per process) and (re)create our subscription with a fresh token."""
        v = self.ven
        assert v.callback_url and v.callback_listen and v.cert and v.key
        if self._webhook is None:
            from aiohttp import web

            path = urlsplit(v.callback_url).path or "/"
            app = web.Application(client_max_size=1024 * 1024)
            app.router.add_post(path, self._callback)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            try:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.load_cert_chain(v.cert, v.key)
                await web.TCPSite(runner, v.callback_listen[0], v.callback_listen[1], ssl_context=context,
                                  reuse_address=True).start()
            except (OSError, ssl.SSLError) as exc:
                await runner.cleanup()
                log.error("cannot serve the webhook callback on %s:%d (%s): polling the VTN every %g s instead",
                          v.callback_listen[0], v.callback_listen[1], exc, v.poll_interval)
                self.mode = "poll"
                return
            self._webhook = runner
            log.info("webhook callback served on https://%s:%d%s", v.callback_listen[0], v.callback_listen[1], path)
        for raw in await self.client.list_all("/subscriptions", {"clientName": v.ven_name}):
            if not isinstance(raw, Mapping):
                continue
            ours = any(isinstance(op, Mapping) and op.get("callbackUrl") == v.callback_url
                       for op in raw.get("objectOperations") or [])
            sid = raw.get("id")
            if ours and isinstance(sid, str) and wire.OBJECT_ID.match(sid):
                await self.client.call("DELETE", f"/subscriptions/{sid}", ok=(200, 204), missing_ok=True)
        answer = await self.client.call("POST", "/subscriptions", {
            "clientName": v.ven_name,
            "objectOperations": [{"objects": ["PROGRAM", "EVENT"], "operations": ["CREATE", "UPDATE", "DELETE"],
                                  "callbackUrl": v.callback_url, "bearerToken": self._bearer}]})
        sid = self._checked(lambda raw: {"id": wire.created(raw, "subscription")}, answer)["id"]
        log.info("webhook subscription %s: the VTN posts program and event changes to %s", sid, v.callback_url)
        try:
            await self.store.set(STORE_SUBSCRIPTION, sid)
        except Exception:  # noqa: BLE001 - found again by clientName next start
            pass

    async def _callback(self, request: Any) -> Any:
        """One notification from the VTN: our bearer token, else 401; the spec's notification, else 400.
        (The 3.1.0 spec defines no validation handshake for callbacks: there is no echo to answer.)"""
        from aiohttp import web

        header = request.headers.get("Authorization", "")
        if not hmac.compare_digest(header.encode(), f"Bearer {self._bearer}".encode()):
            covered = self._bad_notes.hit(time.monotonic(), "webhook-auth")
            if covered is not None:
                log.warning("refused a webhook call from %s without our bearer token", request.remote)
            return web.json_response({"title": "Unauthorized", "status": 401}, status=401)
        body = await request.read()
        if not self.on_notification(body, "webhook"):
            return web.json_response({"title": "Bad Request", "status": 400}, status=400)
        return web.Response(status=200)


def _mqtt_uri(binding: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The first broker URI we can use (mqtts preferred)."""
    uris = [str(u) for u in (binding or {}).get("URIS", [])]
    for scheme in ("mqtts", "ssl", "mqtt", "tcp"):
        for uri in uris:
            if urlsplit(uri).scheme == scheme:
                return uri
    return None

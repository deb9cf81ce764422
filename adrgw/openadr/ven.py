"""The OpenADR 2.0b side: registration with retry, polling, events, and telemetry reports.

openleadr's ``OpenADRClient`` builds, signs and parses the messages; we drive the lifecycle
ourselves because its ``run()`` has gaps a gateway cannot live with (docs/architecture.md):

* ``run()`` gives up when the VTN is down at start (``registration_id=None``) and a second
  ``run()`` fails with "Session is closed": we retry registration forever with capped backoff.
* its transport (``_perform_request``) swallows every failure into ``(None, {})`` and has no
  overall deadline: ``GatewayClient._perform_request`` raises typed errors with a hard timeout and
  a bounded reply size instead, so callers can tell "delivered" from "lost".
* its report path calls a callback on a cron and cannot represent a missing reading (None raises,
  [] makes openleadr's VTN answer 500, NaN fails the schema) nor serve several report requests:
  the report service (``report_service.py``, pure schedule in ``reports.py``) does that; this
  module only hands it the EiReport messages and the transport.
* it never applies implied cancellation and has no callback at interval boundaries: events go to
  ``on_distribution`` (our schedule logic) with the whole list the VTN sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

import aiohttp
from openleadr import OpenADRClient, errors, utils
from openleadr.messaging import parse_message, validate_xml_schema, validate_xml_signature

from adrgw.config.settings import VenSettings
from adrgw.core.model import DEFAULT_POLL_PERIOD, LinkState
from adrgw.openadr.errors import (RETRY_INITIAL, NotRegistered, VtnError, VtnHttpError, VtnProtocolError,
                                  VtnSecurityError, VtnUnreachable)
from adrgw.openadr.events import EventAnswers
from adrgw.openadr.oadr_fixes import create_party_registration
from adrgw.openadr.opt import OptService
from adrgw.openadr.report_service import ReportService
from adrgw.core.backoff import Backoff
from adrgw.core.ratelog import Summary
from adrgw.core.supervise import TaskHealth, supervised
from adrgw.openadr.payloads import response_code as _response_code

log = logging.getLogger("adrgw.ven")

# A VTN reply larger than this is refused (a DistributeEvent with many events is ~100 kB).
MAX_REPLY_BYTES = 4 * 1024 * 1024
# TLS 1.2+ with the two suites OpenADR 2.0b certification names first (TLS_ECDHE_ECDSA_WITH_AES_128_
# CBC_SHA256, TLS_RSA_WITH_AES_128_CBC_SHA256), then modern AEAD suites; TLS 1.3 suites are always on.
TLS_CIPHERS = ("ECDHE-ECDSA-AES128-SHA256:AES128-SHA256:"
               "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
               "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
               "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
# OpenADR 2.0b response code for an unexpected ID (venID, vtnID, eventID).
INVALID_ID = 452
# Reply content types accepted from a VTN (an empty body carries none).
XML_CONTENT_TYPES = ("application/xml", "text/xml")


def _log_level(exc: VtnError) -> int:
    return logging.ERROR if isinstance(exc, VtnSecurityError) else logging.WARNING


def _kind(exc: Exception) -> str:
    """What makes two failures "the same" for rate-limited lines: the error and its first words
    (a new cause always gets its own line)."""
    return f"{type(exc).__name__}: {re.sub(r'[0-9]+', '#', str(exc))[:80]}"


class GatewayClient(OpenADRClient):
    """openleadr's client with a transport that reports failures instead of hiding them."""

    def __init__(self, settings: VenSettings) -> None:
        super().__init__(
            ven_name=settings.ven_name, vtn_url=settings.vtn_url, ven_id=settings.ven_id or None,
            cert=settings.cert, key=settings.key, ca_file=settings.ca_file,
            vtn_fingerprint=settings.vtn_fingerprint, show_fingerprint=False,
            disable_signature=settings.disable_signature, check_hostname=settings.check_hostname,
        )
        self.request_timeout = settings.request_timeout
        self._settings = settings
        self.client_session: Optional[aiohttp.ClientSession] = None

    def _ssl_context(self) -> Optional[ssl.SSLContext]:
        s = self._settings
        if not s.vtn_url.startswith("https://"):
            return None
        ctx = ssl.create_default_context(cafile=s.ca_file or None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(TLS_CIPHERS)
        ctx.check_hostname = s.check_hostname
        if s.cert and s.key:
            ctx.load_cert_chain(s.cert, s.key)
        return ctx

    async def _ensure_client_session(self) -> None:
        if self.client_session is None or self.client_session.closed:
            self.client_session = aiohttp.ClientSession(
                headers={"content-type": "application/xml"},
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                connector=aiohttp.TCPConnector(ssl=self._ssl_context() or False, limit=4),
            )

    async def close(self) -> None:
        if self.client_session is not None and not self.client_session.closed:
            await self.client_session.close()

    async def _perform_request(self, service: str, message: Any) -> tuple[str, dict[str, Any]]:
        """POST one message; return (message type, payload) or raise a VtnError subclass.

        Replaces openleadr's version, which returns (None, {}) on every failure and has only
        socket-level timeouts.
        """
        await self._ensure_client_session()
        session = self.client_session
        assert session is not None
        url = f"{self.vtn_url}/{service}"
        log.debug("-> %s %s", url, utils.ensure_str(message))
        try:
            async with asyncio.timeout(self.request_timeout):
                async with session.post(url, data=message) as resp:
                    content = await _read_bounded(resp, MAX_REPLY_BYTES, service)
                    if resp.status != 200:
                        first = content[:200].decode("utf-8", "replace").splitlines()[:1]
                        raise VtnHttpError(f"{service}: HTTP {resp.status} {first[0] if first else ''}".rstrip())
                    if content and resp.content_type not in XML_CONTENT_TYPES:
                        raise VtnProtocolError(f"{service}: refused reply with content type {resp.content_type!r}")
        except TimeoutError:
            raise VtnUnreachable(f"{service}: no answer within {self.request_timeout:g} s") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise VtnSecurityError(f"{service}: VTN certificate not trusted: {exc.certificate_error}") from None
        except aiohttp.ClientError as exc:
            raise VtnUnreachable(f"{service}: {type(exc).__name__}: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise VtnSecurityError(f"{service}: VTN certificate not trusted: {exc}") from None
        except ssl.SSLError as exc:
            raise VtnUnreachable(f"{service}: TLS: {exc}") from None
        except OSError as exc:
            raise VtnUnreachable(f"{service}: {exc}") from None
        log.debug("<- %s", content.decode("utf-8", "replace"))
        refuse_dtd(content, service)
        if not content:
            # openleadr's VTN answers an oadrResponse from us with an empty 200 body.
            return "", {}
        try:
            tree = validate_xml_schema(content)
            if self.vtn_fingerprint:
                validate_xml_signature(tree, cert_fingerprint=self.vtn_fingerprint)
            message_type, payload = parse_message(content)
        except errors.FingerprintMismatch as exc:
            raise VtnSecurityError(f"{service}: VTN certificate fingerprint does not match [ven] "
                                   f"vtn_fingerprint: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - lxml/xmltodict/signxml raise many types
            raise VtnProtocolError(f"{service}: refused reply: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        return message_type, payload


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int, service: str) -> bytes:
    """The whole body, or VtnProtocolError as soon as it exceeds ``limit`` (memory stays bounded).

    ``StreamReader.read(n)`` returns what is buffered, up to n: read until EOF, chunk by chunk.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise VtnProtocolError(f"{service}: reply larger than {limit} bytes refused")
        chunks.append(chunk)


_DTD = re.compile(rb"<!\s*(doctype|entity)", re.IGNORECASE)


def refuse_dtd(content: bytes, service: str) -> None:
    """Refuse any reply that carries a DTD (entity declarations), before any XML parser sees it.

    OpenADR 2.0b messages never have one. Workaround for lxml/libxml2 as openleadr uses it:
    ``openleadr.messaging.validate_xml_schema`` (a schema-validating parser) crashes the whole
    process with a segmentation fault on an entity-expansion ("billion laughs") document, where a
    plain lxml parser stops at its amplification limit. Measured with lxml 6.1.3 / openleadr 0.5.36.
    """
    if _DTD.search(content):
        raise VtnProtocolError(f"{service}: refused reply with a DTD/entity declarations (XML bomb?)")


class VtnLink:
    """Keeps the gateway registered, polls, hands events over, and delivers queued samples.

    The OpenADR 2.0b implementation of the core's VtnLink port; its collaborators are built by the
    adapter (adapter.py) and given here: the client (openleadr's, with our transport), the events'
    way into the core (``answers``), the EiOpt service, the report service, and the two flags they
    share with it (``registered``, ``reregister``: the VTN no longer knows us)."""

    def __init__(self, settings: VenSettings, client: GatewayClient, answers: EventAnswers, opts: OptService,
                 reports: ReportService, registered: asyncio.Event, reregister: asyncio.Event,
                 store: Any = None, tasks: Optional[TaskHealth] = None,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.answers = answers
        self.store = store  # remembers the last registration (venID) across restarts
        self.client = client
        self.registered = registered
        # The building's opt changes (ADR-Opt-Out): EiOpt and re-sent oadrCreatedEvent answers.
        self.opts = opts
        self.poll_period = DEFAULT_POLL_PERIOD
        self._reregister = reregister
        self.reports = reports
        self.last_poll_ok: Optional[datetime] = None
        self.registration_attempts = 0
        # The registration to carry in the next oadrCreatePartyRegistration (2.0b: "used for
        # re-registering an existing registration"); None after the VTN cancelled it or refused it.
        self.previous_registration_id: Optional[str] = None
        self.vtn_id: Optional[str] = None  # the VTN we registered with; messages from others are refused
        self.tasks = tasks or TaskHealth()  # its delivery tasks are supervised; a dead one shows here
        self._ordinary_poll = False  # a poll was answered with something else than a re-registration
        self._registration_log = Summary()
        self._reregistration_log = Summary()
        # Called when the registration or the VTN's reachability changes (the status snapshot
        # follows within a second: ops/snapshot.py).
        self.on_change = on_change

    @property
    def ven_id(self) -> Optional[str]:
        return self.client.ven_id

    @property
    def last_delivery(self) -> Optional[datetime]:
        return self.reports.last_delivery

    @property
    def reports_sent(self) -> int:
        return self.reports.reports_sent

    def state(self) -> LinkState:
        """The core's view of the link (ports.VtnLink)."""
        return LinkState(registered=self.registered.is_set(), online=self.online(), ven_id=self.ven_id,
                         last_contact=self.last_poll_ok, attempts=self.registration_attempts,
                         poll_period=self.poll_period)

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Register (retrying forever), then poll until the VTN asks us to register again."""
        backoff = Backoff(RETRY_INITIAL, self.settings.retry_max)
        if self.store is not None:
            try:
                if not self.client.ven_id:
                    self.client.ven_id = await self.store.get("ven_id") or None
                self.previous_registration_id = await self.store.get("registration_id") or None
            except Exception as exc:  # noqa: BLE001
                log.warning("could not read the last registration from the state store: %s", exc)
        await self.opts.restore()
        reporter = asyncio.create_task(supervised("report-delivery", self.reports.run, self.tasks),
                                       name="report-delivery")
        opts = asyncio.create_task(supervised("opt-delivery", self.opts.run, self.tasks), name="opt-delivery")
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.registration_attempts += 1
                self._ordinary_poll = False
                try:
                    await self.register()
                    failed = self._registration_log.reset()
                    if failed:
                        log.info("registered after %d failed attempt(s)", failed)
                    await self.register_reports()
                    await self.request_events()
                    await self._poll_until_reregister()
                except VtnError as exc:
                    if self._ordinary_poll:
                        backoff.reset()
                    delay = backoff.next()
                    covered = self._registration_log.hit(loop.time(), _kind(exc))
                    if covered is not None:
                        log.log(_log_level(exc), "VTN registration attempt %d failed%s: %s; retrying in %.1f s "
                                "(at most %g s apart, a summary line every %d s)", self.registration_attempts,
                                "" if covered == 1 else f" ({covered} failures since the last line)", exc, delay,
                                self.settings.retry_max, self._registration_log.every)
                    self._unregister_locally()
                    await asyncio.sleep(delay)
                else:
                    self._unregister_locally()
                    # A VTN that asks for re-registration on every poll gets one registration per
                    # backoff step, not one per poll; the backoff starts over once a poll was answered
                    # with anything else.
                    if self._ordinary_poll:
                        backoff.reset()
                    delay = backoff.next()
                    covered = self._reregistration_log.hit(loop.time())
                    if covered is not None:
                        log.info("re-registering with the VTN in %.1f s%s", delay,
                                 "" if covered == 1 else f" ({covered} re-registration requests since the last line)")
                    await asyncio.sleep(delay)
        finally:
            reporter.cancel()
            opts.cancel()
            await asyncio.gather(reporter, opts, return_exceptions=True)
            await self.client.close()

    def _unregister_locally(self) -> None:
        was = self.registered.is_set()
        self.registered.clear()
        self.client.registration_id = None
        if was:
            self.on_change()

    async def register(self) -> None:
        """oadrQueryRegistration + oadrCreatePartyRegistration; raises VtnError unless registered."""
        c = self.client
        _, query = await c._perform_request(
            "EiRegisterParty", c._create_message("oadrQueryRegistration", request_id=utils.generate_id()))
        request_id = (query.get("response") or {}).get("request_id") or utils.generate_id()
        carried = self.previous_registration_id
        message_type, payload = await c._perform_request("EiRegisterParty", create_party_registration(
            c, request_id=request_id, ven_name=c.ven_name, ven_id=c.ven_id,
            http_pull_model=True, xml_signature=False, report_only=False, profile_name="2.0b",
            transport_name="simpleHttp", transport_address=None, registration_id=carried))
        code = _response_code(payload)
        if message_type != "oadrCreatedPartyRegistration" or code != 200:
            response = payload.get("response") or {}
            if carried:
                # The VTN may have forgotten that registration: the next attempt registers anew.
                self.previous_registration_id = None
            raise NotRegistered(f"registration refused: {message_type} {code} "
                                f"{response.get('response_description', '')}".rstrip())
        if not payload.get("registration_id") or not payload.get("ven_id"):
            raise NotRegistered("registration reply without registrationID or venID")
        if self.settings.ven_id and payload["ven_id"] != self.settings.ven_id:
            # [ven] ven_id is this VEN's identity at the utility: a reply for another VEN is not ours.
            raise NotRegistered(f"registration reply carries venID {payload['ven_id']}, not the configured "
                                f"[ven] ven_id {self.settings.ven_id}: refused")
        if c.ven_id and payload["ven_id"] != c.ven_id:
            log.warning("VTN assigned venID %s instead of the previous %s", payload["ven_id"], c.ven_id)
        if self.vtn_id and payload.get("vtn_id") and payload["vtn_id"] != self.vtn_id:
            log.warning("registered with vtnID %s (was %s)", payload["vtn_id"], self.vtn_id)
        self.vtn_id = payload.get("vtn_id") or None
        c.ven_id = payload["ven_id"]
        c.registration_id = payload["registration_id"]
        self.previous_registration_id = str(c.registration_id)
        freq = payload.get("requested_oadr_poll_freq")
        if isinstance(freq, timedelta) and freq > timedelta(0):
            # 1 s is the practical floor; more than a day is not supported by OpenADR profiles.
            self.poll_period = min(max(freq, timedelta(seconds=1)), timedelta(hours=24))
        log.info("registered with the VTN as venID %s (registrationID %s), polling every %s s",
                 c.ven_id, c.registration_id, self.poll_period.total_seconds())
        self.registered.set()
        self.last_poll_ok = datetime.now(timezone.utc)
        self.on_change()
        if self.store is not None:
            try:
                await self.store.set("ven_id", str(c.ven_id))
                await self.store.set("registration_id", str(c.registration_id))
            except Exception as exc:  # noqa: BLE001
                log.warning("could not save the registration to the state store: %s", exc)

    async def register_reports(self) -> None:
        await self.reports.register_reports()

    async def request_events(self) -> None:
        c = self.client
        message_type, payload = await c._perform_request("EiEvent", c._create_message(
            "oadrRequestEvent", request_id=utils.generate_id(), ven_id=c.ven_id, reply_limit=None))
        if message_type == "oadrDistributeEvent":
            await self._handle_distribution(payload)
        else:
            # The VTN holds no event for us (openleadr's VTN answers oadrResponse then): every event
            # we still hold (restored from the state store) is cancelled by implication.
            await self.answers.distribute([])

    # -- polling ----------------------------------------------------------------------------

    async def _poll_until_reregister(self) -> None:
        c = self.client
        loop = asyncio.get_running_loop()
        failures = Summary()
        backoff = Backoff(RETRY_INITIAL, self.settings.retry_max)
        resync = False  # a poll failed: its answer (a distribution?) may be lost; ask for the events again
        next_at = loop.time()
        while not self._reregister.is_set():
            delay = self.poll_period.total_seconds()
            try:
                message_type, payload = await c._perform_request(
                    "OadrPoll", c._create_message("oadrPoll", ven_id=c.ven_id))
            except VtnError as exc:
                resync = True
                # Capped exponential backoff between failed polls, never faster than the poll period.
                delay = max(delay, backoff.next())
                covered = failures.hit(loop.time(), _kind(exc))
                if covered is not None:
                    log.log(_log_level(exc), "VTN poll failed (%d in a row): %s; next poll in %.1f s",
                            failures.total, exc, delay)
            else:
                backoff.reset()
                self.last_poll_ok = datetime.now(timezone.utc)
                if failures.total:
                    log.info("VTN answers polls again after %d failure(s)", failures.reset())
                    self.on_change()
                if message_type != "oadrRequestReregistration":
                    self._ordinary_poll = True
                try:
                    if resync and message_type not in ("oadrRequestReregistration", "oadrCancelPartyRegistration"):
                        # A distribution answered to a poll that failed on our side is never sent
                        # again by the VTN: fetch the whole current list (oadrRequestEvent).
                        log.info("re-synchronising the events after a failed poll (oadrRequestEvent)")
                        await self.request_events()
                        resync = False
                    more = await self._dispatch(message_type, payload)
                except VtnError as exc:
                    log.log(_log_level(exc), "could not complete the exchange for %s: %s", message_type, exc)
                    resync = True
                    more = False
                if more:
                    continue  # the VTN may have more queued: ask again right away
            next_at = max(next_at + delay, loop.time())
            try:
                await asyncio.wait_for(self._reregister.wait(), next_at - loop.time())
            except asyncio.TimeoutError:
                pass
        self._reregister.clear()

    async def _dispatch(self, message_type: str, payload: dict[str, Any]) -> bool:
        """Handle one polled message; True when it carried something (poll again at once)."""
        c = self.client
        if message_type == "":
            return False
        if message_type == "oadrResponse":
            code = _response_code(payload)
            if code is not None and code != 200:
                # 452 and friends: the VTN does not know this venID (e.g. it lost its state).
                log.warning("VTN answered the poll with %s %s; registering again", code,
                            (payload.get("response") or {}).get("response_description", ""))
                self._reregister.set()
            return False
        if message_type == "oadrDistributeEvent":
            await self._handle_distribution(payload)
        elif message_type == "oadrCreateReport":
            await self.reports.handle_create_report(payload)
        elif message_type == "oadrRequestReregistration":
            log.debug("VTN requested re-registration")
            await c._perform_request("EiRegisterParty", c._create_message(
                "oadrResponse", ven_id=c.ven_id, response={"response_code": 200, "response_description": "OK",
                                                          "request_id": None}))
            self._reregister.set()
        elif message_type == "oadrCancelPartyRegistration":
            log.warning("VTN cancelled our registration; registering again")
            self.previous_registration_id = None  # that registration is gone: register anew
            await c._perform_request("EiRegisterParty", c._create_message(
                "oadrCanceledPartyRegistration", ven_id=c.ven_id, registration_id=c.registration_id,
                response={"response_code": 200, "response_description": "OK",
                          "request_id": payload.get("request_id")}))
            self._reregister.set()
        elif message_type == "oadrCancelReport":
            await self.reports.handle_cancel_report(payload)
        elif message_type == "oadrRegisterReport":
            # The VTN offering its own reports: not used by a gateway; answer politely, request none.
            await c._perform_request("EiReport", c._create_message(
                "oadrRegisteredReport", ven_id=c.ven_id, report_requests=[],
                response={"response_code": 200, "response_description": "OK",
                          "request_id": payload.get("request_id")}))
        else:
            log.warning("ignored unexpected %s from the VTN", message_type)
            return False
        return True

    async def _handle_distribution(self, payload: dict[str, Any]) -> None:
        if self.vtn_id and payload.get("vtn_id") != self.vtn_id:
            await self._refuse_foreign_vtn(payload)
            return
        events = payload.get("events") or []
        if not isinstance(events, list):
            log.warning("refused oadrDistributeEvent: events is not a list")
            return
        responses = await self.answers.distribute(events)
        required = {str((e.get("event_descriptor") or {}).get("event_id")): e.get("response_required")
                    for e in events if isinstance(e, dict)}
        event_responses = [
            {"response_code": code, "response_description": "OK" if code == 200 else "ERROR",
             "request_id": payload.get("request_id"), "event_id": event_id,
             "modification_number": mod, "opt_type": opt}
            for event_id, mod, opt, code in responses if required.get(event_id, "always") == "always"]
        if not event_responses:
            return
        c = self.client
        try:
            await c._perform_request("EiEvent", c._create_message(
                "oadrCreatedEvent", ven_id=c.ven_id, event_responses=event_responses,
                response={"response_code": 200, "response_description": "OK",
                          "request_id": payload.get("request_id")}))
        except VtnUnreachable as exc:
            log.warning("could not answer the events (%s); the answers will be sent again", exc)
            self.opts.queue_answers([(str(r["event_id"]), int(r["modification_number"]),  # type: ignore[arg-type]
                                      str(r["opt_type"])) for r in event_responses])
        except VtnError as exc:
            # The VTN refused our answer (e.g. openleadr's VTN gives HTTP 500 for an event it has
            # already dropped); the events themselves were applied. Not worth re-registering for.
            log.warning("the VTN refused our event responses: %s", exc)

    async def _refuse_foreign_vtn(self, payload: dict[str, Any]) -> None:
        """2.0b: a vtnID other than the expected one is answered with an error (452 Invalid ID), and
        nothing in the message is applied."""
        log.warning("refused oadrDistributeEvent from vtnID %r: registered with %r", payload.get("vtn_id"),
                    self.vtn_id)
        c = self.client
        try:
            await c._perform_request("EiEvent", c._create_message(
                "oadrCreatedEvent", ven_id=c.ven_id, event_responses=None,
                response={"response_code": INVALID_ID, "request_id": payload.get("request_id"),
                          "response_description": f"unknown vtnID {payload.get('vtn_id')}"}))
        except VtnError as exc:
            log.warning("could not send the refusal: %s", exc)

    def online(self) -> bool:
        """Registered, and the last poll was answered within 3 poll periods."""
        if not self.registered.is_set() or self.last_poll_ok is None:
            return False
        age = datetime.now(timezone.utc) - self.last_poll_ok
        return age <= 3 * self.poll_period


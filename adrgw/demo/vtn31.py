"""An OpenADR 3.1.0 VTN written from the OpenAPI file, and Debian's mosquitto as its MQTT broker.

The peer of the gateway's 3.1 adapter in tests, benchmarks, ``--demo --protocol 3.1`` and
``--demo-peers --protocol 3.1``. It is a real server (aiohttp over HTTP or HTTPS, an in-memory object
store, OAuth2 client credentials, MQTT and webhook notifications), not a mock: the adapter talks to it
exactly as to a utility's VTN. With ``spec`` given, every request a client sends and every answer and
notification the VTN gives is checked against the spec (:mod:`adrgw.demo.oadr3spec`); what breaks it is
kept in ``vtn.violations`` and ``vtn.assert_valid()`` raises listing it.

Choices where the spec leaves room (each stated so a reader of a failing test knows what to expect):

* Roles: the VEN's credentials (``client_id``/``client_secret``, plus ``more_clients``) give the VEN role;
  ``bl_client_id``/``bl_client_secret`` give the business-logic role (BL). The Python methods
  (``add_program``, ``add_event``...) act as BL on the same store, and notify as API writes do.
* Visibility (scopes read_targets / read_ven_objects): a VEN client sees a program or an event whose
  ``targets`` are empty, or share a value with the client's tags: the venName and the targets of its
  VEN objects and the targets of their resources; an event only when its program is visible too. VENs,
  resources, reports and subscriptions: a VEN client sees those whose clientID is its own. A ``targets``
  query keeps only objects whose targets share a value with it. An object not visible answers 404.
* Writes: programs and events are BL-only (VEN: 403); reports are VEN-only; vens, resources and
  subscriptions: both, a VEN only on its own objects (403). venName is unique (409), as is resourceName
  within a VEN (409). An event's programID and a report's eventID must exist (409: foreign key).
* Lists: ``limit`` defaults to 50 (the spec's maximum), ``skip`` to 0, in creation order.
* Ids are ``<kind>-<n>`` (``event-3``); createdDateTime/modificationDateTime are UTC with milliseconds,
  modificationDateTime strictly increasing per object; objectType is PROGRAM, EVENT, REPORT,
  SUBSCRIPTION, VEN or RESOURCE (see oadr3spec for the ven/resource contradiction in the spec).
* Notifications: the spec's ``notification`` object (objectType, operation CREATE/UPDATE/DELETE, object)
  published with QoS 1, not retained, on the topics of :func:`topics_for` (``OpenADR/3.1.0/...``, as the
  spec's ``{objectType}s/create`` examples and public 3.1 VTNs name them), and POSTed to each matching
  webhook subscription (``Authorization: Bearer <bearerToken>`` when the subscription gave one).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import logging
import math
import secrets
import shutil
import socket
import ssl as ssl_module
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Optional
from urllib.parse import unquote, urlsplit

from aiohttp import ClientSession, ClientTimeout, web

from adrgw.demo.oadr3spec import nulls

log = logging.getLogger("adrgw.vtn31")

BASE_PATH = "/openadr3/3.1.0"
TOPIC_PREFIX = "OpenADR/3.1.0"
MAX_LIMIT = 50
OPERATIONS = ("CREATE", "UPDATE", "DELETE")

#: collection in the URL -> objectType
KINDS = {"programs": "PROGRAM", "events": "EVENT", "reports": "REPORT", "subscriptions": "SUBSCRIPTION",
         "vens": "VEN", "resources": "RESOURCE"}
COLLECTIONS = {kind: coll for coll, kind in KINDS.items()}
_PREFIXES = {"programs": "program", "events": "event", "reports": "report", "subscriptions": "subscription",
             "vens": "ven", "resources": "resource"}
#: snake_case keyword -> the spec's field, for the Python API
_FIELD_NAMES = {"interval_period": "intervalPeriod", "event_name": "eventName", "program_id": "programID",
                "report_descriptors": "reportDescriptors", "payload_descriptors": "payloadDescriptors",
                "program_name": "programName", "program_descriptions": "programDescriptions",
                "ven_name": "venName", "client_id": "clientID", "resource_name": "resourceName",
                "ven_id": "venID"}


def utc_stamp(moment: Optional[datetime] = None) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``, as the VTN writes every date-time."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def topics_for(collection: str, scope: str = "") -> dict[str, str]:
    """The ``notifierOperationsTopics`` of one listing: ``scope`` is "" (every object of the kind),
    ``programs/{id}``, ``vens/{id}`` (one object: no CREATE, as the spec says), or a parent path for a
    child collection (``programs/{id}`` + events, ``vens/{id}`` + events/programs/resources)."""
    if scope and collection == "":
        base = f"{TOPIC_PREFIX}/{scope}"
        return {"UPDATE": f"{base}/update", "DELETE": f"{base}/delete", "ALL": f"{base}/+"}
    base = f"{TOPIC_PREFIX}/{scope + '/' if scope else ''}{collection}"
    return {"CREATE": f"{base}/create", "UPDATE": f"{base}/update", "DELETE": f"{base}/delete",
            "ALL": f"{base}/+"}


class Problem(Exception):
    """An error answer: the spec's ``problem`` body with this status."""

    def __init__(self, status: int, title: str, detail: str = "", **extra: Any) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.extra = status, title, detail, extra

    def response(self, headers: Optional[Mapping[str, str]] = None) -> web.Response:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extra)
        return web.json_response(body, status=self.status, headers=headers)


# ---------------------------------------------------------------------------------------------
# MQTT broker


def mosquitto_path() -> Optional[str]:
    """Debian's broker: on PATH, else /usr/sbin (not on a non-root user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


class MqttBrokerError(Exception):
    """mosquitto is missing or did not start; the message is one line plus its log's tail."""


class MqttBroker:
    """Debian's mosquitto 2.0 as a subprocess on loopback with a generated config.

    Plain MQTT on ``port``; with ``tls=(certfile, keyfile)`` that port speaks MQTTS and a second, plain
    listener on ``plain_port`` lets tests watch the topics without TLS. Anonymous access (the VTN's
    /notifiers says ``ANONYMOUS``), no persistence: a restarted broker starts empty, as after an outage.
    """

    def __init__(self, port: Optional[int] = None, tls: Optional[tuple[str, str]] = None,
                 host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_tcp_port(host)
        self.tls = tls
        self.plain_port = free_tcp_port(host) if tls else self.port
        self._dir = Path(tempfile.mkdtemp(prefix="adrgw-mosquitto-"))
        self._proc: Optional[asyncio.subprocess.Process] = None
        self.log_path = self._dir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def plain_url(self) -> str:
        return f"mqtt://{self.host}:{self.plain_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def _config(self) -> str:
        lines = ["per_listener_settings false", "allow_anonymous true", "persistence false",
                 "log_dest stderr", "log_type error", "log_type warning", "log_type notice",
                 # Run as whoever started it (as root, mosquitto would switch to the user 'mosquitto',
                 # who cannot read the test's private key).
                 "user root", f"listener {self.port} {self.host}"]
        if self.tls:
            certfile, keyfile = self.tls
            lines += [f"certfile {certfile}", f"keyfile {keyfile}", "tls_version tlsv1.2"]
            lines += [f"listener {self.plain_port} {self.host}"]
        return "\n".join(lines) + "\n"

    async def start(self, timeout: float = 10.0) -> None:
        """Spawn mosquitto and return once it accepts TCP connections on every listener."""
        binary = mosquitto_path()
        if binary is None:
            raise MqttBrokerError("mosquitto not found (Debian package 'mosquitto': apt-get install mosquitto)")
        config = self._dir / "mosquitto.conf"
        config.write_text(self._config())
        log_file = self.log_path.open("ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                binary, "-c", str(config), stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file)
        finally:
            log_file.close()
        deadline = time.monotonic() + timeout
        for port in {self.port, self.plain_port}:
            while True:
                if self._proc.returncode is not None:
                    raise MqttBrokerError(f"mosquitto exited with {self._proc.returncode}: {self._log_tail()}")
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, port), 1.0)
                except (OSError, asyncio.TimeoutError):
                    if time.monotonic() > deadline:
                        await self.stop()
                        raise MqttBrokerError(f"mosquitto did not listen on {self.host}:{port} within "
                                              f"{timeout:.0f} s: {self._log_tail()}") from None
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                break
        log.info("MQTT broker (mosquitto) at %s", self.url)

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-3:])
        except OSError:
            return "(no log)"

    async def stop(self) -> None:
        """Terminate mosquitto (SIGTERM, then SIGKILL after 5 s) and wait for it."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


def mqtt_client_args(url: str, ca_file: Optional[str] = None) -> dict[str, Any]:
    """aiomqtt.Client keyword arguments for an ``mqtt://`` or ``mqtts://`` URL."""
    parts = urlsplit(url)
    secure = parts.scheme in ("mqtts", "ssl", "tls")
    args: dict[str, Any] = {"hostname": parts.hostname or "127.0.0.1", "port": parts.port or (8883 if secure else 1883)}
    if secure:
        context = ssl_module.create_default_context(cafile=ca_file)
        args["tls_context"] = context
    return args


# ---------------------------------------------------------------------------------------------
# The VTN


class Vtn31:
    """An OpenADR 3.1.0 VTN on loopback (see the module docstring for its rules).

    Test hooks: ``requests`` ((method, path below the base URL, status) of every request), ``violations``
    and ``assert_valid()``, ``expire_tokens()``, ``fail(prefix, status, times)``, ``pause()``/``resume()``,
    ``notifications`` (every (topic or URL, notification) sent), ``webhook_log``.
    """

    def __init__(self, port: Optional[int] = None, spec: Optional[str | Path] = None, client_id: str = "ven-1",
                 client_secret: str = "secret", token_ttl: float = 3600.0, mqtt: Optional[str] = None,
                 mqtt_ca: Optional[str] = None, ssl: Optional[ssl_module.SSLContext] = None,
                 token_auth: str = "form", host: str = "127.0.0.1", bl_client_id: str = "bl",
                 bl_client_secret: str = "bl-secret", more_clients: Optional[Mapping[str, str]] = None,
                 webhook_ssl: Optional[ssl_module.SSLContext] = None, forbid_nulls: bool = True) -> None:
        if token_auth not in ("form", "basic"):
            raise ValueError("token_auth is 'form' or 'basic'")
        self.host, self.port = host, port or free_tcp_port(host)
        self.ssl, self.token_ttl, self.token_auth = ssl, token_ttl, token_auth
        self.mqtt_url, self.mqtt_ca = mqtt, mqtt_ca
        self.webhook_ssl = webhook_ssl
        self.forbid_nulls = forbid_nulls
        self.clients: dict[str, tuple[str, str]] = {client_id: (client_secret, "VEN"),
                                                    bl_client_id: (bl_client_secret, "BL")}
        for extra_id, extra_secret in (more_clients or {}).items():
            self.clients[extra_id] = (extra_secret, "VEN")
        self.validator: Any = None
        if spec is not None:
            from adrgw.demo.oadr3spec import SpecValidator

            self.validator = SpecValidator(spec)
        self.store: dict[str, dict[str, dict[str, Any]]] = {coll: {} for coll in KINDS}
        self._ids = {coll: itertools.count(1) for coll in KINDS}
        self._tokens: dict[str, tuple[str, str, float]] = {}  # token -> (client_id, role, expires monotonic)
        self._malformed: set[str] = set()  # ids of objects stored invalid on purpose (add_raw_event)
        self.requests: list[tuple[str, str, int]] = []
        self.violations: list[str] = []
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self.webhook_log: list[tuple[str, Any]] = []
        self.report_history: list[tuple[str, dict[str, Any]]] = []  # (POST|PUT, report as stored)
        self.tokens_issued = 0
        self._failures: list[list[Any]] = []  # [prefix, status, remaining]
        self._paused: Optional[str] = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._runner: Optional[web.AppRunner] = None
        self._site: Optional[web.TCPSite] = None
        self._mqtt_queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._mqtt_task: Optional[asyncio.Task[None]] = None
        self.mqtt_connected = asyncio.Event()
        self.mqtt_dropped = 0
        self._hook_queue: asyncio.Queue[tuple[str, Optional[str], dict[str, Any]]] = asyncio.Queue()
        self._hook_task: Optional[asyncio.Task[None]] = None
        self._session: Optional[ClientSession] = None
        #: called with (collection, operation, object) after every change, API or Python (the demo uses it)
        self.on_change: Optional[Callable[[str, str, Mapping[str, Any]], None]] = None

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}{BASE_PATH}"

    @property
    def ven_client_id(self) -> str:
        return next(cid for cid, (_, role) in self.clients.items() if role == "VEN")

    async def start(self, mqtt_timeout: float = 5.0) -> None:
        """Serve, and (with an MQTT broker) connect the publisher, waiting up to ``mqtt_timeout`` for it
        so the first notifications are not dropped."""
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await self._listen()
        self._session = ClientSession(timeout=ClientTimeout(total=5.0))
        self._hook_task = asyncio.get_running_loop().create_task(self._webhook_worker())
        if self.mqtt_url:
            self._mqtt_task = asyncio.get_running_loop().create_task(self._mqtt_worker())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.mqtt_connected.wait(), mqtt_timeout)
        log.info("OpenADR 3.1.0 VTN at %s%s", self.url, f" (MQTT {self.mqtt_url})" if self.mqtt_url else "")

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl, reuse_address=True)
        await self._site.start()

    async def stop(self) -> None:
        self._resumed.set()
        for name, task in (("mqtt", self._mqtt_task), ("webhook", self._hook_task)):
            if task is not None:
                task.cancel()
                await _bounded(asyncio.gather(task, return_exceptions=True), f"stopping the {name} worker")
        self._mqtt_task = self._hook_task = None
        self.mqtt_connected.clear()
        if self._session is not None:
            await _bounded(self._session.close(), "closing the webhook session")
            self._session = None
        if self._runner is not None:
            await _bounded(self._runner.cleanup(), "stopping the HTTP server")
            self._runner = self._site = None

    # -- test hooks

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid: the next call with one gets 401."""
        self._tokens.clear()

    def fail(self, path_prefix: str, status: int, times: int = 1) -> None:
        """The next ``times`` requests whose path (below the base URL, e.g. ``/reports``) starts with
        ``path_prefix`` get ``status`` with a problem body (not checked against the spec: injected)."""
        if path_prefix.startswith(BASE_PATH):
            path_prefix = path_prefix[len(BASE_PATH):]
        self._failures.append([path_prefix, status, times])

    def pause(self, mode: str = "refuse") -> asyncio.Task[None]:
        """An outage. ``refuse``: the listening socket closes (new connections refused) and requests on
        kept-alive connections are dropped; ``stall``: requests are held (the client times out) until
        resume(). Returns a task: await it to know the listener is closed."""
        if mode not in ("refuse", "stall"):
            raise ValueError("pause mode is 'refuse' or 'stall'")
        self._paused = mode
        self._resumed.clear()
        site = self._site

        async def close() -> None:
            if mode == "refuse" and site is not None:
                await site.stop()

        return asyncio.get_running_loop().create_task(close())

    def resume(self) -> asyncio.Task[None]:
        """End the outage; returns a task: await it to know the VTN listens again."""
        mode, self._paused = self._paused, None
        self._resumed.set()

        async def reopen() -> None:
            if mode == "refuse" and self._runner is not None:
                await self._listen()

        return asyncio.get_running_loop().create_task(reopen())

    def assert_valid(self) -> None:
        """Raise AssertionError listing every spec violation seen (requests, answers, notifications)."""
        if self.violations:
            raise AssertionError(f"{len(self.violations)} OpenADR 3.1.0 spec violation(s):\n" +
                                 "\n".join(self.violations))

    def _violation(self, text: str) -> None:
        self.violations.append(text)
        log.warning("spec violation: %s", text)

    # -- the operator's side (BL through the store)

    @property
    def programs(self) -> dict[str, dict[str, Any]]:
        return self.store["programs"]

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        return self.store["events"]

    @property
    def vens(self) -> dict[str, dict[str, Any]]:
        return self.store["vens"]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.store["resources"]

    @property
    def reports(self) -> dict[str, dict[str, Any]]:
        return self.store["reports"]

    @property
    def subscriptions(self) -> dict[str, dict[str, Any]]:
        return self.store["subscriptions"]

    @staticmethod
    def _fields(fields: Mapping[str, Any]) -> dict[str, Any]:
        return {_FIELD_NAMES.get(key, key): value for key, value in fields.items()}

    def _program_id(self, program: str) -> str:
        if program in self.programs:
            return program
        for pid, obj in self.programs.items():
            if obj.get("programName") == program:
                return pid
        raise KeyError(f"no program with id or programName {program!r}")

    def add_program(self, program_name: str, **fields: Any) -> dict[str, Any]:
        """Create a program (as BL); spec field names or their snake_case; None values are left out."""
        body = {"programName": program_name, **self._fields(fields)}
        return copy.deepcopy(self._create("programs", body, self.bl_client_id))

    def add_event(self, program: str, intervals: list[dict[str, Any]],
                  interval_period: Optional[dict[str, Any]] = None, priority: Optional[int] = None,
                  event_name: Optional[str] = None, report_descriptors: Optional[list[dict[str, Any]]] = None,
                  targets: Optional[list[str]] = None, payload_descriptors: Optional[list[dict[str, Any]]] = None,
                  **fields: Any) -> dict[str, Any]:
        """Create an event in ``program`` (id or programName), as BL; notifies like POST /events."""
        body: dict[str, Any] = {"programID": self._program_id(program), "eventName": event_name,
                                "priority": priority, "targets": targets, "reportDescriptors": report_descriptors,
                                "payloadDescriptors": payload_descriptors, "intervalPeriod": interval_period,
                                "intervals": intervals, **self._fields(fields)}
        return copy.deepcopy(self._create("events", body, self.bl_client_id))

    def add_raw_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``event`` as given (ids and metadata added when missing), even when it breaks the schema:
        for the gateway's "malformed objects are refused" tests. Its spec violations are not recorded."""
        obj = dict(event)
        obj.setdefault("id", f"event-{next(self._ids['events'])}")
        now = utc_stamp()
        obj.setdefault("createdDateTime", now)
        obj.setdefault("modificationDateTime", now)
        obj.setdefault("objectType", "EVENT")
        self._malformed.add(str(obj["id"]))
        self.events[str(obj["id"])] = obj
        self._notify("events", "CREATE", obj)
        return copy.deepcopy(obj)

    def add_report(self, body: Mapping[str, Any], client_id: Optional[str] = None) -> dict[str, Any]:
        """Store a report as if ``client_id`` (default: the VEN) had POSTed it, e.g. a VTN that kept a
        POST whose answer the VEN never got. Notifies and appears in ``report_history`` like a POST."""
        obj = self._create("reports", {k: v for k, v in body.items()
                                       if k not in ("id", "createdDateTime", "modificationDateTime", "objectType")},
                           client_id or self.ven_client_id)
        self.report_history.append(("POST", copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    def update_event(self, event_id: str, **fields: Any) -> dict[str, Any]:
        """Change an event's fields (None removes one); bumps modificationDateTime; notifies UPDATE."""
        return copy.deepcopy(self._update_fields("events", event_id, self._fields(fields)))

    def delete_event(self, event_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._delete("events", event_id))

    def update_program(self, program_id: str, **fields: Any) -> dict[str, Any]:
        return copy.deepcopy(self._update_fields("programs", self._program_id(program_id), self._fields(fields)))

    def delete_program(self, program_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._delete("programs", self._program_id(program_id)))

    def update_ven(self, ven_id: str, **fields: Any) -> dict[str, Any]:
        """As BL, e.g. ``update_ven(id, targets=["group-1"])`` (the VEN may then see other events)."""
        return copy.deepcopy(self._update_fields("vens", ven_id, self._fields(fields)))

    def ven_by_name(self, ven_name: str) -> Optional[dict[str, Any]]:
        return next((v for v in self.vens.values() if v.get("venName") == ven_name), None)

    @property
    def bl_client_id(self) -> str:
        return next(cid for cid, (_, role) in self.clients.items() if role == "BL")

    # -- the store

    def _stamp_after(self, previous: Optional[str]) -> str:
        now = datetime.now(timezone.utc)
        if previous is not None:
            earliest = parse_stamp(previous) + timedelta(milliseconds=1)
            if now < earliest:
                now = earliest
        return utc_stamp(now)

    def _create(self, coll: str, body: Mapping[str, Any], client_id: str) -> dict[str, Any]:
        now = utc_stamp()
        obj: dict[str, Any] = {"id": f"{_PREFIXES[coll]}-{next(self._ids[coll])}", "createdDateTime": now,
                               "modificationDateTime": now, "objectType": KINDS[coll]}
        obj.update({k: v for k, v in body.items() if v is not None and k not in obj})
        if coll in ("reports", "subscriptions", "vens", "resources"):
            obj.setdefault("clientID", client_id)
        self._check_object(coll, obj)
        self.store[coll][obj["id"]] = obj
        self._notify(coll, "CREATE", obj)
        return obj

    def _replace(self, coll: str, object_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        old = self.store[coll][object_id]
        obj = {k: old[k] for k in ("id", "createdDateTime", "objectType")}
        obj["modificationDateTime"] = self._stamp_after(old["modificationDateTime"])
        obj.update({k: v for k, v in body.items() if v is not None and k not in obj})
        if "clientID" in old:
            obj.setdefault("clientID", old["clientID"])
        self._check_object(coll, obj)
        self.store[coll][object_id] = obj
        self._notify(coll, "UPDATE", obj, before=old)
        return obj

    def _update_fields(self, coll: str, object_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        if object_id not in self.store[coll]:
            raise KeyError(f"no {KINDS[coll].lower()} {object_id!r}")
        body = {k: v for k, v in self.store[coll][object_id].items()
                if k not in ("id", "createdDateTime", "modificationDateTime", "objectType")}
        body.update(fields)
        self._malformed.discard(object_id)
        return self._replace(coll, object_id, body)

    def _delete(self, coll: str, object_id: str) -> dict[str, Any]:
        obj = self.store[coll].pop(object_id)
        self._notify(coll, "DELETE", obj, before=obj)
        self._malformed.discard(object_id)
        return obj

    def _check_object(self, coll: str, obj: dict[str, Any]) -> None:
        """What the operator's Python calls create is held to the schema too (a test's own mistake shows)."""
        if self.validator is not None:
            for problem in self.validator.check_schema_named(KINDS[coll].lower(), obj, f"stored {obj['id']}"):
                self._violation(problem)

    # -- visibility

    def _client_vens(self, client_id: str) -> list[dict[str, Any]]:
        return [v for v in self.vens.values() if v.get("clientID") == client_id]

    def _ven_tags(self, ven: Mapping[str, Any]) -> set[str]:
        tags = {str(ven.get("venName"))} | set(ven.get("targets") or [])
        for resource in self.resources.values():
            if resource.get("venID") == ven.get("id"):
                tags |= set(resource.get("targets") or [])
        return tags

    def _client_tags(self, client_id: str) -> set[str]:
        tags: set[str] = set()
        for ven in self._client_vens(client_id):
            tags |= self._ven_tags(ven)
        return tags

    def _targeted(self, obj: Mapping[str, Any], tags: set[str]) -> bool:
        targets = obj.get("targets") or []
        return not targets or bool(set(targets) & tags)

    def _visible_to_tags(self, coll: str, obj: Mapping[str, Any], tags: set[str]) -> bool:
        if coll == "programs":
            return self._targeted(obj, tags)
        if coll == "events":
            program = self.programs.get(str(obj.get("programID")))
            return (program is None or self._targeted(program, tags)) and self._targeted(obj, tags)
        return False

    def visible(self, coll: str, obj: Mapping[str, Any], client_id: str, role: str) -> bool:
        """Whether a client may read ``obj`` (see the module docstring)."""
        if role == "BL":
            return True
        if coll in ("programs", "events"):
            return self._visible_to_tags(coll, obj, self._client_tags(client_id))
        return obj.get("clientID") == client_id

    def _ven_sees(self, coll: str, obj: Mapping[str, Any], ven: Mapping[str, Any]) -> bool:
        return self._visible_to_tags(coll, obj, self._ven_tags(ven))

    # -- notifications

    def _topics(self, coll: str, operation: str, obj: Mapping[str, Any],
                before: Optional[Mapping[str, Any]]) -> list[str]:
        op = operation.lower()
        topics = [f"{TOPIC_PREFIX}/{coll}/{op}"]
        oid = obj.get("id")
        if coll == "programs" and operation != "CREATE":
            topics.append(f"{TOPIC_PREFIX}/programs/{oid}/{op}")
        if coll == "events" and obj.get("programID"):
            topics.append(f"{TOPIC_PREFIX}/programs/{obj['programID']}/events/{op}")
        if coll == "vens" and operation != "CREATE":
            topics.append(f"{TOPIC_PREFIX}/vens/{oid}/{op}")
        if coll == "resources" and obj.get("venID"):
            topics.append(f"{TOPIC_PREFIX}/vens/{obj['venID']}/resources/{op}")
        if coll in ("programs", "events"):
            # Per-VEN topics: every VEN that sees the object now, or saw it before this change (so a VEN
            # that no longer sees an event hears of it and finds it gone).
            for ven in self.vens.values():
                if self._ven_sees(coll, obj, ven) or (before is not None and self._ven_sees(coll, before, ven)):
                    topics.append(f"{TOPIC_PREFIX}/vens/{ven['id']}/{coll}/{op}")
        return topics

    def _notify(self, coll: str, operation: str, obj: Mapping[str, Any],
                before: Optional[Mapping[str, Any]] = None) -> None:
        note = {"objectType": KINDS[coll], "operation": operation, "object": copy.deepcopy(dict(obj))}
        if self.validator is not None and str(obj.get("id")) not in self._malformed:
            for problem in self.validator.check_notification(note, f"notification {KINDS[coll]} {operation}"):
                self._violation(problem)
        payload = json.dumps(note).encode()
        if self.mqtt_url:
            for topic in self._topics(coll, operation, obj, before):
                self.notifications.append((topic, note))
                if self.mqtt_connected.is_set():
                    self._mqtt_queue.put_nowait((topic, payload))
                else:
                    self.mqtt_dropped += 1
        if self.on_change is not None:
            try:
                self.on_change(coll, operation, obj)
            except Exception:  # noqa: BLE001 - a hook's error is the hook's, not the request's
                log.exception("VTN: on_change hook failed")
        for sub in list(self.subscriptions.values()):
            for entry in sub.get("objectOperations", []):
                if KINDS[coll] in entry.get("objects", []) and operation in entry.get("operations", []) \
                        and self._subscription_matches(sub, coll, obj, before):
                    self.notifications.append((entry["callbackUrl"], note))
                    self._hook_queue.put_nowait((entry["callbackUrl"], entry.get("bearerToken"), note))

    def _subscription_matches(self, sub: Mapping[str, Any], coll: str, obj: Mapping[str, Any],
                              before: Optional[Mapping[str, Any]]) -> bool:
        program = sub.get("programID")
        if program:
            related = {"programs": obj.get("id"), "events": obj.get("programID")}.get(coll)
            if coll == "reports":
                related = self.events.get(str(obj.get("eventID")), {}).get("programID")
            if related != program:
                return False
        if sub.get("targets") and not set(sub["targets"]) & set(obj.get("targets") or []):
            return False
        client = str(sub.get("clientID"))
        role = self.clients.get(client, ("", "VEN"))[1]
        return self.visible(coll, obj, client, role) or (
            before is not None and self.visible(coll, before, client, role))

    async def _mqtt_worker(self) -> None:
        """Keeps one MQTT connection to the broker, reconnecting after an outage; publishes in order."""
        import aiomqtt

        assert self.mqtt_url is not None
        args = mqtt_client_args(self.mqtt_url, self.mqtt_ca)
        while True:
            try:
                async with aiomqtt.Client(**args, identifier=f"vtn31-{self.port}", timeout=5.0) as client:
                    log.info("VTN: MQTT publisher connected to %s", self.mqtt_url)
                    self.mqtt_connected.set()
                    # Reading the (empty) message stream ends with MqttError as soon as the broker goes,
                    # so a lost broker is noticed at once, not at the next publish.
                    watch = asyncio.get_running_loop().create_task(_drain(client))
                    pending: Optional[asyncio.Task[tuple[str, bytes]]] = None
                    try:
                        while True:
                            pending = asyncio.get_running_loop().create_task(self._mqtt_queue.get())
                            done, _ = await asyncio.wait({pending, watch}, return_when=asyncio.FIRST_COMPLETED)
                            if watch in done:
                                pending.cancel()
                                watch.result()
                                raise aiomqtt.MqttError("disconnected")
                            topic, payload = pending.result()
                            try:
                                await client.publish(topic, payload, qos=1, retain=False, timeout=5.0)
                            except aiomqtt.MqttError:
                                self.mqtt_dropped += 1
                                raise
                    finally:
                        for task in (watch, pending):
                            if task is not None:
                                task.cancel()
                        await asyncio.gather(watch, *([pending] if pending else []), return_exceptions=True)
            except aiomqtt.MqttError as exc:
                if self.mqtt_connected.is_set():
                    log.warning("VTN: MQTT publisher lost %s (%s); retrying", self.mqtt_url, exc)
                self.mqtt_connected.clear()
                while not self._mqtt_queue.empty():  # a real VTN's notifications during an outage are lost
                    self._mqtt_queue.get_nowait()
                    self.mqtt_dropped += 1
                await asyncio.sleep(0.2)

    async def _webhook_worker(self) -> None:
        """POSTs notifications to callback URLs in order, each with a 5 s bound."""
        while True:
            url, token, note = await self._hook_queue.get()
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            assert self._session is not None
            try:
                async with self._session.post(url, json=note, headers=headers,
                                              ssl=self.webhook_ssl if url.startswith("https") else None) as resp:
                    await resp.read()
                    self.webhook_log.append((url, resp.status))
            except (OSError, asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - a peer logs and goes on
                self.webhook_log.append((url, exc))
                log.warning("VTN: webhook %s failed: %s", url, exc)

    # -- HTTP

    def _routes(self, app: web.Application) -> None:
        r = app.router
        b = BASE_PATH
        r.add_get(f"{b}/auth/server", self._auth_server)
        r.add_post(f"{b}/auth/token", self._auth_token)
        r.add_get(f"{b}/notifiers", self._notifiers)
        r.add_get(f"{b}/notifiers/mqtt/topics/{{tail:.+}}", self._topics_answer)
        for coll in KINDS:
            r.add_get(f"{b}/{coll}", self._make(self._search, coll))
            r.add_post(f"{b}/{coll}", self._make(self._post, coll))
            r.add_get(f"{b}/{coll}/{{id}}", self._make(self._get_one, coll))
            r.add_put(f"{b}/{coll}/{{id}}", self._make(self._put, coll))
            r.add_delete(f"{b}/{coll}/{{id}}", self._make(self._delete_one, coll))

    @staticmethod
    def _make(handler: Callable[[web.Request, str], Awaitable[web.StreamResponse]],
              coll: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def bound(request: web.Request) -> web.StreamResponse:
            return await handler(request, coll)
        return bound

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if self._paused == "refuse":
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        if self._paused == "stall":
            await self._resumed.wait()
        path = request.path[len(BASE_PATH):] if request.path.startswith(BASE_PATH) else request.path
        for failure in self._failures:
            if path.startswith(failure[0]) and failure[2] > 0:
                failure[2] -= 1
                self._failures = [f for f in self._failures if f[2] > 0]
                self.requests.append((request.method, path, failure[1]))
                return Problem(failure[1], "injected failure", f"vtn.fail({failure[0]!r})").response()
        op = None
        refused: list[str] = []
        raw = await request.read()
        if self.validator is not None:
            op, values = self.validator.find(request.method, path)
            if op is None:
                self._violation(f"request {request.method} {path}: no such operation in the spec")
            else:
                parsed, media = self._parse_body(raw, request)
                basic = request.headers.get("Authorization", "").lower().startswith("basic ")
                query = [(k, v) for k, v in request.query.items()]
                args = (op, values, query) if parsed is _ABSENT else (op, values, query, parsed, media)
                refused = self.validator.check_request(*args, basic_auth=basic)
                for problem in refused:
                    self._violation(problem)
                if self.forbid_nulls and parsed is not _ABSENT:
                    for where in nulls(parsed):
                        self._violation(f"request {request.method} {op.template}: null sent for {where or '/'} "
                                        "(an unset field is left out)")
        try:
            if refused:  # a strict VTN: what breaks the spec is refused, as a real one would
                raise Problem(400, "Bad Request", "; ".join(refused)[:2000])
            response = await handler(request)
        except Problem as problem:
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if problem.status == 401 else None
            response = problem.response(headers)
        except web.HTTPException as exc:
            response = Problem(exc.status, exc.reason, exc.text or "").response()
        self.requests.append((request.method, path, response.status))
        if self.validator is not None and op is not None and isinstance(response, web.Response):
            try:
                answer = json.loads(response.body) if response.body else None  # type: ignore[arg-type]
            except (TypeError, ValueError):
                answer = response.body
            if isinstance(answer, list):
                answer = [item for item in answer if not (isinstance(item, dict) and item.get("id") in self._malformed)]
            elif isinstance(answer, dict) and answer.get("id") in self._malformed:
                return response
            for problem in self.validator.check_response(op, response.status, answer):
                self._violation(problem)
        return response

    @staticmethod
    def _parse_body(raw: bytes, request: web.Request) -> tuple[Any, Optional[str]]:
        media = request.content_type if raw else None
        if not raw:
            return _ABSENT, None
        if media == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            return dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True)), media
        try:
            return json.loads(raw), media
        except ValueError:
            return raw.decode(errors="replace"), media

    async def _json(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.read())
        except ValueError:
            raise Problem(400, "Bad Request", "the body is not JSON") from None

    def _auth(self, request: web.Request) -> tuple[str, str]:
        """(client_id, role) of a valid bearer token, else Problem 401."""
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise Problem(401, "Unauthorized", "a bearer token is required")
        entry = self._tokens.get(header[7:].strip())
        if entry is None:
            raise Problem(401, "Unauthorized", "the token is not valid")
        client_id, role, expires = entry
        if time.monotonic() >= expires:
            self._tokens.pop(header[7:].strip(), None)
            raise Problem(401, "Unauthorized", "the token has expired")
        return client_id, role

    async def _auth_server(self, request: web.Request) -> web.Response:
        return web.json_response({"tokenURL": f"{self.url}/auth/token"})

    async def _auth_token(self, request: web.Request) -> web.Response:
        """OAuth2 client credentials (RFC 6749 4.4): form body; with token_auth "basic" the client
        authenticates with HTTP Basic (2.3.1) and credentials in the body alone are refused."""
        if request.content_type != "application/x-www-form-urlencoded":
            raise Problem(400, "Bad Request", "the token request is a form (application/x-www-form-urlencoded)",
                          error="invalid_request")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            raise Problem(400, "Bad Request", "grant_type must be client_credentials", error="unsupported_grant_type")
        header = request.headers.get("Authorization", "")
        if self.token_auth == "basic":
            if not header.lower().startswith("basic "):
                return Problem(401, "Unauthorized", "this token endpoint takes HTTP Basic client authentication",
                               error="invalid_client").response({"WWW-Authenticate": 'Basic realm="openadr3"'})
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
                client_id, _, secret = decoded.partition(":")
                client_id, secret = unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
            except (binascii.Error, UnicodeDecodeError):
                raise Problem(400, "Bad Request", "malformed Basic credentials", error="invalid_request") from None
        else:
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        known = self.clients.get(client_id)
        if known is None or not secrets.compare_digest(known[0], secret):
            headers = {"WWW-Authenticate": 'Basic realm="openadr3"'} if self.token_auth == "basic" else None
            return Problem(401, "Unauthorized", "unknown client or wrong secret",
                           error="invalid_client").response(headers)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (client_id, known[1], time.monotonic() + self.token_ttl)
        self.tokens_issued += 1
        return web.json_response({"access_token": token, "token_type": "Bearer",
                                  "expires_in": max(1, math.ceil(self.token_ttl))},
                                 headers={"Cache-Control": "no-store"})

    async def _notifiers(self, request: web.Request) -> web.Response:
        self._auth(request)
        body: dict[str, Any] = {"WEBHOOK": True}
        if self.mqtt_url:
            body["MQTT"] = {"URIS": [self.mqtt_url], "serialization": "JSON",
                            "authentication": {"method": "ANONYMOUS"}}
        return web.json_response(body)

    async def _topics_answer(self, request: web.Request) -> web.Response:
        client_id, role = self._auth(request)
        if not self.mqtt_url:
            raise Problem(404, "Not Found", "this VTN offers no MQTT notifier")
        parts = request.match_info["tail"].split("/")
        bl_only = {"events", "reports", "subscriptions", "vens", "resources"}
        if len(parts) == 1 and parts[0] in KINDS:
            if parts[0] in bl_only and role != "BL":
                raise Problem(403, "Forbidden", f"topics for all {parts[0]} are for the BL role (read_bl)")
            return web.json_response({"topics": topics_for(parts[0])})
        if parts[0] == "programs" and len(parts) in (2, 3) and (len(parts) == 2 or parts[2] == "events"):
            program = self.programs.get(parts[1])
            if program is None or not self.visible("programs", program, client_id, role):
                raise Problem(404, "Not Found", f"no program {parts[1]}")
            if len(parts) == 2:
                return web.json_response({"topics": topics_for("", f"programs/{parts[1]}")})
            return web.json_response({"topics": topics_for("events", f"programs/{parts[1]}")})
        if parts[0] == "vens" and len(parts) in (2, 3):
            ven = self.vens.get(parts[1])
            if ven is None:
                raise Problem(404, "Not Found", f"no ven {parts[1]}")
            if role != "BL" and ven.get("clientID") != client_id:
                raise Problem(403, "Forbidden", "another client's VEN")
            if len(parts) == 2:
                return web.json_response({"topics": topics_for("", f"vens/{parts[1]}")})
            if parts[2] in ("events", "programs", "resources"):
                return web.json_response({"topics": topics_for(parts[2], f"vens/{parts[1]}")})
        raise Problem(404, "Not Found", "no such topic listing")

    # -- collections

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            skip = int(request.query.get("skip", "0"))
            limit = int(request.query.get("limit", str(MAX_LIMIT)))
        except ValueError:
            raise Problem(400, "Bad Request", "skip and limit are integers") from None
        if skip < 0 or limit < 0 or limit > MAX_LIMIT:
            raise Problem(400, "Bad Request", f"skip >= 0, 0 <= limit <= {MAX_LIMIT}")
        return items[skip:skip + limit]

    async def _search(self, request: web.Request, coll: str) -> web.Response:
        client_id, role = self._auth(request)
        query = request.query
        items = [o for o in self.store[coll].values() if self.visible(coll, o, client_id, role)]
        targets = set(query.getall("targets", []))
        if targets:
            items = [o for o in items if set(o.get("targets") or []) & targets]
        for name in ("programID", "eventID", "clientName", "venName", "resourceName", "venID"):
            if name in query:
                wanted = query[name]
                if coll == "reports" and name == "programID":
                    items = [o for o in items if self.events.get(str(o.get("eventID")), {}).get("programID") == wanted]
                else:
                    items = [o for o in items if o.get(name) == wanted]
        if coll == "subscriptions" and "objects" in query:
            kinds = set(query.getall("objects"))
            items = [o for o in items if any(kinds & set(e.get("objects", [])) for e in o.get("objectOperations", []))]
        if coll == "events" and query.get("active") == "true":
            now = datetime.now(timezone.utc)
            items = [o for o in items if (_event_end(o) or now) >= now]
        return web.json_response(self._page(request, items))

    def _visible_or_404(self, coll: str, object_id: str, client_id: str, role: str) -> dict[str, Any]:
        obj = self.store[coll].get(object_id)
        if obj is None or (coll in ("programs", "events") and not self.visible(coll, obj, client_id, role)):
            raise Problem(404, "Not Found", f"no {KINDS[coll].lower()} {object_id}")
        if not self.visible(coll, obj, client_id, role):
            raise Problem(403, "Forbidden", f"{KINDS[coll].lower()} {object_id} belongs to another client")
        return obj

    async def _get_one(self, request: web.Request, coll: str) -> web.Response:
        client_id, role = self._auth(request)
        return web.json_response(self._visible_or_404(coll, request.match_info["id"], client_id, role))

    def _may_write(self, coll: str, role: str) -> None:
        if coll in ("programs", "events") and role != "BL":
            raise Problem(403, "Forbidden", f"only the BL role writes {coll}")
        if coll == "reports" and role != "VEN":
            raise Problem(403, "Forbidden", "only VENs write reports")

    def _check_body(self, coll: str, body: Any, client_id: str, role: str,
                    current: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """The semantic checks a VTN makes beyond the schema; returns the body to store."""
        if not isinstance(body, dict):
            raise Problem(400, "Bad Request", "the body is a JSON object")
        body = dict(body)
        for name in ("id", "createdDateTime", "modificationDateTime"):
            body.pop(name, None)
        own_id = current.get("id") if current else None
        if coll == "vens":
            kind = body.pop("objectType", None)
            if role == "VEN":
                if kind != "VEN_VEN_REQUEST":
                    raise Problem(403, "Forbidden", "a VEN sends objectType VEN_VEN_REQUEST")
                body.pop("targets", None)
                body["clientID"] = client_id
                if current and "targets" in current:
                    body["targets"] = current["targets"]
            name = body.get("venName")
            if not name:
                raise Problem(400, "Bad Request", "venName is required")
            if any(v.get("venName") == name and v["id"] != own_id for v in self.vens.values()):
                raise Problem(409, "Conflict", f"venName {name!r} is taken")
        elif coll == "resources":
            kind = body.pop("objectType", None)
            ven = self.vens.get(str(body.get("venID")))
            if role == "VEN":
                if kind != "VEN_RESOURCE_REQUEST":
                    raise Problem(403, "Forbidden", "a VEN sends objectType VEN_RESOURCE_REQUEST")
                body.pop("targets", None)
                body["clientID"] = client_id
                if current and "targets" in current:
                    body["targets"] = current["targets"]
            if ven is None:
                raise Problem(404, "Not Found", f"no ven {body.get('venID')}")
            if role == "VEN" and ven.get("clientID") != client_id:
                raise Problem(403, "Forbidden", "a resource of another client's VEN")
            name = body.get("resourceName")
            if any(r.get("venID") == ven["id"] and r.get("resourceName") == name and r["id"] != own_id
                   for r in self.resources.values()):
                raise Problem(409, "Conflict", f"resourceName {name!r} exists for ven {ven['id']}")
        elif coll == "events":
            body.pop("objectType", None)
            if str(body.get("programID")) not in self.programs:
                raise Problem(409, "Conflict", f"no program {body.get('programID')}")
        elif coll == "reports":
            body.pop("objectType", None)
            if str(body.get("eventID")) not in self.events:
                raise Problem(409, "Conflict", f"no event {body.get('eventID')}")
            body["clientID"] = client_id
        elif coll == "subscriptions":
            body.pop("objectType", None)
            body["clientID"] = client_id if role == "VEN" else body.get("clientID", client_id)
        else:
            body.pop("objectType", None)
            name = body.get("programName")
            if any(p.get("programName") == name and p["id"] != own_id for p in self.programs.values()):
                raise Problem(409, "Conflict", f"programName {name!r} is taken")
        return body

    async def _post(self, request: web.Request, coll: str) -> web.Response:
        client_id, role = self._auth(request)
        self._may_write(coll, role)
        body = self._check_body(coll, await self._json(request), client_id, role)
        obj = self._create(coll, body, client_id)
        if coll == "reports":
            self.report_history.append(("POST", copy.deepcopy(obj)))
        return web.json_response(obj, status=201)

    async def _put(self, request: web.Request, coll: str) -> web.Response:
        client_id, role = self._auth(request)
        self._may_write(coll, role)
        current = self._visible_or_404(coll, request.match_info["id"], client_id, role)
        body = self._check_body(coll, await self._json(request), client_id, role, current)
        self._malformed.discard(current["id"])
        obj = self._replace(coll, current["id"], body)
        if coll == "reports":
            self.report_history.append(("PUT", copy.deepcopy(obj)))
        return web.json_response(obj)

    async def _delete_one(self, request: web.Request, coll: str) -> web.Response:
        client_id, role = self._auth(request)
        self._may_write(coll, role)
        current = self._visible_or_404(coll, request.match_info["id"], client_id, role)
        return web.json_response(self._delete(coll, current["id"]))


_ABSENT = object()


async def _bounded(step: Awaitable[Any], what: str, timeout: float = 5.0) -> None:
    """One shutdown step, given up after ``timeout`` (logged): a stop never hangs a test."""
    try:
        await asyncio.wait_for(step, timeout)
    except asyncio.TimeoutError:
        log.warning("VTN: %s took over %.0f s; given up", what, timeout)


async def _drain(client: Any) -> None:
    """Iterate an aiomqtt client's messages (none are subscribed): returns or raises on disconnect."""
    async for _ in client.messages:
        pass


def parse_duration(text: str) -> Optional[timedelta]:
    """An ISO 8601 duration of the spec's pattern (no years/months: None), e.g. PT1M, P1DT2H, PT0.5S."""
    import re

    match = re.fullmatch(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text or "")
    if not match:
        return None
    weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def _event_end(event: Mapping[str, Any]) -> Optional[datetime]:
    """When an event's last interval ends, where the event says (for ``active=true``); None: unknown."""
    default = event.get("intervalPeriod") or {}
    end: Optional[datetime] = None
    intervals = event.get("intervals") or []
    for index, interval in enumerate(intervals):
        period = {**default, **(interval.get("intervalPeriod") or {})}
        if "start" not in period or "duration" not in period:
            return None
        duration = parse_duration(period["duration"])
        if duration is None:
            return None
        start = parse_stamp(period["start"])
        if not interval.get("intervalPeriod") and default.get("start"):
            start += duration * index
        candidate = start + duration
        end = candidate if end is None or candidate > end else end
    return end


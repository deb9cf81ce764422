"""``[http] listen``: the read-only web server (status page, /metrics, /healthz) in the gateway's loop.

Thin on purpose: each request gathers the gateway's facts once (facts.py) and hands them to pure
renderers (statusview.py and pages.py, metrics.py, the health verdict). What lives here is the
hardening, because the server shares the loop with the BACnet device and the VEN and must never be
what stops them:

* only GET and HEAD; anything else 405; a request with a body 413; unknown paths 404;
* request line and headers bounded (aiohttp's parser limits), bodies never read;
* at most MAX_CONNECTIONS connections (more are answered 503 and closed at once), each closed after
  CONNECTION_LIFETIME whatever it does (slow clients, slowloris), idle keep-alive after KEEPALIVE;
* each response produced within HANDLER_TIMEOUT, at most RENDERS_AT_ONCE page renders at a time;
* failing to bind is one clear error line and the gateway goes on without the page.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from datetime import datetime
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web
from aiohttp.web_server import Server

from adrgw.core.clock import utc_now
from adrgw.ops.facts import FactSources, collect
from adrgw.ops.metrics import Metrics
from adrgw.ops.pages import render_page
from adrgw.ops.statusview import ChartCache, page_view
from adrgw.persist.history import EventHistory, MeterHistory

log = logging.getLogger("adrgw.web")

MAX_CONNECTIONS = 32  # a status page has a handful of viewers and one Prometheus scraper
CONNECTION_LIFETIME = 15.0  # seconds; a browser reconnects for the next refresh, an attacker is cut off
KEEPALIVE = 5.0  # idle seconds before a keep-alive connection is closed
HANDLER_TIMEOUT = 5.0  # seconds a response may take (sqlite query + render take milliseconds)
RENDERS_AT_ONCE = 2  # pages rendered concurrently: rendering is CPU on the shared loop
MAX_LINE, MAX_FIELD, MAX_HEADERS = 2048, 4096, 32  # request line / header field bytes, header count
ALLOWED_METHODS = ("GET", "HEAD")
# The page is self-contained: forbid the browser to fetch anything at all, scripts included.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
        b"Connection: close\r\n\r\ntoo many connections")

Clock = Callable[[], datetime]

# aiohttp logs every malformed request (too long, bad syntax) with a traceback at ERROR: anyone who can
# reach the port could fill the journal. Those are refused with a 4xx anyway; keep them out of the log.
_protocol_log = logging.getLogger("adrgw.web.protocol")
_protocol_log.setLevel(logging.CRITICAL)


class WebStartError(Exception):
    """The server could not listen; the message is one line for the operator."""


class _Busy(asyncio.Protocol):
    """Answers 503 and closes: what a connection beyond MAX_CONNECTIONS gets."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(BUSY)
        transport.close()


def _refusal(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers={**SECURITY_HEADERS, **headers})


@web.middleware
async def _guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    if request.method not in ALLOWED_METHODS:
        return _refusal(405, "method not allowed: this server is read-only", Allow="GET, HEAD")
    if request.content_length or request.headers.get("Transfer-Encoding"):
        return _refusal(413, "request bodies are not accepted")
    try:
        async with asyncio.timeout(HANDLER_TIMEOUT):
            response = await handler(request)
    except web.HTTPException as exc:
        return _refusal(exc.status, exc.reason)
    except TimeoutError:
        return _refusal(503, "timed out")
    except Exception:  # noqa: BLE001 - a page bug must not reach the loop; said once per request
        log.exception("status server: %s %s failed", request.method, request.path)
        return _refusal(500, "internal error")
    response.headers.update(SECURITY_HEADERS)
    return response


class StatusServer:
    """The aiohttp application and its listening socket, started and stopped with the Gateway."""

    def __init__(self, sources: FactSources, listen: tuple[str, int], meter_history: MeterHistory,
                 event_history: EventHistory, metrics: Metrics, clock: Clock = utc_now) -> None:
        self.sources = sources
        self.listen = listen
        self.meter_history = meter_history
        self.event_history = event_history
        self.metrics = metrics
        self.clock = clock
        self.port: Optional[int] = None  # the bound port (listen port 0 picks a free one)
        self.refused_connections = 0
        self._renders = asyncio.Semaphore(RENDERS_AT_ONCE)
        self._chart = ChartCache()
        self._runner: Optional[web.AppRunner] = None
        self._server: Optional[asyncio.base_events.Server] = None
        app = web.Application(middlewares=[_guard], client_max_size=1024)
        app.router.add_get("/", self.page)
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_get("/healthz", self.healthz)
        self.app = app

    async def start(self) -> None:
        """Listen, or raise WebStartError with one line saying why."""
        host, port = self.listen
        if not ipaddress.IPv4Address(host).is_loopback:
            log.warning("[http] listen %s:%d is not a loopback address: the status page and /metrics are "
                        "reachable from the network (read-only, no authentication)", host, port)
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None, keepalive_timeout=KEEPALIVE,
                               logger=_protocol_log,
                               max_line_size=MAX_LINE, max_field_size=MAX_FIELD, max_headers=MAX_HEADERS)
        await runner.setup()
        server = runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: self._protocol(server), host, port,
                                                    reuse_address=True, backlog=64)
        except OSError as exc:
            await runner.cleanup()
            # asyncio rewords the error ("error while attempting to bind on address ..."): say it plainly.
            detail = os.strerror(exc.errno) if exc.errno else str(exc)
            raise WebStartError(f"[http] listen {host}:{port}: cannot listen ({detail})") from None
        self._runner = runner
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("status page on http://%s:%d/ (also /metrics, /healthz)", host, self.port)

    def _protocol(self, server: Server) -> asyncio.BaseProtocol:
        if len(server.connections) >= MAX_CONNECTIONS:
            self.refused_connections += 1
            return _Busy()
        handler = server()
        asyncio.get_running_loop().call_later(CONNECTION_LIFETIME, self._expire, handler)
        return handler

    @staticmethod
    def _expire(handler: Any) -> None:
        transport = handler.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.shutdown()
            await self._runner.cleanup()
            self._runner = None

    # -- routes -----------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        async with self._renders:
            facts = await collect(self.sources, self.clock)
            view = await page_view(facts, self.meter_history, self.event_history, self._chart)
            body = render_page(view)
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def prometheus(self, request: web.Request) -> web.Response:
        body = self.metrics.render(await collect(self.sources, self.clock))
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def healthz(self, request: web.Request) -> web.Response:
        facts = await collect(self.sources, self.clock)
        health = facts.health()
        body = {"status": health.word, "healthy": health.healthy, "reasons": list(health.reasons),
                "checked_at": facts.at.isoformat()}
        return web.Response(status=200 if health.healthy else 503, text=json.dumps(body),
                            content_type="application/json")

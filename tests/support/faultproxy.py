"""A fault-injecting HTTP proxy between the gateway and a real openleadr VTN (loopback only).

Every request is forwarded to the VTN unchanged; the test decides, per exchange, to hold the reply
back (``delay``: the VTN has processed the request, the gateway's request times out), or to replace
the reply (``rewrite``). It also records what went through (message types), so a test counts
registrations, polls and reports from the outside, as the VTN's operator would.
"""

from __future__ import annotations

import asyncio
import re
from typing import Callable, Optional

import aiohttp
from aiohttp import web

from adrgw.demo.embedded import free_port

_TYPE = re.compile(rb"<(?:\w+:)?(oadr[A-Za-z]+)[\s>]")


def message_type(body: bytes) -> str:
    """The OpenADR message type of a payload (the first oadr* element inside oadrSignedObject)."""
    after = body.split(b"oadrSignedObject", 1)[-1]
    match = _TYPE.search(after)
    return match.group(1).decode() if match else ""


# (request type, reply type, reply body) -> seconds to hold the reply back (0: none)
DelayRule = Callable[[str, str, bytes], float]
# (request type, reply type, reply body) -> replacement body, or None to pass it on
RewriteRule = Callable[[str, str, bytes], Optional[bytes]]


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")  # e.g. http://127.0.0.1:1234 (no path)
        self.port = free_port()
        self.delay: Optional[DelayRule] = None
        self.rewrite: Optional[RewriteRule] = None
        self.seen: list[tuple[str, str]] = []  # (request type, reply type as sent to the gateway)
        self._runner: Optional[web.AppRunner] = None
        self._session: Optional[aiohttp.ClientSession] = None

    def url(self, path: str = "/OpenADR2/Simple/2.0b") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, request_type: str) -> int:
        return sum(1 for req, _ in self.seen if req == request_type)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        assert self._session is not None
        try:
            async with self._session.request(request.method, self.upstream + request.path_qs, data=body,
                                             headers={"content-type": request.headers.get("content-type",
                                                                                          "application/xml")}) as up:
                reply = await up.read()
                status, content_type = up.status, up.content_type
        except (aiohttp.ClientError, asyncio.TimeoutError):
            self.seen.append((message_type(body), "(VTN down)"))
            return web.Response(status=502, text="VTN unreachable")
        req_type, reply_type = message_type(body), message_type(reply)
        if self.rewrite is not None:
            replaced = self.rewrite(req_type, reply_type, reply)
            if replaced is not None:
                reply, reply_type, status, content_type = replaced, message_type(replaced), 200, "application/xml"
        self.seen.append((req_type, reply_type))
        delay = self.delay(req_type, reply_type, reply) if self.delay is not None else 0.0
        if delay:
            await asyncio.sleep(delay)
        return web.Response(body=reply, status=status, content_type=content_type)

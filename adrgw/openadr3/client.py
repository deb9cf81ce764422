"""A thin asyncio OpenADR 3.1.0 client on aiohttp: OAuth2 client credentials and bounded JSON calls.

Why our own and not a library: docs/architecture.md, "OpenADR 3.1 client library". Every call has
one deadline (``[ven] request_timeout``) and a bounded reply size; failures are typed (``VtnError``
subclasses) so callers can tell "the VTN refused" from "the VTN is away"; the body of what comes back
is checked by adrgw/openadr3/wire.py by the caller, which knows what it asked for.

Token: from ``token_url``, else the ``tokenURL`` of ``GET {vtn_url}/auth/server``, else
``{vtn_url}/auth/token``. The request is the spec's form body (grant_type, client_id,
client_secret); a token endpoint that answers 401 with ``WWW-Authenticate: Basic`` gets the
credentials as HTTP Basic (RFC 6749 2.3.1) from then on. The token is renewed a margin before it
expires, and once when a call is answered 401.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from typing import Any, Optional
from urllib.parse import quote

import aiohttp

from adrgw.openadr3 import wire
from adrgw.openadr3.config import Ven31Settings

log = logging.getLogger("adrgw.openadr3")

MAX_REPLY_BYTES = 4 * 1024 * 1024
# Renew this long before the token expires (or at 90 % of a short lifetime).
RENEW_MARGIN = 30.0


class VtnError(Exception):
    """A call to the VTN did not succeed."""


class VtnUnreachable(VtnError):
    """No answer: refused, reset, timed out, TLS failed."""


class VtnHttpError(VtnError):
    """The VTN answered with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class VtnProtocolError(VtnError):
    """The VTN's answer is not what the 3.1.0 spec says it is (refused, logged once by the caller)."""


class NotRegistered(VtnError):
    """The VTN no longer knows our VEN object: the session starts over."""


class NotAuthorized(VtnHttpError):
    """401/403 even with a fresh token: the credentials or the VTN's grants are wrong."""


def ssl_context(settings: Ven31Settings) -> Optional[ssl.SSLContext]:
    """Client TLS for https:// (ca_file, check_hostname, cert/key as client certificate)."""
    if not settings.vtn_url.startswith("https://") and not (settings.token_url or "").startswith("https://"):
        return None
    return client_tls(settings)


def client_tls(settings: Ven31Settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=settings.ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = settings.check_hostname
    if settings.cert and settings.key:
        ctx.load_cert_chain(settings.cert, settings.key)
    return ctx


class Client:
    """JSON calls to one VTN with a bearer token (one aiohttp session, created on first use)."""

    def __init__(self, settings: Ven31Settings) -> None:
        self.settings = settings
        self.base = settings.vtn_url.rstrip("/")
        self.timeout = settings.request_timeout
        self._session: Optional[aiohttp.ClientSession] = None
        self._token: Optional[str] = None
        self._expires_at = 0.0  # monotonic
        self._token_url: Optional[str] = settings.token_url
        self._basic = False  # the token endpoint asked for HTTP Basic
        self._token_lock = asyncio.Lock()
        self.tokens = 0  # tokens obtained, for tests and the log
        self.last_answer: Optional[float] = None  # monotonic time of the last answer (any status)

    # -- plumbing

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(ssl=ssl_context(self.settings) or False, limit=8))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    @property
    def token_valid(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at

    def forget_token(self) -> None:
        self._token = None

    async def _exchange(self, method: str, url: str, what: str, **kwargs: Any) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        """One HTTP exchange: (status, parsed JSON body or None, headers); VtnError when no answer."""
        session = self._session_now()
        try:
            async with asyncio.timeout(self.timeout):
                async with session.request(method, url, **kwargs) as resp:
                    chunks: list[bytes] = []
                    size = 0
                    while True:
                        chunk = await resp.content.read(65536)
                        if not chunk:
                            break
                        size += len(chunk)
                        if size > MAX_REPLY_BYTES:
                            raise VtnProtocolError(f"{what}: reply larger than {MAX_REPLY_BYTES} bytes refused")
                        chunks.append(chunk)
                    status, headers = resp.status, resp.headers
        except TimeoutError:
            raise VtnUnreachable(f"{what}: no answer within {self.timeout:g} s") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise VtnUnreachable(f"{what}: VTN certificate not trusted: {exc.certificate_error}") from None
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            raise VtnUnreachable(f"{what}: {type(exc).__name__}: {exc}") from None
        self.last_answer = time.monotonic()
        raw = b"".join(chunks)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                if 200 <= status < 300:
                    raise VtnProtocolError(f"{what}: the answer is not JSON") from None
                body = raw[:200].decode("utf-8", "replace")
        return status, body, headers

    # -- token

    async def _discover_token_url(self) -> str:
        status, body, _ = await self._exchange("GET", f"{self.base}/auth/server", "GET /auth/server")
        if status == 200 and isinstance(body, dict) and isinstance(body.get("tokenURL"), str) \
                and body["tokenURL"].startswith(("http://", "https://")):
            return str(body["tokenURL"])
        return f"{self.base}/auth/token"

    async def token(self) -> str:
        """A valid bearer token, asking for a new one when needed (one request at a time)."""
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._expires_at:
                return self._token
            if self._token_url is None:
                self._token_url = await self._discover_token_url()
                log.info("OpenADR 3.1 token endpoint: %s", self._token_url)
            s = self.settings
            for _ in range(2):
                form = {"grant_type": "client_credentials"}
                auth = None
                if self._basic:
                    auth = aiohttp.BasicAuth(quote(s.client_id, safe=""), quote(s.secret(), safe=""))
                else:
                    form.update(client_id=s.client_id, client_secret=s.secret())
                status, body, headers = await self._exchange("POST", self._token_url, "token request", data=form,
                                                             auth=auth)
                if status == 401 and not self._basic and "basic" in str(headers.get("WWW-Authenticate", "")).lower():
                    log.info("the token endpoint asks for HTTP Basic client authentication: using it")
                    self._basic = True
                    continue
                break
            if status != 200:
                detail = body.get("error", "") if isinstance(body, dict) else ""
                raise NotAuthorized(f"token request refused: HTTP {status} {detail}".rstrip(), status) \
                    if status in (400, 401, 403) else VtnHttpError(f"token request: HTTP {status}", status)
            try:
                token, expires_in = wire.token_response(body)
            except wire.Invalid as exc:
                raise VtnProtocolError(f"token request: {exc}") from None
            lifetime = expires_in if expires_in is not None else 3600.0
            self._token = token
            self._expires_at = time.monotonic() + lifetime - min(RENEW_MARGIN, lifetime * 0.1)
            self.tokens += 1
            log.debug("new access token, valid %g s", lifetime)
            return token

    # -- API calls

    async def call(self, method: str, path: str, body: Any = None, params: Optional[dict[str, Any]] = None,
                   ok: tuple[int, ...] = (200, 201), missing_ok: bool = False) -> Any:
        """``method`` ``{vtn_url}{path}`` with the token; the parsed JSON answer. A 401 renews the token
        and tries once more; 404 gives None when ``missing_ok``; other statuses raise VtnHttpError."""
        what = f"{method} {path}"
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json"] = wire.compact(body)
        if params:
            kwargs["params"] = params
        for attempt in range(2):
            token = await self.token()
            status, answer, _ = await self._exchange(method, f"{self.base}{path}", what,
                                                     headers={"Authorization": f"Bearer {token}"}, **kwargs)
            if status == 401 and attempt == 0:
                log.info("%s: HTTP 401, renewing the access token", what)
                self.forget_token()
                continue
            break
        if status in ok:
            return answer
        if status == 404 and missing_ok:
            return None
        detail = answer.get("detail") or answer.get("title") if isinstance(answer, dict) else answer
        message = f"{what}: HTTP {status} {str(detail or '')[:160]}".rstrip()
        if status in (401, 403):
            raise NotAuthorized(message, status)
        raise VtnHttpError(message, status)

    async def list_all(self, path: str, params: Optional[dict[str, Any]] = None, page: int = 50,
                       max_items: int = 10000) -> list[Any]:
        """Every object of a search, page by page (skip/limit); VtnProtocolError if not arrays."""
        items: list[Any] = []
        while True:
            answer = await self.call("GET", path, params={**(params or {}), "skip": len(items), "limit": page})
            if not isinstance(answer, list):
                raise VtnProtocolError(f"GET {path}: the answer is not an array")
            items.extend(answer)
            if len(answer) < page or len(items) >= max_items:
                return items

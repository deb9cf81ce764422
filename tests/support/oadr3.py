"""Where the tests find the OpenADR 3.1.0 OpenAPI file, and the 3.1 peers they start.

tests/run.sh extracts the spec from the sdist of the PyPI package ``openadr3==0.5.0`` into
``.cache/openadr3/openadr3.yaml``; ``OPENADR3_SPEC`` names another copy. Without it a test that needs it
is skipped on a developer's machine and FAILS under CI=true (a CI that silently stopped validating would
still look green).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = ROOT / ".cache" / "openadr3" / "openadr3.yaml"


def spec_path() -> Optional[Path]:
    """The spec file: $OPENADR3_SPEC, else .cache/openadr3/openadr3.yaml; None when neither exists."""
    override = os.environ.get("OPENADR3_SPEC")
    candidate = Path(override) if override else DEFAULT_SPEC
    return candidate if candidate.is_file() else None


def require_spec() -> Path:
    """The spec file, or skip (fail under CI=true) saying how to get it."""
    path = spec_path()
    if path is None:
        message = (f"OpenADR 3.1.0 spec not found ({os.environ.get('OPENADR3_SPEC') or DEFAULT_SPEC}): "
                   "tests/run.sh fetches it (pip download openadr3==0.5.0 sdist), or set OPENADR3_SPEC")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_mosquitto() -> str:
    """Debian's mosquitto binary, or skip (fail under CI=true)."""
    from adrgw.demo.vtn31 import mosquitto_path

    found = mosquitto_path()
    if found is None:
        message = "mosquitto not installed (tests/run.sh installs Debian's package 'mosquitto')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class MqttWatcher:
    """Subscribes to ``topic`` (default: everything the VTN publishes) and keeps what arrives, as
    (topic, decoded JSON); ``await watcher.wait_for(pred)`` waits (bounded) for a matching message."""

    def __init__(self, url: str, topic: str = "OpenADR/3.1.0/#", ca_file: Optional[str] = None) -> None:
        self.url, self.topic, self.ca_file = url, topic, ca_file
        self.messages: list[tuple[str, Any]] = []
        self._task: Optional[asyncio.Task[None]] = None
        self._ready = asyncio.Event()
        self._arrived = asyncio.Condition()

    async def __aenter__(self) -> "MqttWatcher":
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 5.0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        import aiomqtt

        from adrgw.demo.vtn31 import mqtt_client_args

        async with aiomqtt.Client(**mqtt_client_args(self.url, self.ca_file), timeout=5.0) as client:
            await client.subscribe(self.topic, qos=1)
            self._ready.set()
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, (bytes, str)) else b""
                async with self._arrived:
                    self.messages.append((str(message.topic), json.loads(payload)))
                    self._arrived.notify_all()

    async def wait_for(self, predicate: Callable[[str, Any], bool], timeout: float = 5.0) -> tuple[str, Any]:
        """The first message (already arrived or arriving within ``timeout``) that ``predicate`` accepts."""
        async def find() -> tuple[str, Any]:
            async with self._arrived:
                while True:
                    for topic, body in self.messages:
                        if predicate(topic, body):
                            return topic, body
                    await self._arrived.wait()
        return await asyncio.wait_for(find(), timeout)


class Oadr3Client:
    """A minimal OpenADR 3 client for testing the VTN itself (the gateway has its own)."""

    def __init__(self, base_url: str, client_id: str = "ven-1", client_secret: str = "secret",
                 ssl: Any = None) -> None:
        self.base_url, self.client_id, self.client_secret, self.ssl = base_url, client_id, client_secret, ssl
        self.token: Optional[str] = None
        self.session: Any = None

    async def __aenter__(self) -> "Oadr3Client":
        import aiohttp

        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.session.close()

    async def login(self) -> dict[str, Any]:
        async with self.session.post(f"{self.base_url}/auth/token", ssl=self.ssl, data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.client_secret}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        self.token = body["access_token"]
        return dict(body)

    async def call(self, method: str, path: str, body: Any = None, params: Any = None,
                   token: Optional[str] = None) -> tuple[int, Any]:
        """(status, parsed JSON) of one request with the bearer token."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        async with self.session.request(method, f"{self.base_url}{path}", json=body, params=params,
                                        headers=headers, ssl=self.ssl) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

"""The gateway as users run it: a separate process from a config file, and --demo; signals stop it
cleanly (exit 0 within the 5 s grace period)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from adrgw.demo.embedded import free_port

from .conftest import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


class Proc:
    """A child process whose stderr lines are collected while the test's loop keeps running."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    async def stop(self, sig: int) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 15)
        await asyncio.wait_for(self._reader, 5)
        return code, time.monotonic() - started


async def spawn(*args: str, cwd: Path, home: Path) -> Proc:
    env = dict(os.environ, HOME=str(home), PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bacnet_server_ven.py"), *args, cwd=str(cwd), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    return Proc(proc)


def config_text(vtn_url: str, gateway_port: int, router_port: int) -> str:
    return f"""
[ven]
ven_name = process-ven
vtn_url = {vtn_url}
request_timeout = 3
retry_max = 2
[bacnet]
address = 127.0.0.1/8
port = {gateway_port}
routes = 12345=127.0.0.1:{router_port}
[meter]
interval = 1
timeout = 0.5
[state]
directory = ./state
[http]
listen = 127.0.0.1:{free_port()}
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_daemon_from_config_reports_and_stops_cleanly_on_signal(vtn, meter, tmp_path, sig) -> None:
    meter.set_value(77.5)
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, gw_port, meter.port))
    proc = await spawn("--log-level", "INFO", cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: proc.has("report delivered"), 20, what="a delivered report")
        await wait_for(lambda: any(v == 77.5 for _, v in vtn.record.readings), 5, what="the value at the VTN")
        assert proc.has(", 77.5 to report") and proc.has("Adding ")
    finally:
        code, took = await proc.stop(sig)
    assert code == 0, "\n".join(proc.lines[-20:])
    assert took < 5.0
    assert not proc.has("Traceback"), "\n".join(proc.lines)
    # openleadr's per-poll INFO chatter is quieted
    assert not any(" openleadr:" in line and " INFO " in line for line in proc.lines)


async def test_demo_shows_registration_reports_and_level_changes(tmp_path) -> None:
    proc = await spawn("--demo", cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: proc.has("ADR-Event-Level -> 1.0"), 40, step=0.2,
                       what="the demo event's first level")
    finally:
        code, took = await proc.stop(signal.SIGINT)
    text = "\n".join(proc.lines)
    assert code == 0, text[-3000:]
    assert "registered with the VTN as venID" in text
    assert "Adding " in text and "report delivered" in text
    assert "Traceback" not in text


async def test_bacnet_port_in_use_is_one_clear_line_and_exit_1(tmp_path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        (tmp_path / "config.ini").write_text(config_text("http://127.0.0.1:9/OpenADR2/Simple/2.0b", port, 47809))
        proc = await spawn(cwd=tmp_path, home=tmp_path)
        code = await asyncio.wait_for(proc.proc.wait(), 30)
        await asyncio.wait_for(proc._reader, 5)
    text = "\n".join(proc.lines)
    assert code == 1, text
    assert f"cannot open BACnet/IP port 127.0.0.1:{port}" in text
    assert "Traceback" not in text

"""--demo-peers: the demo's VTN, router + meter and a building controller on fixed loopback ports; the
config.ini it prints runs a gateway that gets demo events, writes its targets and reports its points."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from adrgw.settings_load import load
from adrgw.demo.peers import PEER_BAS_PORT, PEER_GATEWAY_PORT, PEER_ROUTER_PORT, PEER_VTN_PORT, rehearsal_config

from .support.process import Proc, spawn
from .support.wait import wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.process]


def test_rehearsal_config_is_valid_and_uses_the_documented_ports(tmp_path: Path) -> None:
    (tmp_path / "config.ini").write_text(rehearsal_config())
    s = load(tmp_path / "config.ini")
    assert s.ven.vtn_url == f"http://127.0.0.1:{PEER_VTN_PORT}/OpenADR2/Simple/2.0b"
    assert s.bacnet.port == PEER_GATEWAY_PORT and s.bacnet.routes[0].port == PEER_ROUTER_PORT
    assert {w.address for w in s.writes} == {f"127.0.0.1:{PEER_BAS_PORT}"} and s.reports
    assert 47808 not in (PEER_VTN_PORT, PEER_ROUTER_PORT, PEER_BAS_PORT, PEER_GATEWAY_PORT)
    readme = (ROOT / "README.md").read_text()
    for port in (PEER_VTN_PORT, PEER_ROUTER_PORT, PEER_BAS_PORT, PEER_GATEWAY_PORT):
        assert str(port) in readme, f"port {port} is not documented in README.md"


async def test_a_gateway_rehearses_against_the_printed_config(tmp_path: Path) -> None:
    env = dict(os.environ, HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    peers_proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bacnet_server_ven.py"), "--demo-peers", cwd=str(tmp_path), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    peers = Proc(peers_proc)
    printed: list[str] = []

    async def read_stdout() -> None:
        assert peers_proc.stdout is not None
        async for raw in peers_proc.stdout:
            printed.append(raw.decode())

    reader = asyncio.create_task(read_stdout())
    gateway = None
    try:
        await wait_for(lambda: peers.has("rehearsal peers:"), 30, what="the peers to start")
        await wait_for(lambda: any(line.startswith("directory =") for line in printed), 5, what="the config")
        (tmp_path / "config.ini").write_text("".join(printed))
        gateway = await spawn(cwd=tmp_path, home=tmp_path)
        await wait_for(lambda: gateway.has("ADR-Event-Level -> 1.0"), 40, step=0.2,
                       what="the demo event sent to a VEN named 'rehearsal-ven'")
        await wait_for(lambda: gateway.has("write zone-setpoint: confirmed priorityArray[10] = 74.0"), 10,
                       what="the write target commanded")
        await wait_for(lambda: gateway.has("report delivered"), 15, what="a report")
    finally:
        if gateway is not None:
            code, _ = await gateway.stop(signal.SIGTERM)
            assert code == 0, "\n".join(gateway.lines[-20:])
        peers_code, _ = await peers.stop(signal.SIGINT)
        await asyncio.wait_for(reader, 5)
    assert peers_code == 0, "\n".join(peers.lines[-20:])
    assert peers.has("VTN: registered 'rehearsal-ven' as ven-1") and peers.has("scheduled demo event")
    assert "Traceback" not in "\n".join(peers.lines + gateway.lines)
    # stdout carries only the config (the VTN's banner goes to stderr)
    assert "".join(printed) == rehearsal_config()

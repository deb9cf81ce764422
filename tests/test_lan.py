"""A real LAN in network namespaces this test creates (needs root and iproute2, as CI has):

    10.77.0.10  gateway (bacnet_server_ven.py, a separate process), UDP 47808, NO static routes
    10.77.0.20  BACnet router (UDP 47808) to network 12345 with the meter at MAC 2, and the VTN on :8080
    10.77.0.30  bac-py client, UDP 47808

Everybody on port 47808 and broadcasts on 10.77.0.255, as in a building: the gateway must find the
router by Who-Is-Router-To-Network, and a BAS client must find the gateway by broadcast Who-Is.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from .support.config import config_ini
from .support.lan import HOSTS
from .support.process import Lines, PROBE, ROOT, interop_python
from .support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.process, pytest.mark.interop]


async def test_router_discovery_and_broadcast_who_is_on_a_real_lan(lan, tmp_path) -> None:
    python = interop_python()
    env = dict(os.environ, HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    peer = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", lan["peer"], sys.executable, str(ROOT / "tests" / "support" / "lan_peer.py"),
        HOSTS["peer"], "24", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    peer_out = Lines(peer.stdout)  # type: ignore[arg-type]
    peer_err = Lines(peer.stderr)  # type: ignore[arg-type]
    (tmp_path / "config.ini").write_text(config_ini(
        ven={"ven_name": "lan-ven", "vtn_url": f"http://{HOSTS['peer']}:8080/OpenADR2/Simple/2.0b", "retry_max": 2},
        bacnet={"address": f"{HOSTS['gw']}/24", "device_id": 599}, meter={"interval": 1, "timeout": 0.8}))
    gateway = None
    try:
        try:
            await wait_for(lambda: peer_out.has("READY"), 20, what="router, meter and VTN in their namespace")
        except AssertionError:
            raise AssertionError("\n".join(peer_err.lines[-30:])) from None
        gateway = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", lan["gw"], sys.executable, str(ROOT / "bacnet_server_ven.py"),
            cwd=str(tmp_path), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        gw_out = Lines(gateway.stderr)  # type: ignore[arg-type]
        # Readings of the routed meter reach the VTN without any static route.
        try:
            await wait_for(lambda: any(line.startswith("READING") for line in peer_out.lines), 25,
                           what="a routed meter reading at the VTN")
        except AssertionError:
            raise AssertionError("gateway:\n" + "\n".join(gw_out.lines[-30:]) + "\npeer:\n"
                                 + "\n".join(peer_err.lines[-30:])) from None
        readings = [line.split() for line in peer_out.lines if line.startswith("READING")]
        assert {float(r[2]) for r in readings} == {33.25}
        assert gw_out.has("Adding ") and gw_out.has("registered with the VTN")

        probe = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", lan["client"], python, str(PROBE), "--target", f"{HOSTS['gw']}:47808",
            "--device", "599", "--name", "ADR-Event-Level", "--interface", HOSTS["client"],
            "--port", "47808", "--broadcast", "10.77.0.255", "--who-is-broadcast",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(probe.communicate(), 60)
        assert probe.returncode == 0, err.decode()[-3000:]
        result = json.loads(out.decode().strip().splitlines()[-1])
        assert result["i_am"] == [599], result
        assert result["present_value"] == 0.0
        assert "WRITE_ACCESS_DENIED" in result["write"]
    finally:
        for proc in (gateway, peer):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()
    assert gateway.returncode == 0

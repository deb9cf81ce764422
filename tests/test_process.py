"""The gateway as users run it: a separate process from a config file, and --demo; signals stop it
cleanly (exit 0 within the 5 s grace period)."""

from __future__ import annotations

import asyncio
import signal
import socket

import pytest

from adrgw.demo.embedded import free_port

from .support.config import config_text
from .support.process import spawn
from .support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.process]


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

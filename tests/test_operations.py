"""Operations: systemd notify protocol (READY, STATUS, WATCHDOG, STOPPING in order), the unit file,
--probe against working and failing peers, SIGHUP, log rate-limiting, journald line format."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adrgw.demo.embedded import DemoVtn, free_port
from adrgw.ops.sdnotify import Notifier

from .support.config import config_text, gateway_settings
from .support.process import spawn
from .support.wait import wait_for
from .support.notify import drain, notify_socket

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def test_notifier_is_a_no_op_without_notify_socket() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.ready() and notifier.watchdog_interval is None


def test_notifier_abstract_namespace_and_watchdog_interval() -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "@adrgw-test", "WATCHDOG_USEC": "30000000"})
    assert notifier.address == "\0adrgw-test" and notifier.watchdog_interval == 15.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval is None


@pytest.mark.integration
@pytest.mark.process
async def test_daemon_sends_ready_status_watchdog_then_stopping(vtn, meter, tmp_path) -> None:
    sock, path = notify_socket(tmp_path)
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, gw_port, meter.port))
    os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"] = path, "1000000"  # ping every 0.5 s
    try:
        proc = await spawn(cwd=tmp_path, home=tmp_path)
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    messages: list[str] = []
    try:
        await wait_for(lambda: messages.extend(drain(sock)) or sum("WATCHDOG=1" in m for m in messages) >= 3, 20,
                       what="READY and watchdog pings")
        await wait_for(lambda: messages.extend(drain(sock)) or any("registered as" in m for m in messages), 10,
                       what="a STATUS line with the registration")
    finally:
        code, _ = await proc.stop(signal.SIGTERM)
    messages.extend(drain(sock))
    sock.close()
    assert code == 0
    ready = next(i for i, m in enumerate(messages) if "READY=1" in m)
    first_ping = next(i for i, m in enumerate(messages) if "WATCHDOG=1" in m)
    stopping = next(i for i, m in enumerate(messages) if "STOPPING=1" in m)
    assert ready < first_ping < stopping == len(messages) - 1
    assert any(m.startswith("READY=1") and "STATUS=" in m for m in messages)


@pytest.mark.integration
@pytest.mark.process
async def test_sighup_is_logged_and_ignored(vtn, meter, tmp_path) -> None:
    gw_port = free_port(socket.SOCK_DGRAM)
    (tmp_path / "config.ini").write_text(config_text(vtn.url, gw_port, meter.port))
    proc = await spawn(cwd=tmp_path, home=tmp_path)
    try:
        await wait_for(lambda: proc.has("gateway running"), 15, what="start")
        proc.proc.send_signal(signal.SIGHUP)
        await wait_for(lambda: proc.has("SIGHUP ignored"), 5, what="the SIGHUP log line")
        count = sum("Adding " in line for line in proc.lines)
        await wait_for(lambda: sum("Adding " in line for line in proc.lines) > count, 5, what="samples after SIGHUP")
        assert proc.proc.returncode is None
    finally:
        code, _ = await proc.stop(signal.SIGTERM)
    assert code == 0


@pytest.mark.process
def test_unit_file_passes_systemd_analyze_verify(tmp_path) -> None:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: apt-get install systemd")
        pytest.skip("systemd-analyze is not installed")
    unit = (ROOT / "systemd" / "bacnet-server-ven.service").read_text()
    for needed in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartSec=", "StateDirectory=",
                   "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                   "CapabilityBoundingSet=\n", "-c /etc/adr-gateway/config.ini", "ReadWritePaths=/var/lib/adr-gateway"):
        assert needed in unit, needed
    # verify with the install paths pointed at this checkout (the unit's own paths exist only once installed)
    assert "ExecStart=/opt/adr-gateway/bin/bacnet-server-ven -c" in unit  # the installed console script
    local = (unit.replace("/opt/adr-gateway/bin/bacnet-server-ven", f"{sys.executable} {ROOT / 'bacnet_server_ven.py'}")
             .replace("/etc/adr-gateway/config.ini", str(ROOT / "config.ini")))
    path = tmp_path / "bacnet-server-ven.service"
    path.write_text(local)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "bacnet-server-ven.service" not in result.stderr, result.stderr


# -- --probe ---------------------------------------------------------------------------------------

def probe_config(tmp_path: Path, vtn_url: str, router_port: int, routes: bool = True) -> None:
    text = config_text(vtn_url, free_port(socket.SOCK_DGRAM), router_port)
    if not routes:
        text = text.replace(f"routes = 12345=127.0.0.1:{router_port}\n", "")
    (tmp_path / "config.ini").write_text(text)


async def run_probe(tmp_path: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bacnet_server_ven.py"), "--probe", cwd=str(tmp_path),
        env=dict(os.environ, HOME=str(tmp_path)), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode() + err.decode()


@pytest.mark.integration
async def test_probe_all_pass(vtn, meter, tmp_path) -> None:
    meter.set_value(12.5)
    probe_config(tmp_path, vtn.url, meter.port)
    code, text = await run_probe(tmp_path)
    assert code == 0, text
    assert "4 passed, 0 failed" in text
    assert "= 12.5" in text and "network 12345 via" in text and "answers the registration query" in text
    assert not vtn.record.registrations  # the probe only asks, it does not register


@pytest.mark.integration
async def test_probe_reports_each_failing_peer_with_a_hint(meter, tmp_path) -> None:
    down = DemoVtn(port=free_port())  # never started
    meter.online = False
    probe_config(tmp_path, down.url, meter.port)
    code, text = await run_probe(tmp_path)
    assert code == 1, text
    lines = text.splitlines()
    assert any(line.startswith("meter read") and "FAIL" in line for line in lines), text
    assert any(line.startswith("VTN") and "FAIL" in line for line in lines), text
    assert text.count("hint:") == 2 and "2 passed, 2 failed" in text


@pytest.mark.integration
async def test_probe_without_route_says_how_to_add_one(vtn, meter, tmp_path) -> None:
    probe_config(tmp_path, vtn.url, meter.port, routes=False)
    code, text = await run_probe(tmp_path)
    assert code == 1
    assert any(line.startswith("route to meter") and "FAIL" in line for line in text.splitlines()), text
    assert "set [bacnet] routes = 12345=ROUTER_IP:47808" in text


# -- logs ------------------------------------------------------------------------------------------

@pytest.mark.integration
async def test_repeated_meter_failures_are_rate_limited(vtn, meter, start_gateway, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="adrgw")
    meter.online = False
    gateway = await start_gateway(gateway_settings(vtn.url, meter, tmp_path))
    await wait_for(lambda: gateway.sampler.read_errors >= 6, 15, what="six failed reads")
    meter.online = True
    await wait_for(lambda: gateway.sampler.failures == 0, 5, what="recovery")
    failure_lines = [r for r in caplog.records if "meter read failed" in r.getMessage()
                     or "meter still failing" in r.getMessage()]
    assert len(failure_lines) == 1, [r.getMessage() for r in failure_lines]
    assert any("meter answers again after" in r.getMessage() for r in caplog.records)


def test_journald_lines_carry_no_timestamp(monkeypatch) -> None:
    from adrgw.ops import logsetup

    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    logsetup.setup("INFO")
    formatter = logging.getLogger().handlers[0].formatter
    record = logging.LogRecord("adrgw", logging.INFO, __file__, 1, "ADR-Event-Level -> 2.0", None, None)
    assert formatter.format(record) == "INFO adrgw: ADR-Event-Level -> 2.0"
    monkeypatch.delenv("JOURNAL_STREAM")
    logsetup.setup("INFO")
    assert logging.getLogger().handlers[0].formatter.format(record).endswith("INFO adrgw: ADR-Event-Level -> 2.0")
    assert logging.getLogger().handlers[0].formatter.format(record)[:2] == "20"

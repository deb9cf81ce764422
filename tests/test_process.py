"""The gateway as users run it: a separate process from a config file, and --demo; signals stop it
cleanly (exit 0 within the 5 s grace period)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from adrgw.demo.embedded import free_port

from .support.config import config_text
from .support.process import spawn
from .support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.process]
ROOT = Path(__file__).resolve().parent.parent


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


@contextlib.contextmanager
def holding(*ports: tuple[int, int]) -> Iterator[None]:
    """Hold (socket kind, port) on 127.0.0.1 as another program would. A port some other program
    holds already is just as taken, so a failed bind is fine."""
    held: list[socket.socket] = []
    try:
        for kind, port in ports:
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            held.append(sock)
        yield
    finally:
        for sock in held:
            sock.close()


async def run_status(command: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *shlex.split(command), cwd=str(cwd), env=dict(os.environ, HOME=str(cwd)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.parametrize("sig,protocol", [(signal.SIGTERM, "2.0b"), (signal.SIGINT, "2.0b"), (signal.SIGTERM, "3.1")])
async def test_demo_warns_of_moved_ports_answers_status_and_leaves_nothing_behind(tmp_path, sig, protocol) -> None:
    """Both protocols' demos run the same way (adrgw/demo/embedded.run_demo): ports, demo.ini, the
    --status hint, clean-up; the 3.1 one also moves ADR-Event-Level from its VTN's demo event."""
    temp = tmp_path / "tmp"  # the demo's temporary directory goes here (TMPDIR), to be looked at after
    temp.mkdir()
    with holding((socket.SOCK_STREAM, 8047), (socket.SOCK_DGRAM, 47808)):
        proc = await spawn("--demo", "--protocol", protocol, cwd=tmp_path, home=tmp_path, TMPDIR=str(temp))
        try:
            await wait_for(lambda: proc.has("ask it how it is: "), 30, what="the demo's --status hint")
        except BaseException:
            await proc.stop(signal.SIGKILL)
            raise
    try:
        text = "\n".join(proc.lines)
        assert re.search(r" WARNING adrgw\.demo: UDP 47808 is in use on 127\.0\.0\.1; the demo gateway uses port "
                         r"\d+", text), text
        moved = re.search(r" WARNING adrgw\.demo: TCP 8047 is in use on 127\.0\.0\.1; the demo's status page is "
                          r"on (http://127\.0\.0\.1:(\d+)/)", text)
        assert moved and moved.group(2) != "8047", text
        command = re.search(r"ask it how it is: (.+)$", text, re.M).group(1)
        assert command.endswith("demo.ini") and " --status -c " in command
        config = Path(shlex.split(command)[-1])
        assert config.parent.parent == temp and config.is_file()
        # The status page is where the warning says.
        await wait_for(lambda: proc.has(f"status page on {moved.group(1)} "), 20, what="the status page")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        page = await asyncio.to_thread(opener.open, moved.group(1) + "metrics", timeout=5)
        assert page.status == 200
        # The printed command answers about this very process once its snapshot shows it registered.
        answer = ""

        async def healthy() -> bool:
            nonlocal answer
            code, answer = await run_status(command, tmp_path)
            return code == 0

        deadline = time.monotonic() + 40
        while not await healthy():
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(1.0)
        assert answer.startswith("gateway: healthy"), answer
        assert f"running (pid {proc.proc.pid}," in answer, answer
        assert "registered as " in answer, answer
        if protocol == "3.1":
            await wait_for(lambda: proc.has("ADR-Event-Level -> 1.0"), 40, what="the 3.1 demo event's first level")
    finally:
        code, took = await proc.stop(sig)
    text = "\n".join(proc.lines)
    assert code == 0, text[-3000:]
    assert took < 5.0
    assert "Traceback" not in text
    # Nothing left behind, and no promise of a next start that a temporary demo never has.
    assert not config.parent.exists(), text[-2000:]
    assert not [p.name for p in temp.iterdir() if p.name.startswith("adrgw-demo")]
    assert "for the next start" not in text, text[-2000:]
    assert f"demo: removed its temporary directory {config.parent}" in text, text[-2000:]

"""The gateway as users run it: a separate process (bacnet_server_ven.py) whose stderr lines are
collected while the test's loop keeps running; and the Python 3.13 interpreter with bac-py."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "bacnet_server_ven.py"
PROBE = ROOT / "tests" / "interop" / "bacpy_probe.py"


class Lines:
    """The lines of a child's stream, read in the background."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


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


async def spawn(*args: str, cwd: Path, home: Path, **extra_env: str) -> Proc:
    """bacnet_server_ven.py with ``args`` in ``cwd`` (where its config.ini is), HOME at ``home``;
    ``extra_env``: more environment variables (e.g. TMPDIR)."""
    env = dict(os.environ, HOME=str(home), PYTHONUNBUFFERED="1", **extra_env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), *args, cwd=str(cwd), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    return Proc(proc)


def interop_python() -> str:
    """The Python 3.13 venv with bac-py that tests/run.sh (and the README) create."""
    path = os.environ.get("ADRGW_INTEROP_PYTHON") or str(ROOT / ".venv-interop" / "bin" / "python")
    if not os.path.exists(path):
        message = (f"bac-py interpreter not found at {path}: create it with "
                   "/root/.pyenv/versions/3.13.0/bin/python -m venv .venv-interop && "
                   ".venv-interop/bin/pip install -r tests/interop/requirements.txt")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path

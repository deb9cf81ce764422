"""The command line refuses what it cannot do as asked: two modes at once, -c with a mode that reads
no config, --json without --status. Each is one line on stderr and exit 2, before anything starts
(before this check `--demo --status` started a second demo and `--check --probe` ran only --check).
Run through the real command line, as a user types it."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from adrgw.cli import MODES, NO_CONFIG_MODES

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # A refusal comes before any mode starts; the timeout only ends a mode started by mistake.
    return subprocess.run([sys.executable, str(ROOT / "bacnet_server_ven.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin",
                                                                           "HOME": str(cwd)})


def assert_refused(result: subprocess.CompletedProcess, *named: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1, result.stderr
    assert all(name in lines[0] for name in named), lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("first,second", list(itertools.permutations(MODES, 2)))
def test_two_modes_are_refused_with_one_line_and_exit_2(first: str, second: str, tmp_path: Path) -> None:
    (tmp_path / "config.ini").write_text((ROOT / "config.ini").read_text())
    result = run(first, second, cwd=tmp_path)
    assert_refused(result, first, second)
    assert f": {first} and {second} cannot be used together (" in result.stderr  # in the order given


def test_the_refusal_of_demo_and_status_says_how_to_ask_a_running_demo(tmp_path: Path) -> None:
    result = run("--status", "--demo", cwd=tmp_path)
    assert_refused(result, "--status", "--demo", "--status -c PATH")


@pytest.mark.parametrize("mode", NO_CONFIG_MODES)
def test_config_with_a_mode_that_reads_none_is_refused(mode: str, tmp_path: Path) -> None:
    (tmp_path / "site.ini").write_text((ROOT / "config.ini").read_text())
    assert_refused(run(mode, "-c", "site.ini", cwd=tmp_path), mode, "-c site.ini")


def test_json_without_status_is_one_line(tmp_path: Path) -> None:
    assert_refused(run("--check", "--json", cwd=tmp_path), "--json", "--status")


def test_modes_with_their_own_options_still_run(tmp_path: Path) -> None:
    (tmp_path / "site.ini").write_text((ROOT / "config.ini").read_text())
    checked = run("--check", "-c", "site.ini", "--log-level", "debug", cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.startswith("site.ini: OK"), checked.stderr
    printed = run("--print-config", "--log-level", "WARNING", cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout == (ROOT / "config.ini").read_text()
    status = run("--status", "--json", "-c", "site.ini", cwd=tmp_path)
    assert status.returncode == 1 and "no gateway state" in status.stdout + status.stderr

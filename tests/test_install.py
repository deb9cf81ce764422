"""Installable: `pip install .` in a fresh virtual environment gives the console script
`bacnet-server-ven`; `python bacnet_server_ven.py` keeps working; config lookup; --print-config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adrgw.cli import CONFIG_SEARCH, find_config
from adrgw.config.settings import ConfigError
from adrgw.settings_load import load

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parent.parent
# What a source distribution holds; a copy keeps pip's build files out of the checkout.
SOURCE = ("adrgw", "pyproject.toml", "README.md", "requirements.txt", "config.ini", "bacnet_server_ven.py")


def run(*args: str, cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **env))


@pytest.mark.integration
@pytest.mark.timeout(600)  # pip may download wheels on a cold cache
@pytest.mark.slow
def test_pip_install_in_a_fresh_venv_gives_the_console_script(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    venv = tmp_path / "venv"
    # A fresh venv from the base interpreter (not the test venv), with the pinned requirements:
    # exactly the README's install step. pip's cache makes repeated runs quick.
    base = getattr(sys, "_base_executable", sys.executable)
    made = run(base, "-m", "venv", str(venv), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    pip = run(str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "-r", "requirements.txt",
              ".", cwd=src, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    script = venv / "bin" / "bacnet-server-ven"
    assert script.is_file()
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    version = run(str(script), "--version", cwd=work, HOME=str(home))
    assert version.returncode == 0 and version.stdout.startswith("bacnet-server-ven 1."), version.stderr
    helped = run(str(script), "--help", cwd=work, HOME=str(home))
    assert "/etc/adr-gateway/config.ini" in helped.stdout
    printed = run(str(script), "--print-config", cwd=work, HOME=str(home))
    assert printed.returncode == 0 and printed.stdout == (ROOT / "config.ini").read_text()
    (work / "config.ini").write_text(printed.stdout.replace("192.168.0.10/24", "127.0.0.1/8"))
    checked = run(str(script), "--check", cwd=work, HOME=str(home))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("config.ini: OK") and "warning" not in checked.stdout
    # the installed package runs from site-packages, not from the copied source
    where = run(str(venv / "bin" / "python"), "-c", "import adrgw; print(adrgw.__file__)", cwd=work)
    assert "site-packages" in where.stdout


def test_print_config_is_the_shipped_example_and_valid(tmp_path: Path) -> None:
    result = run(sys.executable, str(ROOT / "bacnet_server_ven.py"), "--print-config", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == (ROOT / "config.ini").read_text()
    (tmp_path / "config.ini").write_text(result.stdout)
    assert load(tmp_path / "config.ini").ven.ven_name == "ven123"


def test_config_lookup_order(tmp_path: Path) -> None:
    local, system = tmp_path / "config.ini", tmp_path / "etc.ini"
    with pytest.raises(ConfigError) as info:
        find_config(None, (str(local), str(system)))
    assert "no config file found" in info.value.problems[0] and str(system) in info.value.problems[0]
    system.write_text("")
    assert find_config(None, (str(local), str(system))) == str(system)
    local.write_text("")
    assert find_config(None, (str(local), str(system))) == str(local)
    assert find_config("other.ini", (str(local), str(system))) == "other.ini"
    assert CONFIG_SEARCH == ("config.ini", "/etc/adr-gateway/config.ini")


@pytest.mark.skipif(os.path.exists("/etc/adr-gateway/config.ini"), reason="this host has a system config")
def test_no_config_anywhere_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run(sys.executable, str(ROOT / "bacnet_server_ven.py"), "--check", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"config.ini: cannot read file: no config file found (looked for {tmp_path.resolve()}/config.ini, "
        "/etc/adr-gateway/config.ini); use -c PATH, or start one with --print-config > config.ini")


def test_without_the_venv_a_hint_instead_of_a_traceback(tmp_path: Path) -> None:
    # -S: no site-packages, as a system python without the requirements
    result = run(sys.executable, "-S", str(ROOT / "bacnet_server_ven.py"), "--check", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "is missing" in result.stderr and ".venv/bin/python bacnet_server_ven.py" in result.stderr

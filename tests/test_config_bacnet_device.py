"""config.ini validation of the [bacnet] device identity and management keys (issue 13): each bad value
is one line naming section and key; --check exits 2 without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from adrgw.settings_load import load

from .support.config import MINIMAL, problems, run_cli, write

pytestmark = pytest.mark.unit


def test_defaults_are_the_projects_own(tmp_path: Path) -> None:
    s = load(write(tmp_path, MINIMAL)).bacnet
    assert (s.vendor_id, s.vendor_name) == (999, "adrgw project")
    assert "ADR gateway" in s.model_name and s.location == "" and s.password == ""
    assert (s.apdu_timeout, s.apdu_retries) == (3000, 3)


def test_integrator_values_are_taken(tmp_path: Path) -> None:
    s = load(write(tmp_path, MINIMAL + "vendor_id = 4242\nvendor_name = Example Integrator\nmodel_name = GW-1\n"
                   "description = Plant 2 ADR\nlocation = Room 101\npassword = s3cret\napdu_timeout = 5000\n"
                   "apdu_retries = 0\n")).bacnet
    assert (s.vendor_id, s.vendor_name, s.model_name) == (4242, "Example Integrator", "GW-1")
    assert (s.description, s.location, s.password, s.apdu_timeout, s.apdu_retries) == \
        ("Plant 2 ADR", "Room 101", "s3cret", 5000, 0)


@pytest.mark.parametrize("line, expected", [
    ("vendor_id = 65536", "config.ini: [bacnet] vendor_id: 65536 is out of range 0..65535"),
    ("vendor_id = acme", "config.ini: [bacnet] vendor_id: 'acme' is not an integer"),
    ("vendor_name = " + "v" * 65, "config.ini: [bacnet] vendor_name: 65 characters, at most 64 allowed"),
    ("model_name = " + "m" * 70, "config.ini: [bacnet] model_name: 70 characters, at most 64 allowed"),
    ("description = " + "d" * 256, "config.ini: [bacnet] description: 256 characters, at most 255 allowed"),
    ("location = a\x07b", "config.ini: [bacnet] location: contains control characters"),
    ("password = " + "p" * 21, "config.ini: [bacnet] password: 21 characters, at most 20 allowed"),
    ("apdu_timeout = 50", "config.ini: [bacnet] apdu_timeout: 50 is out of range 100..60000"),
    ("apdu_retries = 11", "config.ini: [bacnet] apdu_retries: 11 is out of range 0..10"),
])
def test_each_bad_value_has_its_one_line_message(tmp_path: Path, line: str, expected: str) -> None:
    found = problems(tmp_path, MINIMAL + line + "\n")
    assert any(p.startswith(expected) for p in found), found
    assert all("\n" not in p for p in found)


@pytest.mark.process
def test_check_exits_2_without_traceback(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + "vendor_id = -1\npassword = " + "x" * 30 + "\n")
    result = run_cli("--check", "-c", "config.ini", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert "config.ini: [bacnet] vendor_id: -1 is out of range 0..65535" in lines
    assert "config.ini: [bacnet] password: 30 characters, at most 20 allowed (ASHRAE 135 16.1)" in lines
    assert len(lines) == 2

"""[http] listen: default, disabling, and one-line messages for bad values (config.ini style, exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adrgw.config.settings import DEFAULT_HTTP_LISTEN, parse_http_listen
from adrgw.settings_load import load
from .support.config import MINIMAL, problems, run_cli, write

pytestmark = pytest.mark.unit


def test_default_when_the_section_is_absent(tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL)).http.listen == ("127.0.0.1", 8047) == DEFAULT_HTTP_LISTEN


def test_committed_example_listens_on_loopback() -> None:
    s = load(Path(__file__).resolve().parent.parent / "config.ini")
    assert s.http.listen == ("127.0.0.1", 8047) and s.http.loopback


def test_empty_value_disables_the_server(tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL + "[http]\nlisten =\n")).http.listen is None


def test_an_address_and_port_are_taken(tmp_path: Path) -> None:
    s = load(write(tmp_path, MINIMAL + "[http]\nlisten = 0.0.0.0:9100\n"))
    assert s.http.listen == ("0.0.0.0", 9100) and not s.http.loopback


@pytest.mark.parametrize("value, expected", [
    ("localhost:8047", "config.ini: [http] listen: 'localhost' is not an IPv4 address"),
    ("127.0.0.1", "config.ini: [http] listen: '127.0.0.1' is not IP:PORT"),
    ("127.0.0.1:", "config.ini: [http] listen: port '' is not a number in 1..65535"),
    ("127.0.0.1:0", "config.ini: [http] listen: port '0' is not a number in 1..65535"),
    ("127.0.0.1:70000", "config.ini: [http] listen: port '70000' is not a number in 1..65535"),
    ("127.0.0.1:http", "config.ini: [http] listen: port 'http' is not a number in 1..65535"),
    (":8047", "config.ini: [http] listen: ':8047' is not IP:PORT"),
    ("300.1.1.1:8047", "config.ini: [http] listen: '300.1.1.1' is not an IPv4 address"),
])
def test_each_bad_value_has_its_one_line_message(tmp_path: Path, value: str, expected: str) -> None:
    found = problems(tmp_path, MINIMAL + f"[http]\nlisten = {value}\n")
    assert found == [expected] or any(p.startswith(expected) for p in found), found
    assert all("\n" not in p for p in found) and len(found) == 1


def test_unknown_key(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + "[http]\nport = 80\n") == ["config.ini: [http] port: unknown key"]


@given(st.text(max_size=40))
def test_parser_never_crashes_on_any_text(text: str) -> None:
    try:
        result = parse_http_listen(text)
    except ValueError:
        return
    assert result is None or (isinstance(result[0], str) and 1 <= result[1] <= 65535)


@pytest.mark.process
def test_check_prints_where_the_status_page_is(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + "[http]\nlisten = 127.0.0.1:9047\n")
    result = run_cli("--check", "-c", "config.ini", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  status page: http://127.0.0.1:9047/ (also /metrics, /healthz)" in result.stdout.splitlines()
    write(tmp_path, MINIMAL + "[http]\nlisten =\n")
    assert "  status page: off ([http] listen is empty)" in run_cli("--check", "-c", "config.ini",
                                                                     cwd=tmp_path).stdout.splitlines()


@pytest.mark.process
def test_check_with_a_bad_listen_exits_2_without_traceback(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + "[http]\nlisten = everywhere\n")
    result = run_cli("--check", "-c", "config.ini", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [
        "config.ini: [http] listen: 'everywhere' is not IP:PORT (e.g. 127.0.0.1:8047; empty disables the web server)"]

"""The stricter --check: INI syntax errors with line numbers, a BOM accepted, indented lines explained,
"did you mean" for sections, keys and object types, targets in the summary, warnings about this host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.config import inifile
from adrgw.config.check import address_on_host, state_directory_problem
from adrgw.settings_load import load

from .support.config import MINIMAL, problems

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    (tmp_path / "config.ini").write_text(text)
    return subprocess.run([sys.executable, str(ROOT / "bacnet_server_ven.py"), "--check"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.ini"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load(path).ven.ven_name == "ven123"


def test_syntax_error_names_its_line(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "[meter]\ninterval 10\n")
    assert found == ["config.ini: line 7: 'interval 10' is not a [section] header, a 'key = value' line or a comment"]


def test_text_before_any_section_names_its_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "\n; comment\nven_name = x\n" + MINIMAL)
    assert found == ["config.ini: line 3: 'ven_name = x' comes before any [section] header"]


def test_duplicate_key_and_section_name_their_line(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + "port = 1\nport = 2\n") == [
        "config.ini: line 7: [bacnet] port: key appears twice in this section"]
    assert problems(tmp_path, MINIMAL + "[ven]\n") == ["config.ini: line 6: [ven]: section appears twice"]


def test_indented_line_is_explained_not_reported_as_a_bad_value(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "[meter]\ninterval = 10\n  timeout = 3\n")
    assert found == ["config.ini: line 8: [meter] interval: the indented line 'timeout = 3' is read as more "
                     "text of 'interval' (line 7); remove the leading spaces"]


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL.encode() + b"[meter]\nunit = k\xb5W\n") == [
        "config.ini: line 7: not UTF-8 text (save the file as UTF-8)"]


def test_did_you_mean_for_sections_keys_and_object_types(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "prot = 47808\n[meterr]\n[meter]\nobject = analogInptu 2\n"
                        "[write.x]\naddress = 127.0.0.1:47830\nobject = analogValue 5\nvalues = 1=2\nprioity = 9\n")
    assert "config.ini: [bacnet] prot: unknown key; did you mean 'port'?" in found
    assert any(p.startswith("config.ini: [meterr]: unknown section; did you mean 'meter'? (known: ven,")
               for p in found), found
    obj = next(p for p in found if "[meter] object" in p)
    assert obj.startswith("config.ini: [meter] object: unknown object type 'analogInptu'; did you mean "
                          "'analogInput'? (valid: accessCredential, ")
    assert "multiStateValue" in obj and "binaryOutput" in obj
    assert "config.ini: [write.x] prioity: unknown key; did you mean 'priority'?" in found


def test_no_suggestion_when_nothing_is_close() -> None:
    assert inifile.did_you_mean("zzzz", ["port", "address"]) == ""
    assert inifile.did_you_mean("PORT", ["port"]) == "; did you mean 'port'?"


@pytest.mark.process
def test_check_lists_write_and_report_targets(tmp_path: Path) -> None:
    result = check(tmp_path, MINIMAL + "[report.feeder-1]\naddress = 12345:2\nobject = analogInput 1000\n"
                   "[write.zone-sp]\naddress = 127.0.0.1:47830\nobject = analogValue 5\nvalues = 1=74, 2=76\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert ("  write zone-sp: 127.0.0.1:47830 analogValue 5 presentValue @10: level 1=74.0, 2=76.0 "
            "(other levels relinquish)") in lines
    assert "  report feeder-1: 12345:2 analogInput 1000 presentValue -> feeder-1 power_real [kW] x1" in lines


@pytest.mark.process
def test_check_warns_when_the_address_is_not_on_this_host(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a real host.
    result = check(tmp_path, MINIMAL.replace("127.0.0.1/8", "192.0.2.10/24"))
    assert result.returncode == 0, result.stderr
    assert "config.ini: [bacnet] address: warning: 192.0.2.10 is not an address of this host" in result.stdout
    assert address_on_host("127.0.0.1") and not address_on_host("192.0.2.10")


@pytest.mark.process
def test_check_of_the_shipped_example_warns_about_its_address() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bacnet_server_ven.py"), "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "[bacnet] address: warning:" in result.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: the check cannot fail as root")
def test_unwritable_state_directory_warns_as_a_user(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert "not writable" in state_directory_problem(str(locked))


@pytest.mark.process
def test_unwritable_state_directory_warns(tmp_path: Path) -> None:
    """As root every directory is writable; a state 'directory' below a file cannot be created by anyone."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = check(tmp_path, MINIMAL + f"[state]\ndirectory = {blocker}/state\n")
    assert result.returncode == 0, result.stderr
    assert f"config.ini: [state] directory: warning: '{blocker}/state' does not exist and cannot be created" \
        in result.stdout
    assert state_directory_problem(str(blocker)).endswith("exists and is not a directory")
    assert state_directory_problem(str(tmp_path / "new" / "state")) == ""


@pytest.mark.process
def test_check_with_syntax_error_exits_2_without_traceback(tmp_path: Path) -> None:
    result = check(tmp_path, MINIMAL + "[meter\n")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("config.ini: line 6: ")
    assert "Traceback" not in result.stderr


# -- the INI front-end on any text -------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("[]=:;# \tabcx.12\n\ufeff"), max_size=120))
def test_front_end_never_crashes_and_names_lines(text: str) -> None:
    try:
        inifile.parse(text.lstrip("\ufeff"), "config.ini")
    except inifile.ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.startswith("config.ini: ")
            if problem.startswith("config.ini: line "):
                number = int(problem.split()[2].rstrip(":"))
                assert 1 <= number <= text.count("\n") + 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["port", "device_id", "routes"]), st.integers(0, 99)), max_size=5),
       st.integers(1, 4))
def test_every_indented_key_line_is_found_with_its_line_number(pairs: list[tuple[str, int]], indent: int) -> None:
    lines = ["[bacnet]", "address = 127.0.0.1/8"]
    expected = []
    for key, value in pairs:
        lines.append(" " * indent + f"{key} = {value}")
        expected.append(len(lines))
    found = inifile.continuations("\n".join(lines) + "\n")
    assert [c.line for c in found] == expected
    assert all(c.key == "address" and c.key_line == 2 and c.section == "bacnet" for c in found)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["ven_name", "vtn_url", "request_timeout", "check_hostname", "disable_signature"]),
       st.integers(0, 100), st.sampled_from(["delete", "swap", "double"]))
def test_a_one_letter_typo_of_a_key_is_recognised(key: str, seed: int, kind: str) -> None:
    i = 1 + seed % (len(key) - 2)
    if kind == "delete":
        typo = key[:i] + key[i + 1:]
    elif kind == "swap":
        typo = key[:i] + key[i + 1] + key[i] + key[i + 2:]
    else:
        typo = key[:i] + key[i] + key[i:]
    keys = ["ven_name", "vtn_url", "ven_id", "cert", "key", "ca_file", "vtn_fingerprint", "disable_signature",
            "check_hostname", "request_timeout", "retry_max", "status_report"]
    if typo != key:
        assert inifile.did_you_mean(typo, keys) == f"; did you mean {key!r}?"


def test_indentation_follows_configparser_rule() -> None:
    # A whole section indented alike is fine for configparser; only a deeper line continues a value.
    assert inifile.continuations("[meter]\n  interval = 10\n  timeout = 3\n") == []
    (c,) = inifile.continuations("[meter]\n  interval = 10\n    timeout = 3\n")
    assert (c.line, c.key, c.key_line) == (3, "interval", 2)
    inifile.parse("[meter]\n  interval = 10\n  timeout = 3\n", "config.ini")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["[a]", "[b]", "k = 1", "j: 2", "  k = 1", "    x", "\tm = 3", "", "; c",
                                 "  ; c", "  [b]", "v ="]), max_size=12))
def test_continuations_agree_with_configparser(lines: list[str]) -> None:
    """Every multi-line value configparser builds is found, and nothing else."""
    text = "\n".join(lines) + "\n"
    parser = inifile.new_parser()
    try:
        parser.read_string(text)
    except Exception:  # noqa: BLE001 - syntax errors are another test's subject
        return
    multi = {(section, key) for section in parser.sections() for key, value in parser[section].items()
             if value is not None and "\n" in value}
    found = {(c.section, c.key) for c in inifile.continuations(text)}
    assert found == multi

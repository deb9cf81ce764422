"""config.ini validation: every problem on its own line, named by section and key; exit 2; no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.config.settings import ConfigError, parse_routes
from adrgw.openadr.config import measurement_unit
from adrgw.settings_load import load

from .support.config import MINIMAL, problems, run_cli, write

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def test_committed_example_is_valid_and_matches_contract_defaults() -> None:
    s = load(ROOT / "config.ini")
    assert s.ven.ven_name == "ven123"
    assert (s.bacnet.port, s.bacnet.device_id, s.bacnet.device_name) == (47808, 599, "ADR-Gateway")
    assert (s.meter.address, s.meter.object, s.meter.property_id) == ("12345:2", "analogInput 2", "presentValue")
    assert (s.meter.interval, s.meter.timeout, s.meter.resource_id) == (10, 3, "device001")
    assert (s.meter.measurement, s.meter.unit, s.meter.scale) == ("power_real", "kW", 1.0)
    assert s.points.event_level == "ADR-Event-Level"
    assert s.state.directory == "./state" and s.log_level == "INFO"


def test_minimal_config_takes_contract_defaults(tmp_path: Path) -> None:
    s = load(write(tmp_path, MINIMAL))
    assert s.bacnet.routes == () and s.meter.address == "12345:2"
    assert measurement_unit(s.meter.measurement, s.meter.unit) == ("W", "k")


def test_routes_and_addresses_parse(tmp_path: Path) -> None:
    s = load(write(tmp_path, MINIMAL + "routes = 12345=127.0.0.5:47809, 7=10.0.0.1:47808\n"
                   "[meter]\naddress = 12345:0x02\n"))
    assert [(r.network, r.host, r.port) for r in s.bacnet.routes] == [(12345, "127.0.0.5", 47809),
                                                                       (7, "10.0.0.1", 47808)]
    assert s.meter.address == "12345:2" and s.meter.network == 12345


@pytest.mark.parametrize("extra, expected", [
    ("[bacnet]\nport = 70000", "config.ini: [bacnet] port: 70000 is out of range 1..65535"),
    ("[bacnet]\nport = abc", "config.ini: [bacnet] port: 'abc' is not an integer"),
    ("[bacnet]\ndevice_id = 4194303", "config.ini: [bacnet] device_id: 4194303 is out of range 0..4194302"),
    ("[bacnet]\nroutes = 12345", "config.ini: [bacnet] routes: '12345' is not NET=IP:PORT"),
    ("[bacnet]\nroutes = 70000=1.2.3.4:47808", "config.ini: [bacnet] routes: network 70000 is out of range"),
    ("[bacnet]\nroutes = 5=1.2.3.4", "config.ini: [bacnet] routes: '1.2.3.4' has no port"),
    ("[bacnet]\nbbmd = nohost:1", "config.ini: [bacnet] bbmd: 'nohost:1' is not IP:PORT"),
    ("[meter]\naddress = meter.local", "config.ini: [meter] address: 'meter.local' is not a BACnet address"),
    ("[meter]\naddress = 12345:300", "config.ini: [meter] address: MAC 300 is out of range"),
    ("[meter]\nobject = analogBanana 2", "config.ini: [meter] object: unknown object type 'analogBanana'"),
    ("[meter]\nobject = analogInput", "config.ini: [meter] object: 'analogInput' is not 'objectType instance'"),
    ("[meter]\nproperty = colour", "config.ini: [meter] property: unknown property 'colour'"),
    ("[meter]\ninterval = 0", "config.ini: [meter] interval: 0.0 is out of range"),
    ("[meter]\ninterval = nan", "config.ini: [meter] interval: 'nan' is not a finite number"),
    ("[meter]\ninterval = 5\ntimeout = 5", "config.ini: [meter] timeout: 5 s must be shorter than interval"),
    ("[meter]\nmeasurement = power", "config.ini: [meter] measurement: unknown measurement 'power'"),
    ("[meter]\nunit = furlongs", "config.ini: [meter] unit: unit 'furlongs' does not fit measurement"),
    ("[ven]\ncert = /nonexistent.pem\nkey = /nonexistent.key", "config.ini: [ven] cert: file '/nonexistent.pem' does not exist"),
    ("[ven]\nvtn_fingerprint = zz", "config.ini: [ven] vtn_fingerprint: 'zz' is not a fingerprint"),
    ("[ven]\ncheck_hostname = maybe", "config.ini: [ven] check_hostname: 'maybe' is not a boolean"),
    ("[logging]\nlevel = LOUD", "config.ini: [logging] level: 'LOUD' is not one of"),
    ("[bacnet]\ncolour = blue", "config.ini: [bacnet] colour: unknown key"),
    ("[extras]\na = 1", "config.ini: [extras]: unknown section"),
    ("[report.feeder]\naddress = 12345:2", "config.ini: [report.feeder] object: required but missing"),
    ("[report.feeder]\naddress = 12345:2\nobject = analogInput 5\nunit = furlongs",
     "config.ini: [report.feeder] unit: unit 'furlongs' does not fit"),
    ("[write.fan]\naddress = 2:5\nobject = binaryValue 6\npriority = 2\nvalues = 1=active",
     "config.ini: [write.fan] priority: 2 is reserved for life safety"),
    ("[write.fan]\naddress = 2:5\nobject = binaryValue 6\nvalues = 1=maybe",
     "config.ini: [write.fan] values: level 1: 'maybe' is not active or inactive"),
])
def test_each_bad_value_has_its_one_line_message(tmp_path: Path, extra: str, expected: str) -> None:
    # Merge the override into the minimal file (a repeated section is itself an error).
    base = {"ven": ["ven_name = ven123", "vtn_url = http://127.0.0.1:8080/OpenADR2/Simple/2.0b"],
            "bacnet": ["address = 127.0.0.1/8"]}
    section, *lines = extra.splitlines()
    base.setdefault(section.strip("[]"), []).extend(lines)
    text = "\n".join(f"[{name}]\n" + "\n".join(body) for name, body in base.items())
    found = problems(tmp_path, text)
    assert any(p.startswith(expected) for p in found), found
    assert all("\n" not in p for p in found)


def test_missing_required_keys_are_all_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, "[ven]\n[bacnet]\naddress = 10.0.0.1\n")
    assert "config.ini: [ven] ven_name: required but missing" in found
    assert "config.ini: [ven] vtn_url: required but missing" in found
    assert any(p.startswith("config.ini: [bacnet] address: '10.0.0.1' is not in CIDR form") for p in found)


def test_cert_without_key(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    found = problems(tmp_path, MINIMAL.replace("[bacnet]", f"cert = {cert}\n[bacnet]"))
    assert "config.ini: [ven] key: cert and key must be given together" in found


def test_missing_file_and_garbage_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.ini")
    assert info.value.problems[0].endswith("cannot read file: No such file or directory")
    found = problems(tmp_path, "this is not ini")
    assert found == ["config.ini: line 1: 'this is not ini' comes before any [section] header"]


def test_report_and_write_sections_parse(tmp_path: Path) -> None:
    s = load(write(tmp_path, MINIMAL + "[report.feeder-1]\naddress = 12345:3\nobject = analogInput 7\n"
                   "measurement = energy_real\nunit = kWh\nscale = 0.5\n"
                   "[write.sp]\naddress = 127.0.0.1:47830\nobject = analogValue 5\nvalues = 1=74, 2=76.5\n"))
    (point,) = s.reports
    assert (point.name, point.resource_id, point.address, point.instance, point.scale) == (
        "feeder-1", "feeder-1", "12345:3", 7, 0.5)
    assert measurement_unit(point.measurement, point.unit) == ("Wh", "k")
    (target,) = s.writes
    assert target.priority == 10 and target.value_for(2.0) == 76.5 and target.value_for(0.0) is None


def test_measurement_units() -> None:
    assert measurement_unit("power_real", "kW") == ("W", "k")
    assert measurement_unit("power_real", "W") == ("W", "none")
    assert measurement_unit("energy_real", "MWh") == ("Wh", "M")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_route_parser_never_crashes_on_any_text(text: str) -> None:
    try:
        parse_routes(text)
    except ValueError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_loader_turns_any_text_into_settings_or_problems(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "config.ini"
    path.write_bytes(text.encode("utf-8", "replace"))
    try:
        load(path)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith(str(path)) for p in exc.problems)


# -- the command line, as a user runs it -------------------------------------------------------------

@pytest.mark.process
def test_check_ok_prints_summary_and_exits_0() -> None:
    result = run_cli("--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config.ini: OK")


@pytest.mark.process
def test_check_bad_config_exits_2_one_line_per_problem_no_traceback(tmp_path: Path) -> None:
    write(tmp_path, "[ven]\nven_name = x\nvtn_url = ftp://x\n[bacnet]\naddress = 1.2.3.4/8\nport = 0\n")
    result = run_cli("--check", "-c", "config.ini", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert "config.ini: [bacnet] port: 0 is out of range 1..65535" in lines
    assert any(line.startswith("config.ini: [ven] vtn_url: 'ftp://x' is not an http") for line in lines)
    assert len(lines) == 2


@pytest.mark.process
def test_running_with_bad_config_also_exits_2(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "missing.ini"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "missing.ini: cannot read file" in result.stderr


@pytest.mark.process
def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and "bacnet_server_ven.py 1." in result.stdout

"""Config per adapter: read from the source, adrgw/config and adrgw/core import no protocol library
(the adapters contribute their config parts); ``[ven] protocol`` accepted and refused through --check."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_LIBRARIES = ("openleadr", "bacpypes3", "BAC0")
# adrgw/config reaches the adapters only through the parts settings_load hands it; it may use the core.
ADAPTERS = ("adrgw.openadr", "adrgw.bacnet", "adrgw.demo", "adrgw.ops", "adrgw.persist", "adrgw.settings_load",
            "adrgw.app", "adrgw.cli")
MINIMAL = """[ven]
ven_name = ven123
vtn_url = http://127.0.0.1:8080/OpenADR2/Simple/2.0b
[bacnet]
address = 127.0.0.1/8
"""


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth (function-level ones included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: {module}"
            for path in sorted((ROOT / "adrgw" / package).rglob("*.py"))
            for line, module in imported_modules(path)
            if any(module == f or module.startswith(f + ".") for f in forbidden)]


@pytest.mark.parametrize("package", ["config", "core"])
def test_config_and_core_import_no_protocol_library(package: str) -> None:
    assert offending(package, PROTOCOL_LIBRARIES) == []


def test_config_imports_no_adapter() -> None:
    assert offending("config", ADAPTERS) == []


def test_the_walk_finds_a_function_level_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from bacpypes3.basetypes import ObjectType\n    import openleadr.enums\n")
    assert [m for _, m in imported_modules(source)] == ["bacpypes3.basetypes", "bacpypes3.basetypes.ObjectType",
                                                        "openleadr.enums"]


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.ini").write_text(text)
    return subprocess.run([sys.executable, str(ROOT / "bacnet_server_ven.py"), "--check", "-c", "config.ini"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("line", ["", "protocol =\n", "protocol = 2.0b\n"])
def test_ven_protocol_2_0b_is_accepted_and_the_default(tmp_path: Path, line: str) -> None:
    result = check(tmp_path, MINIMAL.replace("[bacnet]", line + "[bacnet]"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config.ini: OK")


@pytest.mark.parametrize("value, expected", [
    ("4.0", "config.ini: [ven] protocol: '4.0' is not a supported protocol (supported: 2.0b, 3.1)"),
    ("2.0B", "config.ini: [ven] protocol: '2.0B' is not a supported protocol; did you mean '2.0b'? "
             "(supported: 2.0b, 3.1)"),
])
def test_any_other_protocol_is_one_line_and_exit_2(tmp_path: Path, value: str, expected: str) -> None:
    result = check(tmp_path, MINIMAL.replace("[bacnet]", f"protocol = {value}\n[bacnet]"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [expected]
    assert "Traceback" not in result.stderr


def test_loaded_settings_carry_the_protocol(tmp_path: Path) -> None:
    from adrgw.settings_load import load

    (tmp_path / "config.ini").write_text(MINIMAL)
    assert load(tmp_path / "config.ini").ven.protocol == "2.0b"

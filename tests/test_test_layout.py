"""The tests' own shape: helpers live in tests/support/, fixtures in tests/conftest.py, and no test file
imports another test file (or conftest), so moving or splitting one never breaks the others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
TESTS = Path(__file__).resolve().parent
TIERS = {"unit", "integration", "process", "interop", "slow"}


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement names, relative ones written as 'tests.<name>'."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
            elif node.module:
                found.append((node.lineno, f"tests.{node.module}"))
            else:  # from . import x
                found.extend((node.lineno, f"tests.{alias.name}") for alias in node.names)
    return found


def _forbidden(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "tests" and len(parts) > 1 and (parts[1].startswith("test_") or parts[1] == "conftest")


@pytest.mark.parametrize("path", sorted([*TESTS.glob("test_*.py"), *TESTS.glob("support/*.py")]),
                         ids=lambda p: str(p.relative_to(TESTS)))
def test_no_test_file_imports_another_test_file(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    bad = [f"{path.name}:{line}: imports {module}" for line, module in _imported_modules(tree) if _forbidden(module)]
    assert not bad, "move shared helpers into tests/support/:\n" + "\n".join(bad)


def test_conftest_holds_fixtures_only() -> None:
    """Fixtures and pytest hooks: a helper there could only be reached by importing conftest."""
    tree = ast.parse((TESTS / "conftest.py").read_text())
    helpers = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
               and not node.name.startswith("pytest_")  # hooks
               and not any("fixture" in ast.unparse(d) for d in node.decorator_list)]
    assert not helpers, f"helpers belong in tests/support/: {helpers}"


def test_every_test_file_declares_its_tier() -> None:
    """A module-level ``pytestmark`` naming at least one tier, so ``pytest -m unit`` selects by tier."""
    missing = []
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        marks = [ast.unparse(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)]
        if not any(f"mark.{tier}" in mark for mark in marks for tier in TIERS):
            missing.append(path.name)
    assert not missing, f"no tier in pytestmark: {missing}"


def test_the_check_itself_can_fail() -> None:
    tree = ast.parse("from .test_process import spawn\nimport tests.test_config\nfrom .support.process import spawn\n")
    assert [m for _, m in _imported_modules(tree) if _forbidden(m)] == ["tests.test_process", "tests.test_config"]

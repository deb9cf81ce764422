"""The shape docs/architecture.md describes, read from the source (ast, nothing imported or run).

Every import counts: at module level, under ``if TYPE_CHECKING:`` and inside functions (a lazy
import is still a dependency, and a type-only back-reference is how cycles came back before).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "adrgw"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Third-party stacks and the only sub-packages that may import them (the demo and its peers use both).
CONFINED = {
    "openleadr": ("adrgw.openadr", "adrgw.demo"),
    "bacpypes3": ("adrgw.bacnet", "adrgw.demo"),
    "BAC0": ("adrgw.bacnet", "adrgw.demo"),
}
# Who may import the composition root: the command line and the demo, which run it.
APP_IMPORTERS = ("adrgw.cli", "adrgw.demo")
# The layers (docs/architecture.md): which sub-packages each sub-package may import. The modules at the
# top (app, cli, links, settings_load) and the demo compose them and may import any.
LAYERS = {
    "core": set(),
    "config": {"core"},
    "persist": {"core"},
    "bacnet": {"core", "config", "persist"},
    "openadr": {"core", "config", "persist"},
    "ops": {"core", "config", "persist"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def imports(name: str) -> Iterator[tuple[str, int]]:
    """Every module ``name`` imports (absolute names, adrgw's own resolved to modules), with its line."""
    path = MODULES[name]
    package = name if name in PACKAGES else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                # ``from adrgw.ops import snapshot`` imports the module adrgw.ops.snapshot.
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node.lineno


def own(target: str) -> str | None:
    """The adrgw module ``target`` names (a package's __init__ counts as the package), else None."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


GRAPH: dict[str, set[str]] = {
    name: {m for t, _ in imports(name) if t.split(".")[0] == "adrgw" and (m := own(t)) and m != name}
    for name in MODULES
}


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The rule below can fail: a two-module cycle and a longer one are found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_import_walk_sees_type_checking_and_function_level_imports(tmp_path: Path) -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from adrgw.app import Gateway\n"
              "def f():\n    from adrgw.ops import snapshot\n")
    names = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}
    assert {"adrgw.app", "adrgw.ops"} <= names  # what imports() walks: every ImportFrom node
    assert "adrgw.ops.snapshot" in MODULES and own("adrgw.ops.snapshot.write") == "adrgw.ops.snapshot"


def test_no_import_cycle_in_adrgw() -> None:
    assert len(MODULES) > 40
    assert cycles(GRAPH) == []


def test_the_core_imports_only_the_core_and_the_standard_library() -> None:
    wrong = [f"{name}:{line} imports {target}" for name in MODULES if within(name, ("adrgw.core",))
             for target, line in imports(name)
             if not (within(target, ("adrgw.core",)) or target.split(".")[0] in sys.stdlib_module_names
                     or target == "__future__")]
    assert wrong == []


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_protocol_libraries_are_imported_only_by_their_adapter(library: str) -> None:
    allowed = CONFINED[library]
    wrong = [f"{name}:{line} imports {target}" for name in MODULES if not within(name, allowed)
             for target, line in imports(name) if target.split(".")[0] == library]
    assert wrong == []


def test_each_layer_imports_only_the_layers_below_it() -> None:
    def layer(name: str) -> str:
        parts = name.split(".")
        return parts[1] if len(parts) > 2 or name in PACKAGES and len(parts) == 2 else ""

    wrong = [f"{name} imports {dep}" for name, deps in GRAPH.items() if layer(name) in LAYERS
             for dep in deps if dep != "adrgw" and layer(dep) != layer(name) and layer(dep) not in LAYERS[layer(name)]]
    assert wrong == []
    assert set(LAYERS) <= {name.split(".")[1] for name in PACKAGES if name.count(".") == 1}


def test_only_the_command_line_and_the_demo_import_the_composition_root() -> None:
    wrong = [name for name, deps in GRAPH.items() if "adrgw.app" in deps and not within(name, APP_IMPORTERS)]
    assert wrong == []


def test_the_ops_side_reads_facts_not_the_gateway() -> None:
    """Nothing under adrgw/ops imports the composition root nor an adapter's link: the page,
    /metrics, --status and systemd's STATUS get the facts (ops/facts.py)."""
    wrong = [f"{name} imports {dep}" for name, deps in GRAPH.items() if within(name, ("adrgw.ops",))
             for dep in deps if within(dep, ("adrgw.app", "adrgw.openadr", "adrgw.bacnet", "adrgw.links"))]
    assert wrong == []


def repository_text_files() -> Iterator[Path]:
    skip = {"node_modules", "__pycache__"}
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT).parts
        if any(part.startswith(".") or part in skip or part.endswith("-state") for part in rel[:-1]):
            continue
        if path.is_file() and path.suffix in {".py", ".md", ".ini", ".toml", ".txt", ".sh", ".service", ".cfg",
                                              ".yml", ".yaml", ".json", ""}:
            yield path


def test_nothing_cites_a_design_document_outside_the_repository() -> None:
    """The code and docs cite documents in the repository (docs/architecture.md), not a design
    note that only some machines had."""
    name = "DESIGN" + ".md"
    citing = [str(p.relative_to(ROOT)) for p in repository_text_files()
              if name in p.read_text(errors="replace")]
    assert citing == []


def test_every_sub_package_is_named_in_the_architecture_document() -> None:
    text = ARCHITECTURE.read_text()
    subpackages = sorted(name.split(".")[1] for name in PACKAGES if name.count(".") == 1)
    assert subpackages and {"core", "openadr", "bacnet", "persist", "ops", "config", "demo"} <= set(subpackages)
    missing = [s for s in subpackages if f"adrgw/{s}/" not in text]
    assert missing == []

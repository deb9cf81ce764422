"""The README's commands are real: every shell snippet marked ``<!-- readme-test -->`` runs (in a scratch
folder laid out like a checkout with its venv), and a ``<!-- readme-test: output -->`` text block is
exactly what the snippet before it printed.

Only marked snippets run, so later additions to the README (systemd steps, commands needing a real site)
do not break this test; mark a new snippet when it works on loopback without root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adrgw.demo.peers import rehearsal_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
MARK = "<!-- readme-test -->"
OUTPUT_MARK = "<!-- readme-test: output -->"
_BLOCK = re.compile(r"(<!-- readme-test(?:: output)? -->)\n```(\w+)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    """(marker, body) of each marked block, in README order."""
    text = (ROOT / "README.md").read_text()
    return [(m.group(1), m.group(3)) for m in _BLOCK.finditer(text)]


def scratch_checkout(tmp_path: Path) -> Path:
    """A folder where `.venv/bin/python bacnet_server_ven.py ...` works as in a checkout."""
    work = tmp_path / "checkout"
    (work / ".venv" / "bin").mkdir(parents=True)
    python = work / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (work / "bacnet_server_ven.py").symlink_to(ROOT / "bacnet_server_ven.py")
    (work / "adrgw").symlink_to(ROOT / "adrgw")
    return work


def test_readme_has_marked_snippets_and_outputs() -> None:
    found = blocks()
    assert sum(marker == MARK for marker, _ in found) >= 1
    assert sum(marker == OUTPUT_MARK for marker, _ in found) >= 1
    assert found[0][0] == MARK, "an output block must follow a snippet"


@pytest.mark.process
def run_snippets(work: Path, home: Path) -> None:
    """Run the marked snippets in ``work`` in README order, comparing each output block."""
    last_output = None
    for marker, body in blocks():
        if marker == OUTPUT_MARK:
            assert last_output is not None
            assert last_output == body, (
                "README sample output differs from what the command prints now; update the README:\n"
                + last_output)
            continue
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=work, capture_output=True,
                                text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(home)})
        assert result.returncode == 0, f"README snippet failed:\n{body}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        last_output = result.stdout


def test_readme_snippets_run_and_print_what_the_readme_shows(tmp_path: Path) -> None:
    work = scratch_checkout(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    run_snippets(work, home)


# What the README's first two commands create in a checkout: the venv of the first; tests/run.sh's
# interop venv and npm packages, pytest's and hypothesis's caches, the benchmarks' results; and what
# `pip install .` (the service install) leaves in the source folder.
SETUP_OUTPUTS = (".venv/", ".venv-interop/", "tests/interop/js/node_modules/", ".pytest_cache/", ".hypothesis/",
                 "bench/results/", "build/", "adr_gateway.egg-info/", "adrgw/__pycache__/")
_REDIRECT = re.compile(r"(?<![\d&>])>\s*([A-Za-z0-9_.][\w./-]*)")


def readme_created_names() -> set[str]:
    """Files the README's shell commands write into the checkout: each `> NAME` of its sh blocks, and
    the `[state] directory` of the configs they make (the example config, the rehearsal config)."""
    text = (ROOT / "README.md").read_text()
    names = {m.group(1) for block in re.findall(r"```sh\n(.*?)```", text, re.S) for m in _REDIRECT.finditer(block)}
    assert {"site.ini", "rehearsal.ini"} <= names, names  # the parsing still finds the README's commands
    for config in ((ROOT / "config.ini").read_text(), rehearsal_config()):
        directory = re.search(r"^directory = (\S+)$", config, re.M)
        assert directory, config
        names.add(os.path.normpath(directory.group(1)) + "/")
    return names


def ignored(paths: list[str], scratch: Path) -> set[str]:
    """Those of ``paths`` the repository's .gitignore ignores. Judged by git in a scratch repository
    holding only that .gitignore (the checkout's own .venv may be a symlink git refuses to look past)."""
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")  # no personal excludes
    if not (scratch / ".git").exists():
        scratch.mkdir(exist_ok=True)
        subprocess.run(["git", "init", "-q", str(scratch)], check=True, timeout=30, env=env)
        shutil.copy(ROOT / ".gitignore", scratch / ".gitignore")
    result = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=scratch, input="\n".join(paths),
                            capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.splitlines())


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
def test_what_the_readme_commands_create_is_ignored_by_git(tmp_path: Path) -> None:
    names = sorted(readme_created_names() | set(SETUP_OUTPUTS))
    paths = [p for name in names for p in ((name, name + "gateway.sqlite3") if name.endswith("/") else (name,))]
    rules = tmp_path / "rules"
    missing = [p for p in paths if p not in ignored(paths, rules)]
    assert not missing, f"add to .gitignore (git status would show them after the README's commands): {missing}"
    # And for real: whatever the marked snippets leave in a scratch checkout is ignored.
    work = scratch_checkout(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    scaffolding = {".venv", "bacnet_server_ven.py", "adrgw"}
    run_snippets(work, home)
    created = [str(p.relative_to(work)) + ("/" if p.is_dir() else "") for p in work.iterdir()
               if p.name not in scaffolding]
    assert "site.ini" in created
    assert not [p for p in created if p not in ignored(created, rules)], created

"""The README's commands are real: every shell snippet marked ``<!-- readme-test -->`` runs (in a scratch
folder laid out like a checkout with its venv), and a ``<!-- readme-test: output -->`` text block is
exactly what the snippet before it printed.

Only marked snippets run, so later additions to the README (systemd steps, commands needing a real site)
do not break this test; mark a new snippet when it works on loopback without root.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
def test_readme_snippets_run_and_print_what_the_readme_shows(tmp_path: Path) -> None:
    work = scratch_checkout(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
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

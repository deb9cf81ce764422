"""Each benchmark runs end to end on a tiny input (figures are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.process, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bench").glob("bench_*.py")))
def test_benchmark_runs_quick(script: str, tmp_path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Python" in result.stdout and "Traceback" not in result.stderr

"""Where the tests find the OpenADR 3.1.0 OpenAPI file, and the 3.1 peers they start.

tests/run.sh extracts the spec from the sdist of the PyPI package ``openadr3==0.5.0`` into
``.cache/openadr3/openadr3.yaml``; ``OPENADR3_SPEC`` names another copy. Without it a test that needs it
is skipped on a developer's machine and FAILS under CI=true (a CI that silently stopped validating would
still look green).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = ROOT / ".cache" / "openadr3" / "openadr3.yaml"


def spec_path() -> Optional[Path]:
    """The spec file: $OPENADR3_SPEC, else .cache/openadr3/openadr3.yaml; None when neither exists."""
    override = os.environ.get("OPENADR3_SPEC")
    candidate = Path(override) if override else DEFAULT_SPEC
    return candidate if candidate.is_file() else None


def require_spec() -> Path:
    """The spec file, or skip (fail under CI=true) saying how to get it."""
    path = spec_path()
    if path is None:
        message = (f"OpenADR 3.1.0 spec not found ({os.environ.get('OPENADR3_SPEC') or DEFAULT_SPEC}): "
                   "tests/run.sh fetches it (pip download openadr3==0.5.0 sdist), or set OPENADR3_SPEC")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_mosquitto() -> str:
    """Debian's mosquitto binary, or skip (fail under CI=true)."""
    from adrgw.demo.vtn31 import mosquitto_path

    found = mosquitto_path()
    if found is None:
        message = "mosquitto not installed (tests/run.sh installs Debian's package 'mosquitto')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found

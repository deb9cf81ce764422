"""A real LAN in network namespaces (needs root and iproute2, as CI has): the addresses of its hosts
and the namespace commands; the ``lan`` fixture in tests/conftest.py builds it."""

from __future__ import annotations

import subprocess

HOSTS = {"gw": "10.77.0.10", "peer": "10.77.0.20", "client": "10.77.0.30"}


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)

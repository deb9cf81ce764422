#!/usr/bin/env python3
"""ADR gateway entry point: OpenADR 2.0b VEN + BACnet/IP device. See README.md.

The same program is installed as the console script ``bacnet-server-ven`` (pyproject.toml).
"""

import sys

try:
    from adrgw.cli import main
except ModuleNotFoundError as exc:  # run with a python that lacks the requirements (not the venv's)
    print(f"bacnet_server_ven.py: Python module {exc.name!r} is missing for {sys.executable}: run "
          "it with the virtual environment's python (.venv/bin/python bacnet_server_ven.py), or install "
          "the gateway (pip install .) and run bacnet-server-ven", file=sys.stderr)
    sys.exit(1)

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""ADR gateway entry point: OpenADR 2.0b VEN + BACnet/IP device. See README.md."""

import sys

from adrgw.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""Command line: python bacnet_server_ven.py [-c PATH] [--check] [--demo] [--log-level L] [--version]."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Optional, Sequence

from . import __version__
from .config import LOG_LEVELS, ConfigError, load, summary

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bacnet_server_ven.py",
        description="OpenADR 2.0b VEN to BACnet/IP gateway: publishes the active demand-response "
                    "event level as a BACnet point and reports a BACnet meter to the VTN.")
    p.add_argument("-c", "--config", default="config.ini", metavar="PATH",
                   help="configuration file (default: config.ini in the current directory)")
    p.add_argument("--check", action="store_true",
                   help="validate the configuration, print a summary and exit (2 when invalid)")
    p.add_argument("--probe", action="store_true",
                   help="commissioning check: read the meter once, look for its route, contact the VTN "
                        "once; print a table; exit 0 only when all pass")
    p.add_argument("--demo", action="store_true",
                   help="run with a built-in VTN, BACnet router and simulated meter on loopback")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
                   help="DEBUG, INFO, WARNING, ERROR or CRITICAL (overrides [logging] level)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    from . import logsetup

    from .bacnet import BacnetStartError
    from .store import StoreError

    startup_errors = (BacnetStartError, StoreError)

    if args.demo:
        logsetup.setup(args.log_level or "INFO")
        from .demo import run_demo

        try:
            return asyncio.run(run_demo(args.log_level or "INFO"))
        except startup_errors as exc:
            print(f"bacnet_server_ven.py: {exc}", file=sys.stderr)
            return EXIT_FAILURE

    try:
        settings = load(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        print("\n".join(summary(settings)))
        return EXIT_OK
    if args.probe:
        logsetup.setup(args.log_level or "WARNING")
        from .probe import run_probe

        return asyncio.run(run_probe(settings))

    logsetup.setup(args.log_level or settings.log_level)
    from .app import Gateway, run_until_signal

    try:
        return asyncio.run(run_until_signal(Gateway(settings)))
    except startup_errors as exc:
        print(f"bacnet_server_ven.py: {exc}", file=sys.stderr)
        return EXIT_FAILURE

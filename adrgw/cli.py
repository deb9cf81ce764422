"""Command line of the gateway: ``bacnet-server-ven`` (installed) or ``python bacnet_server_ven.py``.

One parser for every mode: run (default), ``--check``, ``--probe``, ``--status``, ``--print-config``,
``--demo`` and ``--demo-peers``. User mistakes end as one line per problem and exit 2, never a
traceback (DESIGN.md section 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from .config import LOG_LEVELS, ConfigError, Settings, load

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

# Where the config is looked for when -c is not given, in this order.
CONFIG_SEARCH = ("config.ini", "/etc/adr-gateway/config.ini")


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and not name.startswith("-") and name != "__main__.py" else "bacnet-server-ven"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=_prog(),
        description="OpenADR 2.0b VEN to BACnet/IP gateway: publishes the active demand-response "
                    "event level as a BACnet point and reports a BACnet meter to the VTN.",
        epilog=f"Without -c the config is {CONFIG_SEARCH[0]} in the current directory if it exists, "
               f"else {CONFIG_SEARCH[1]}. Exit codes: 0 ok / healthy, 1 failure / degraded, 2 config error.")
    p.add_argument("-c", "--config", default=None, metavar="PATH",
                   help=f"configuration file (default: ./{CONFIG_SEARCH[0]}, else {CONFIG_SEARCH[1]})")
    p.add_argument("--check", action="store_true",
                   help="validate the configuration, print a summary and warnings about this host, exit "
                        "(2 when invalid)")
    p.add_argument("--probe", action="store_true",
                   help="commissioning check: read the meter once, look for its route, contact the VTN "
                        "once; print a table; exit 0 only when all pass")
    p.add_argument("--status", action="store_true",
                   help="how the gateway running with this config is, read from its state directory "
                        "(read-only, safe beside it); exit 0 healthy, 1 degraded or not running")
    p.add_argument("--json", action="store_true", help="with --status: print JSON for scripts")
    p.add_argument("--print-config", action="store_true",
                   help="print the commented example config.ini (e.g. --print-config > config.ini)")
    p.add_argument("--demo", action="store_true",
                   help="run with a built-in VTN, BACnet router and simulated meter on loopback")
    p.add_argument("--demo-peers", action="store_true",
                   help="run only the demo's VTN, router + meter and a building controller on fixed "
                        "loopback ports and print a config.ini for them (rehearse a site config)")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
                   help="DEBUG, INFO, WARNING, ERROR or CRITICAL (overrides [logging] level)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def find_config(explicit: Optional[str], search: Sequence[str] = CONFIG_SEARCH) -> str:
    """The config file to use: ``-c PATH`` as given, else the first of ``search`` that exists.

    ConfigError when -c is absent and none exists (one line naming where we looked)."""
    if explicit:
        return explicit
    for candidate in search:
        if os.path.isfile(candidate):
            return candidate
    looked = ", ".join(str(Path(c).resolve()) if not os.path.isabs(c) else c for c in search)
    raise ConfigError([f"{search[0]}: cannot read file: no config file found (looked for {looked}); "
                       "use -c PATH, or start one with --print-config > config.ini"])


def example_config() -> str:
    """The commented example config.ini shipped with the package (the repository's config.ini)."""
    return resources.files("adrgw").joinpath("example_config.ini").read_text(encoding="utf-8")


def _startup_errors() -> tuple[type[Exception], ...]:
    """Errors that end a start with one line and exit 1. Imported only when starting: --check,
    --status and --print-config do not load the BACnet stack (BAC0 writes ~/.BAC0 at import)."""
    from .bacnet import BacnetStartError
    from .store import StoreError

    return (BacnetStartError, StoreError)


def _load(args: argparse.Namespace) -> Settings:
    return load(find_config(args.config))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.json and not args.status:
        parser.error("--json goes with --status")
    from . import logsetup

    if args.print_config:
        sys.stdout.write(example_config())
        return EXIT_OK

    if args.demo_peers:
        logsetup.setup(args.log_level or "INFO")
        from .peers import run_peers

        return asyncio.run(run_peers())

    if args.demo:
        logsetup.setup(args.log_level or "INFO")
        from .demo import run_demo

        startup_errors = _startup_errors()

        try:
            return asyncio.run(run_demo(args.log_level or "INFO"))
        except startup_errors as exc:
            print(f"{_prog()}: {exc}", file=sys.stderr)
            return EXIT_FAILURE

    try:
        settings = _load(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        from .check import report

        print("\n".join(report(settings)))
        return EXIT_OK
    if args.status:
        from . import status

        return status.run(settings.state.directory, args.json)  # a closed pipe ends quietly
    if args.probe:
        logsetup.setup(args.log_level or "WARNING")
        from .probe import run_probe

        return asyncio.run(run_probe(settings))

    logsetup.setup(args.log_level or settings.log_level)
    from .app import Gateway, run_until_signal

    startup_errors = _startup_errors()

    try:
        return asyncio.run(run_until_signal(Gateway(settings)))
    except startup_errors as exc:
        print(f"{_prog()}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


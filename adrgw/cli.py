"""Command line of the gateway: ``bacnet-server-ven`` (installed) or ``python bacnet_server_ven.py``.

One parser for every mode: run (default), ``--check``, ``--probe``, ``--status``, ``--print-config``,
``--demo`` and ``--demo-peers``. User mistakes end as one line per problem and exit 2, never a
traceback: a technician fixes a config from the messages alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence

from adrgw import __version__
from adrgw.config.settings import LOG_LEVELS, ConfigError, Settings
from adrgw.settings_load import load

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

# Where the config is looked for when -c is not given, in this order.
CONFIG_SEARCH = ("config.ini", "/etc/adr-gateway/config.ini")

# The modes: each option makes the command do one different job, so two of them together are refused
# (before this check `--demo --status` started a second demo and `--check --probe` silently ran only
# --check). Option -> (argparse dest, what the mode does, for the one-line refusal).
MODES: dict[str, tuple[str, str]] = {
    "--check": ("check", "validates a config and exits"),
    "--probe": ("probe", "tests a config's real peers once"),
    "--status": ("status", "reads how a running gateway is"),
    "--print-config": ("print_config", "prints the example config"),
    "--demo": ("demo", "runs a gateway on built-in peers"),
    "--demo-peers": ("demo_peers", "runs only the rehearsal peers"),
}
# Modes that read no config file: -c with them would be silently ignored, so it is refused too.
NO_CONFIG_MODES = ("--print-config", "--demo", "--demo-peers")
# A hint added to the refusal of one pair, where the user probably meant something else.
PAIR_HINTS: dict[frozenset[str], str] = {
    frozenset({"--demo", "--status"}): "; to ask a running --demo how it is, run the '--status -c PATH' "
                                       "command its log prints",
    frozenset({"--check", "--probe"}): "; run --check first, then --probe",
}


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and not name.startswith("-") and name != "__main__.py" else "bacnet-server-ven"


class _Mode(argparse.Action):
    """A mode flag (store_true) that also records the order modes were given in, so a refusal names
    them as the user typed them."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: Optional[str] = None) -> None:
        setattr(namespace, self.dest, True)
        given = list(getattr(namespace, "modes_given", None) or [])
        name = self.option_strings[-1]
        if name not in given:
            given.append(name)
        namespace.modes_given = given


def usage_problem(args: argparse.Namespace) -> Optional[str]:
    """The one-line reason ``args`` cannot run (two modes, -c with a mode that reads no config,
    --json without --status), or None. cli.main prints it and exits 2."""
    given: list[str] = list(getattr(args, "modes_given", None) or [])
    if len(given) >= 2:
        first, second = given[0], given[1]
        return (f"{first} and {second} cannot be used together ({first} {MODES[first][1]}; "
                f"{second} {MODES[second][1]}): run one at a time"
                f"{PAIR_HINTS.get(frozenset({first, second}), '')}")
    if args.config is not None and given and given[0] in NO_CONFIG_MODES:
        return f"{given[0]} reads no config file, so -c {args.config} would be ignored: leave -c out"
    if args.json and not args.status:
        return "--json goes with --status"
    if getattr(args, "protocol", None) is not None and not (given and given[0] in ("--demo", "--demo-peers")):
        return ("--protocol goes with --demo or --demo-peers (a gateway's protocol is [ven] protocol in its "
                "config)")
    return None


def _shell_path(path: str) -> str:
    """``path`` as short as it stays valid from the current folder (``.venv/bin/python`` rather
    than the absolute path), quoted for a shell."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        relative = path
    return shlex.quote(relative if not relative.startswith("..") else os.path.abspath(path))


def invocation() -> str:
    """How this process was started, as a command a user can paste in the same folder: the demo
    prints ``<this> --status -c PATH`` and that must work however the demo was started (from a
    checkout with ``.venv/bin/python bacnet_server_ven.py``, or the installed console script)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0.endswith(".py"):
        return f"{_shell_path(sys.executable)} {_shell_path(argv0)}"
    name = os.path.basename(argv0)
    found = shutil.which(name) if name else None
    if found and argv0 and os.path.exists(argv0) and os.path.samefile(found, argv0):
        return name  # on PATH: the short name works anywhere
    return _shell_path(argv0) if argv0 else "bacnet-server-ven"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=_prog(),
        description="OpenADR 2.0b VEN to BACnet/IP gateway: publishes the active demand-response "
                    "event level as a BACnet point and reports a BACnet meter to the VTN.",
        epilog=f"Without -c the config is {CONFIG_SEARCH[0]} in the current directory if it exists, "
               f"else {CONFIG_SEARCH[1]}. Exit codes: 0 ok / healthy, 1 failure / degraded, 2 config error.")
    p.add_argument("-c", "--config", default=None, metavar="PATH",
                   help=f"configuration file (default: ./{CONFIG_SEARCH[0]}, else {CONFIG_SEARCH[1]})")
    p.add_argument("--check", action=_Mode,
                   help="validate the configuration, print a summary and warnings about this host, exit "
                        "(2 when invalid)")
    p.add_argument("--probe", action=_Mode,
                   help="commissioning check: read the meter once, look for its route, contact the VTN "
                        "once; print a table; exit 0 only when all pass")
    p.add_argument("--status", action=_Mode,
                   help="how the gateway running with this config is, read from its state directory "
                        "(read-only, safe beside it); exit 0 healthy, 1 degraded or not running")
    p.add_argument("--json", action="store_true", help="with --status: print JSON for scripts")
    p.add_argument("--print-config", action=_Mode,
                   help="print the commented example config.ini (e.g. --print-config > config.ini)")
    p.add_argument("--demo", action=_Mode,
                   help="run with a built-in VTN, BACnet router and simulated meter on loopback")
    p.add_argument("--demo-peers", action=_Mode,
                   help="run only the demo's VTN, router + meter and a building controller on fixed "
                        "loopback ports and print a config.ini for them (rehearse a site config)")
    p.add_argument("--protocol", choices=("2.0b", "3.1"), default=None,
                   help="with --demo or --demo-peers: the OpenADR version the demo VTN speaks (default 2.0b)")
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
    from adrgw.bacnet.device import BacnetStartError
    from adrgw.persist.store import StoreError

    return (BacnetStartError, StoreError)


def _load(args: argparse.Namespace) -> Settings:
    return load(find_config(args.config))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    problem = usage_problem(args)
    if problem is not None:
        print(f"{_prog()}: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    from adrgw.ops import logsetup

    if args.print_config:
        sys.stdout.write(example_config())
        return EXIT_OK

    if args.demo_peers:
        logsetup.setup(args.log_level or "INFO")
        if args.protocol == "3.1":
            from adrgw.demo.demo31 import run_peers31

            return asyncio.run(run_peers31())
        from adrgw.demo.peers import run_peers

        return asyncio.run(run_peers())

    if args.demo:
        logsetup.setup(args.log_level or "INFO")
        from adrgw.demo.embedded import run_demo

        startup_errors = _startup_errors()

        try:
            if args.protocol == "3.1":
                from adrgw.demo.demo31 import run_demo31

                try:
                    return asyncio.run(run_demo31(args.log_level or "INFO", command=invocation()))
                except ConfigError as exc:  # a gateway without the 3.1 adapter refuses protocol = 3.1
                    for line in exc.problems:
                        print(line, file=sys.stderr)
                    return EXIT_CONFIG
            return asyncio.run(run_demo(args.log_level or "INFO", command=invocation()))
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
        from adrgw.config.check import report

        print("\n".join(report(settings)))
        return EXIT_OK
    if args.status:
        from adrgw.links import sample_ledger
        from adrgw.ops import status

        # a closed pipe ends quietly
        return status.run(settings.state.directory, args.json, sample_ledger(settings))
    if args.probe:
        logsetup.setup(args.log_level or "WARNING")
        from adrgw.links import probes
        from adrgw.ops.probe import run_probe

        return asyncio.run(run_probe(settings, probes(settings)))

    logsetup.setup(args.log_level or settings.log_level)
    from adrgw.app import Gateway, run_until_signal
    from adrgw.ops.sdnotify import Notifier

    startup_errors = _startup_errors()

    try:
        return asyncio.run(run_until_signal(Gateway(settings, notifier=Notifier())))
    except startup_errors as exc:
        print(f"{_prog()}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


"""What ``--check`` prints beyond config.py's summary: the write and report targets, and warnings
about this host that the file alone cannot show.

A config can be valid and still fail on site: the shipped example's ``[bacnet] address`` is not an
address of the technician's PC (the gateway then fails to bind at start), or the state directory
belongs to another user (found only when the service starts). Both are looked at here, without
touching the network: binding a UDP socket to port 0 of the address says whether this host has it.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from adrgw.config.settings import Settings, summary


def target_lines(settings: Settings) -> list[str]:
    """One line per [write.NAME] and [report.NAME] section, or a line saying there are none."""
    lines: list[str] = []
    for w in settings.writes:
        mapping = ", ".join(f"{level:g}={value}" for level, value in w.values)
        lines.append(f"  write {w.name}: {w.address} {w.object_type} {w.instance} {w.property_id} "
                     f"@{w.priority}: level {mapping} (other levels relinquish)")
    for r in settings.reports:
        lines.append(f"  report {r.name}: {r.address} {r.object_type} {r.instance} {r.property_id} -> "
                     f"{r.resource_id} {r.measurement} [{r.unit}] x{r.scale:g}")
    if not settings.writes:
        lines.append("  write targets: none")
    if not settings.reports:
        lines.append("  report points: none (the meter only)")
    return lines


def address_on_host(ip: str) -> bool:
    """True when this host has ``ip`` (a UDP socket can bind to it); no packet is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return candidate
    return Path("/")


def state_directory_problem(directory: str) -> str:
    """Why the current user could not keep state in ``directory``, or "" when it can."""
    path = Path(directory)
    if path.exists():
        if not path.is_dir():
            return f"{directory!r} exists and is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{directory!r} is not writable by the current user (uid {os.getuid()})"
        return ""
    parent = _nearest_existing(path.parent if str(path.parent) else Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return (f"{directory!r} does not exist and cannot be created by the current user "
                f"(uid {os.getuid()}): {str(parent)!r} is not writable")
    return ""


def warnings(settings: Settings) -> list[str]:
    """``<file>: [section] key: warning: ...`` lines; a warning does not make the config invalid."""
    name = settings.source
    found: list[str] = []
    ip = settings.bacnet.ip
    try:
        on_host = address_on_host(ip)
    except OSError as exc:
        found.append(f"{name}: [bacnet] address: warning: could not check {ip} ({exc.strerror or exc})")
    else:
        if not on_host:
            found.append(f"{name}: [bacnet] address: warning: {ip} is not an address of this host, so the "
                         "gateway cannot open its BACnet port here (set it to this PC's interface, e.g. "
                         "the output of 'hostname -I', with its prefix)")
    problem = state_directory_problem(settings.state.directory)
    if problem:
        found.append(f"{name}: [state] directory: warning: {problem}")
    return found


def report(settings: Settings) -> list[str]:
    """Everything ``--check`` prints for a valid config: the summary, the targets, the warnings."""
    return summary(settings) + target_lines(settings) + warnings(settings)

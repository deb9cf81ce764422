"""systemd's notify protocol (sd_notify(3)): READY, STATUS, WATCHDOG and STOPPING datagrams.

A few lines of protocol are not worth a dependency: the maintained option (python-systemd) needs
libsystemd headers to build, and the small PyPI ``sdnotify`` package is unmaintained and blocking.
This sends non-blocking datagrams to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace) and is a no-op when the variable is unset (run from a shell). The watchdog is fed from a
task on the event loop itself, so a stalled loop stops the pings and systemd restarts the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Callable, Mapping, Optional

from adrgw.ops.facts import GatewayFacts

log = logging.getLogger("adrgw.sdnotify")


def status_line(facts: GatewayFacts) -> str:
    """One line for systemd's STATUS (``systemctl status``): registration and reports."""
    link = facts.link
    parts = [f"registered as {link.ven_id}" if link.registered else f"not registered (attempt {link.attempts})"]
    if facts.last_delivery is not None:
        parts.append(f"last report {facts.last_delivery:%Y-%m-%d %H:%M:%S}Z")
    parts.append(f"{facts.queue_depth} sample(s) queued")
    if facts.meter.failures:
        parts.append(f"meter failing ({facts.meter.failures} reads)")
    if facts.schedule.event_id:
        parts.append(f"event {facts.schedule.event_id} active")
    if facts.storage_fault is not None:
        parts.append(f"storage failing ({facts.storage_fault})")
    if facts.dead_tasks:
        parts.append(f"restarting task(s) {', '.join(facts.dead_tasks)}")
    return "; ".join(parts)


class Notifier:
    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address: Optional[str] = ("\0" + address[1:]) if address.startswith("@") else (address or None)
        self._sock: Optional[socket.socket] = None
        self.watchdog_interval: Optional[float] = None
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            # Ping at half the timeout, as sd_watchdog_enabled(3) recommends.
            self.watchdog_interval = int(usec) / 1_000_000 / 2

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False (and a debug line) if it could not go."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            log.debug("sd_notify %s failed: %s", fields, exc)
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *( [f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    async def run_watchdog(self, status: Optional[Callable[[], str]] = None,
                           alive: Callable[[], bool] = lambda: True) -> None:
        """Ping WATCHDOG=1 (with a fresh STATUS line) from the event loop until cancelled.

        No ping while ``alive()`` is False (a supervised task is dead and waiting to restart): if it
        stays dead past WatchdogSec, systemd restarts the process."""
        if self.watchdog_interval is None and status is None:
            return
        interval = self.watchdog_interval or 30.0
        while True:
            fields = ["WATCHDOG=1"] if self.watchdog_interval is not None and alive() else []
            if status is not None:
                fields.append(f"STATUS={status()}")
            self.send(*fields)
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def status_follower(notifier: Notifier) -> Callable[[GatewayFacts], None]:
    """systemd's STATUS follows each status snapshot (written within a second of a change): a
    listener for snapshot.SnapshotWriter that sends the line only when it differs from the last one
    sent; the watchdog task still repeats it."""
    sent: list[str] = []

    def follow(facts: GatewayFacts) -> None:
        line = status_line(facts)
        if not sent or sent[0] != line:
            sent[:] = [line]
            notifier.status(line)

    return follow

"""Supervision of the long-running tasks: none dies silently.

A task that raises is logged at ERROR with its name and traceback and restarted after a capped,
jittered backoff. While it is dead (between the crash and the restart) ``TaskHealth.alive`` is
False, and the systemd watchdog is not fed: a task that keeps crashing makes systemd restart the
whole process (WatchdogSec) even though the restarts here would go on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Awaitable, Callable, Optional

from adrgw.core.backoff import backoff_delay

log = logging.getLogger("adrgw.supervise")

# First restart delay after a crash; doubled up to RESTART_MAX (a crash loop costs little CPU).
RESTART_INITIAL = 1.0
RESTART_MAX = 60.0
# A task that ran this long before crashing starts its backoff again from RESTART_INITIAL.
STABLE_AFTER = 600.0


class TaskHealth:
    """Which supervised tasks are dead right now."""

    def __init__(self) -> None:
        self.dead: set[str] = set()
        self.crashes = 0

    @property
    def alive(self) -> bool:
        return not self.dead


def restart_delay(crashes: int, initial: Optional[float] = None, cap: Optional[float] = None,
                  jitter: float = 0.2, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Capped exponential delay before restart number ``crashes`` (1-based), with +-``jitter``
    (the one backoff rule, backoff.py: never above the cap)."""
    return backoff_delay(max(0, crashes - 1), RESTART_INITIAL if initial is None else initial,
                         RESTART_MAX if cap is None else cap, jitter, rng)


async def supervised(name: str, factory: Callable[[], Awaitable[Any]], health: TaskHealth) -> None:
    """Run ``factory()`` forever: restart it (with backoff) whenever it returns or raises.

    bacpypes3 errors can derive from BaseException, so everything but cancellation is caught.
    """
    crashes = 0
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    while True:
        started = loop.time()
        try:
            await factory()
            if me is not None and me.cancelling():
                raise asyncio.CancelledError()
            log.error("task %s ended unexpectedly; restarting it", name)
        except asyncio.CancelledError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - see docstring
            if me is not None and me.cancelling():
                # Shutting down: the task was cancelled but the cancellation was lost on the way
                # (Python 3.11's asyncio.wait_for can swallow it) and it failed on a closed resource.
                raise asyncio.CancelledError() from None
            log.exception("task %s failed; restarting it", name)
        if loop.time() - started >= STABLE_AFTER:
            crashes = 0
        crashes += 1
        health.crashes += 1
        delay = restart_delay(crashes)
        health.dead.add(name)
        log.error("task %s restarts in %.1f s (crash %d)", name, delay, crashes)
        try:
            await asyncio.sleep(delay)
        finally:
            health.dead.discard(name)

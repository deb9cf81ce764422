"""Waiting on a condition inside a test's event loop, with a deadline that fails the test."""

from __future__ import annotations

import asyncio
import time
from typing import Callable


async def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05,
                   what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)

"""Rate-limited log lines: one rule for every line that could repeat without bound.

A VTN that fails every poll, or asks for re-registration on every poll, must not write a line per
attempt (an earlier version wrote 250 lines a second); a BACnet client's bad requests are the
client's problem, not a line per packet; at 10 s sampling a line per report is 360 lines an hour
that say "still working". Each of these logs the first occurrence, then at most one line per
period saying how many occurrences it covers.

``Summary`` is that rule, pure (the caller passes the time). The line shapes the gateway uses are
built on it here, with their wording: ``RateLimitedLog`` (one INFO line per key per interval, for
clients' bad requests), ``DeliverySummary`` (report deliveries) and ``BacklogNotice`` (the queue
while the VTN is away).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

# One summary line per this many seconds while the failures go on.
SUMMARY_SECONDS = 60.0
# One line per kind of a client's bad request per minute; the next line says how many were not logged.
DEFAULT_INTERVAL = 60.0
# Report deliveries: at most one INFO line per this many seconds.
DELIVERY_LINE_EVERY = 60.0
# While the VTN is unreachable and samples wait: one INFO line per this many seconds.
BACKLOG_LINE_EVERY = 600.0


class Summary:
    """Counts occurrences of one kind of event and says when a line is due."""

    def __init__(self, every: float = SUMMARY_SECONDS) -> None:
        self.every = every
        self.total = 0  # since the last reset()
        self._unreported = 0
        self._last: Optional[float] = None
        self._kind = ""

    @property
    def last(self) -> Optional[float]:
        """When the last line was due (None: none since the last reset)."""
        return self._last

    def hit(self, now: float, kind: str = "", count: int = 1) -> Optional[int]:
        """Count ``count`` occurrences at ``now``; return how many occurrences the line due now covers
        (``count`` for the first), or None when no line is due. A ``kind`` different from the last
        logged one is always due: a new cause (a hostile reply, another error) is never hidden."""
        self.total += count
        self._unreported += count
        if self._last is None or now - self._last >= self.every or kind != self._kind:
            covered, self._unreported, self._last, self._kind = self._unreported, 0, now, kind
            return covered
        return None

    def reset(self) -> int:
        """The failures are over: how many there were in all (0: nothing to report); starts afresh."""
        total, self.total, self._unreported, self._last, self._kind = self.total, 0, 0, None, ""
        return total


class RateLimitedLog:
    """``info(key, msg, *args)`` logs at INFO unless a line with the same key was logged less than
    ``interval`` seconds ago; suppressed lines are counted and reported with the next one."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._keys: dict[str, Summary] = {}

    def info(self, key: str, msg: str, *args: Any) -> bool:
        """Log (True) or count (False)."""
        covered = self._keys.setdefault(key, Summary(self.interval)).hit(self.clock())
        if covered is None:
            return False
        suppressed = covered - 1
        if suppressed:
            msg += f" ({suppressed} more like it in the last {self.interval:g} s not logged)"
        self.logger.info(msg, *args)
        return True


@dataclass
class DeliverySummary:
    """Counts deliveries and says, at most once per ``every`` seconds, what went out since the last line."""

    every: float = DELIVERY_LINE_EVERY
    _lines: Summary = field(init=False)
    _samples: int = 0

    def __post_init__(self) -> None:
        self._lines = Summary(self.every)

    def delivered(self, now: float, samples: int, first: datetime, last: datetime) -> Optional[str]:
        """Record one acknowledged report; the INFO line to log now, or None (log it at DEBUG)."""
        previous = self._lines.last
        self._samples += samples
        reports = self._lines.hit(now)
        if reports is None:
            return None
        line = f"report delivered: {samples} sample(s) {first.isoformat()} .. {last.isoformat()}"
        if reports > 1 and previous is not None:
            line += (f" ({reports} reports, {self._samples} samples since the last line "
                     f"{now - previous:.0f} s ago)")
        self._samples = 0
        return line


@dataclass
class BacklogNotice:
    """A periodic line while the VTN is unreachable and samples wait for it."""

    every: float = BACKLOG_LINE_EVERY
    _lines: Summary = field(init=False)
    _since: Optional[float] = None  # when the outage with a backlog began (monotonic)

    def __post_init__(self) -> None:
        self._lines = Summary(self.every)

    def check(self, now: float, vtn_online: bool, depth: int, oldest: Optional[datetime]) -> Optional[str]:
        """The INFO line to log now, or None. The first line comes ``every`` seconds into an outage
        (the failure itself was already logged as a warning), then every ``every`` seconds."""
        if vtn_online or depth == 0:
            self._since = None
            self._lines.reset()
            return None
        if self._since is None:
            self._since = now
            self._lines.hit(now)  # the outage's start stands for its first line: already a warning
            return None
        if self._lines.hit(now) is None:
            return None
        oldest_text = oldest.isoformat() if oldest is not None else "unknown"
        return (f"VTN unreachable for {(now - self._since) / 60:.0f} min: {depth} sample(s) queued, "
                f"oldest {oldest_text}; they are sent when the VTN answers")

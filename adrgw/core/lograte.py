"""When a recurring fact earns an INFO line: report deliveries and the backlog while the VTN is away.

At 10 s sampling a line per report is 360 lines an hour that say "still working". An operator needs
to see that reports flow (at most one line a minute, with the counts since the previous line) and,
during an outage, how much is waiting (a line every few minutes with the queue depth and the oldest
queued instant). Both decisions are pure: the caller passes the monotonic time in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

# Report deliveries: at most one INFO line per this many seconds.
DELIVERY_LINE_EVERY = 60.0
# While the VTN is unreachable and samples wait: one INFO line per this many seconds.
BACKLOG_LINE_EVERY = 600.0


@dataclass
class DeliverySummary:
    """Counts deliveries and says, at most once per ``every`` seconds, what went out since the last line."""

    every: float = DELIVERY_LINE_EVERY
    _last_line: Optional[float] = None
    _reports: int = 0
    _samples: int = 0

    def delivered(self, now: float, samples: int, first: datetime, last: datetime) -> Optional[str]:
        """Record one acknowledged report; the INFO line to log now, or None (log it at DEBUG)."""
        self._reports += 1
        self._samples += samples
        if self._last_line is not None and now - self._last_line < self.every:
            return None
        line = f"report delivered: {samples} sample(s) {first.isoformat()} .. {last.isoformat()}"
        if self._reports > 1 and self._last_line is not None:
            line += (f" ({self._reports} reports, {self._samples} samples since the last line "
                     f"{now - self._last_line:.0f} s ago)")
        self._last_line = now
        self._reports = self._samples = 0
        return line


@dataclass
class BacklogNotice:
    """A periodic line while the VTN is unreachable and samples wait for it."""

    every: float = BACKLOG_LINE_EVERY
    _since: Optional[float] = None  # when the outage with a backlog began (monotonic)
    _last_line: Optional[float] = None

    def check(self, now: float, vtn_online: bool, depth: int, oldest: Optional[datetime]) -> Optional[str]:
        """The INFO line to log now, or None. The first line comes ``every`` seconds into an outage
        (the failure itself was already logged as a warning), then every ``every`` seconds."""
        if vtn_online or depth == 0:
            self._since = self._last_line = None
            return None
        if self._since is None:
            self._since = self._last_line = now
            return None
        if self._last_line is not None and now - self._last_line < self.every:
            return None
        self._last_line = now
        oldest_text = oldest.isoformat() if oldest is not None else "unknown"
        return (f"VTN unreachable for {(now - self._since) / 60:.0f} min: {depth} sample(s) queued, "
                f"oldest {oldest_text}; they are sent when the VTN answers")

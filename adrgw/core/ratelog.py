"""Rate-limited log lines for repeated failures: the first one, then one summary per period.

A VTN that fails every poll, or asks for re-registration on every poll, must not write a line per
attempt (an earlier version wrote 250 lines a second). Pure: the caller passes the time.
"""

from __future__ import annotations

from typing import Optional

# One summary line per this many seconds while the failures go on.
SUMMARY_SECONDS = 60.0


class Summary:
    """Counts occurrences of one kind of failure and says when a line is due."""

    def __init__(self, every: float = SUMMARY_SECONDS) -> None:
        self.every = every
        self.total = 0  # since the last reset()
        self._unreported = 0
        self._last: Optional[float] = None
        self._kind = ""

    def hit(self, now: float, kind: str = "") -> Optional[int]:
        """Count one occurrence at ``now``; return how many occurrences the line due now covers
        (1 for the first), or None when no line is due. A ``kind`` different from the last logged
        one is always due: a new cause (a hostile reply, another error) is never hidden."""
        self.total += 1
        self._unreported += 1
        if self._last is None or now - self._last >= self.every or kind != self._kind:
            covered, self._unreported, self._last, self._kind = self._unreported, 0, now, kind
            return covered
        return None

    def reset(self) -> int:
        """The failures are over: how many there were in all (0: nothing to report); starts afresh."""
        total, self.total, self._unreported, self._last, self._kind = self.total, 0, 0, None, ""
        return total

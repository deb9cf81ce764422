"""The one wall-clock helper: what "now" means everywhere in the gateway.

Every component that needs the time takes a ``Clock`` (a callable returning an aware UTC datetime)
in its constructor, defaulting to ``utc_now``: tests pass a fake clock instead of sleeping or
patching ``datetime``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (never naive: mixing the two raises TypeError)."""
    return datetime.now(timezone.utc)


__all__ = ["Clock", "utc_now"]

"""Which version of an event is newer: a revision comparable across protocols.

OpenADR 2.0b numbers the versions of an event (modificationNumber 0, 1, 2...); OpenADR 3.1 stamps
them (modificationDateTime). The core only needs to know whether what the VTN sends now replaces
what it holds, so a revision is an ordered key of numbers, with a label for people (log lines, the
status page). Each adapter builds its own: 2.0b ``Revision.number(n)``, 3.1 e.g.
``Revision((stamp.timestamp(),), stamp.isoformat(), modified=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True, order=True)
class Revision:
    """An event's version: compared (and equal) by ``key`` only; ``label`` and ``modified`` are for
    people. Keys are tuples of numbers, so two revisions always compare (no TypeError between
    protocols)."""

    key: tuple[float, ...] = (0,)
    label: str = field(default="0", compare=False)
    # True once the VTN changed the event after creating it (the page marks it "modified").
    modified: bool = field(default=False, compare=False)

    @classmethod
    def number(cls, n: int) -> "Revision":
        """A revision that counts modifications: 0 is the original (OpenADR 2.0b modificationNumber)."""
        return cls((n,), str(n), n > 0)

    def __str__(self) -> str:
        return self.label

    def to_json(self) -> dict[str, Any]:
        return {"key": list(self.key), "label": self.label, "modified": self.modified}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Revision":
        """Inverse of to_json; ValueError/KeyError/TypeError on a damaged record."""
        key = tuple(data["key"])
        if not key or not all(isinstance(k, (int, float)) and not isinstance(k, bool) for k in key):
            raise ValueError(f"bad revision key {data['key']!r}")
        return cls(key, str(data["label"]), bool(data.get("modified", False)))


__all__ = ["Revision"]

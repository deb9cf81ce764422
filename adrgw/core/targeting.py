"""Pure: is an event meant for this VEN? (OpenADR 2.0b eiTarget rules)

The 2.0b Profile Specification's EiEvent conformance rules decide it:

* an ``eiTarget`` with no sub-elements means the recipient is the intended target;
* several criteria in ``eiTarget`` are OR'd: the VEN is a target when any one of them names it;
* IDs in a payload must be validated and an unexpected value answered with an error; a
  distribution mixing valid and invalid events is answered event by event (one bad event does
  not reject the message).

So an event is ours when its eiTarget is empty, or names our venID, one of our resourceIDs
(``[meter] resource_id`` and each ``[report.NAME]`` resource), or one of the groups / parties
configured in ``[ven] group_ids`` / ``party_ids``. Criteria we cannot evaluate (service area,
pnode, end-device asset, ...) neither include nor exclude us: an eiTarget carrying only those is
treated as empty (the VTN sent the event to this VEN). An event naming only others is answered
``optOut`` with response code 462 (Target Mismatch, the 2.0b code for exactly this) and moves
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

# OpenADR 2.0b response code "Target Mismatch" (openleadr enums.STATUS_CODES.TARGET_MISMATCH).
TARGET_MISMATCH = 462

# eiTarget sub-elements that name a party we can recognise, as openleadr's parser keys them.
IDENTITY_KINDS = ("ven_id", "resource_id", "group_id", "group_name", "party_id")


@dataclass(frozen=True)
class Identity:
    """Everything an eiTarget may use to name this gateway."""

    ven_id: Optional[str] = None
    resource_ids: frozenset[str] = field(default_factory=frozenset)
    group_ids: frozenset[str] = field(default_factory=frozenset)  # matches groupID and groupName
    party_ids: frozenset[str] = field(default_factory=frozenset)


def target_values(raw_event: Mapping[str, Any]) -> dict[str, set[str]]:
    """The identity criteria of an event's eiTarget, by kind (openleadr's parsed dict).

    openleadr gives ``targets`` as a list of one-key dicts (``{'ven_id': 'v1'}``), and for some
    messages ``targets_by_type`` (kind -> list); both are read. Anything malformed counts as no
    criterion (the hostile-input rule: it cannot make us act on an event meant for others, but it
    cannot make us ignore one either; the rest of the event is still validated).
    """
    found: dict[str, set[str]] = {}

    def add(kind: Any, value: Any) -> None:
        if kind in IDENTITY_KINDS and isinstance(value, (str, int)) and str(value).strip():
            found.setdefault(kind, set()).add(str(value).strip())

    targets = raw_event.get("targets") if isinstance(raw_event, Mapping) else None
    if isinstance(targets, Mapping):
        targets = [targets]
    if isinstance(targets, list):
        for target in targets:
            if isinstance(target, Mapping):
                for kind, value in target.items():
                    for item in value if isinstance(value, list) else [value]:
                        add(kind, item)
    by_type = raw_event.get("targets_by_type") if isinstance(raw_event, Mapping) else None
    if isinstance(by_type, Mapping):
        for kind, values in by_type.items():
            for item in values if isinstance(values, list) else [values]:
                add(kind, item)
    return found


def is_targeted(criteria: Mapping[str, set[str]], me: Identity) -> bool:
    """True when no identity criterion is given, or any one of them names us (OR'd)."""
    if not any(criteria.values()):
        return True
    mine = {
        "ven_id": {me.ven_id} if me.ven_id else set(),
        "resource_id": set(me.resource_ids),
        "group_id": set(me.group_ids),
        "group_name": set(me.group_ids),
        "party_id": set(me.party_ids),
    }
    return any(criteria.get(kind, set()) & mine[kind] for kind in IDENTITY_KINDS)


def describe(criteria: Mapping[str, set[str]]) -> str:
    """For the log line: ``venID ven-9, groupID north``."""
    names = {"ven_id": "venID", "resource_id": "resourceID", "group_id": "groupID", "group_name": "groupName",
             "party_id": "partyID"}
    return ", ".join(f"{names[k]} {v}" for k in IDENTITY_KINDS for v in sorted(criteria.get(k, ())))

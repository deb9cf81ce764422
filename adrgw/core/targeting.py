"""Pure: is an event meant for this VEN? (the OpenADR eiTarget rules, on parsed criteria)

The adapter parses an event's target criteria into kind -> values (model.TargetCriteria, kinds
below); the rules are the OpenADR 2.0b Profile Specification's EiEvent conformance rules:

* an ``eiTarget`` with no sub-elements means the recipient is the intended target;
* several criteria in ``eiTarget`` are OR'd: the VEN is a target when any one of them names it;
* IDs in a payload must be validated and an unexpected value answered with an error; a
  distribution mixing valid and invalid events is answered event by event (one bad event does
  not reject the message).

So an event is ours when its eiTarget is empty, or names our venID, one of our resourceIDs
(``[meter] resource_id`` and each ``[report.NAME]`` resource), or one of the groups / parties
configured in ``[ven] group_ids`` / ``party_ids``. Criteria we cannot evaluate (service area,
pnode, end-device asset, ...) neither include nor exclude us: an eiTarget carrying only those is
treated as empty (the VTN sent the event to this VEN). An event naming only others moves nothing
and gets the outcome "not targeted" (2.0b answers it optOut 462, Target Mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AbstractSet, Mapping, Optional

# The target kinds that name a party we can recognise (2.0b eiTarget sub-elements as openleadr keys
# them; another adapter maps its own target types onto these).
IDENTITY_KINDS = ("ven_id", "resource_id", "group_id", "group_name", "party_id")


@dataclass(frozen=True)
class Identity:
    """Everything an eiTarget may use to name this gateway."""

    ven_id: Optional[str] = None
    resource_ids: frozenset[str] = field(default_factory=frozenset)
    group_ids: frozenset[str] = field(default_factory=frozenset)  # matches groupID and groupName
    party_ids: frozenset[str] = field(default_factory=frozenset)


def is_targeted(criteria: Mapping[str, AbstractSet[str]], me: Identity) -> bool:
    """True when no identity criterion is given, or any one of them names us (OR'd). Kinds other
    than IDENTITY_KINDS neither include nor exclude us."""
    if not any(criteria.get(kind) for kind in IDENTITY_KINDS):
        return True
    mine = {
        "ven_id": {me.ven_id} if me.ven_id else set(),
        "resource_id": set(me.resource_ids),
        "group_id": set(me.group_ids),
        "group_name": set(me.group_ids),
        "party_id": set(me.party_ids),
    }
    return any(set(criteria.get(kind, ())) & mine[kind] for kind in IDENTITY_KINDS)

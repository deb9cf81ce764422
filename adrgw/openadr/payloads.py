"""Reading parsed OpenADR payloads (openleadr's dicts) defensively: a VTN's reply may lack any field."""

from __future__ import annotations

from typing import Any, Optional


def response_code(payload: Any) -> Optional[int]:
    """The eiResponse responseCode of a parsed message, or None when it has none (or not a number)."""
    response = payload.get("response") if isinstance(payload, dict) else None
    code = response.get("response_code") if isinstance(response, dict) else None
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None

"""How an exchange with a 2.0b VTN fails: one exception family, and the first retry delay.

Its own module so that the link (ven.py) and the EiOpt service (opt.py), which both use them, do not
import each other.
"""

from __future__ import annotations

# First retry delay after a failed registration or delivery; doubled up to [ven] retry_max.
RETRY_INITIAL = 1.0


class VtnError(Exception):
    """An exchange with the VTN failed; the message is one log line."""


class VtnUnreachable(VtnError):
    pass


class VtnHttpError(VtnError):
    pass


class VtnProtocolError(VtnError):
    pass


class VtnSecurityError(VtnProtocolError):
    """The VTN's certificate or signature is not the one we trust: an operator must see it (ERROR)."""


class NotRegistered(VtnError):
    """The VTN says we are not (or no longer) registered."""

"""``--probe``: the commissioning check a technician runs once with the real config.

Reads the meter once, looks for the route to the meter's network, contacts the VTN once (TLS handshake,
fingerprint, registration query) and prints a table of what works and what does not, with a hint for
each failure. Exit 0 only when every check passes. Nothing is registered and nothing is written.

The checks are each adapter's (adrgw/bacnet/probe.py, adrgw/openadr/probe.py), chosen by
adrgw/links.py and handed in: this module only runs them and prints the table.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Sequence

from adrgw.config.settings import Settings
from adrgw.core.model import ProbeCheck as Check

# One side's checks: settings -> its lines of the table.
Probe = Callable[[Settings], Awaitable[list[Check]]]


async def run_probe(settings: Settings, probes: Sequence[Probe]) -> int:
    """Run each side's checks in turn (links.probes: BACnet, then the VTN in ``[ven] protocol``),
    print the table; 0 when every check passed, else 1."""
    checks: list[Check] = []
    for probe in probes:
        checks.extend(await probe(settings))
    width = max(len(c.name) for c in checks)
    print(f"{'check'.ljust(width)}  result  detail")
    for c in checks:
        print(f"{c.name.ljust(width)}  {'OK  ' if c.ok else 'FAIL'}    {c.detail}")
        if not c.ok and c.hint:
            print(f"{''.ljust(width)}          hint: {c.hint}")
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1

"""Which protocol adapter talks to the VTN: chosen from ``[ven] protocol``.

The one place that knows the adapters by name. Each adapter implements the core's ProtocolAdapter
port (adrgw/core/ports.py) and says how the durable sample queue learns what the VTN acknowledged
(its ``Ledger``): ``2.0b`` (the default, adrgw/openadr/) and ``3.1`` (adrgw/openadr3/).
"""

from __future__ import annotations

from typing import Awaitable, Callable

from adrgw.config.settings import Settings
from adrgw.core.model import ProbeCheck
from adrgw.core.ports import ProtocolAdapter, Readings, StatusSource
from adrgw.core.supervise import TaskHealth
from adrgw.persist.samples import Ledger
from adrgw.persist.store import Store

PROTOCOLS = ("2.0b", "3.1")
# One side's --probe checks (ops/probe.py runs them and prints the table).
Probe = Callable[[Settings], Awaitable[list[ProbeCheck]]]


def protocol(settings: Settings) -> str:
    """``[ven] protocol``; ValueError for one no adapter speaks (the config check reports it first)."""
    name = settings.ven.protocol
    if name not in PROTOCOLS:
        raise ValueError(f"[ven] protocol {name!r} is not supported (supported: {', '.join(PROTOCOLS)})")
    return name


def sample_ledger(settings: Settings) -> Ledger:
    """How the chosen adapter records acknowledged samples (for persist.samples.SampleQueue)."""
    if protocol(settings) == "3.1":
        from adrgw.openadr3.ledger import LEDGER as LEDGER_31

        return LEDGER_31
    # Not adapter.SAMPLE_LEDGER (the same object): --status reads it and must not load openleadr.
    from adrgw.openadr.report_store import LEDGER

    return LEDGER


def probes(settings: Settings) -> list[Probe]:
    """``--probe``'s checks: the BACnet side, then the VTN in the chosen protocol."""
    from adrgw.bacnet.probe import bacnet_checks

    if protocol(settings) == "3.1":
        from adrgw.openadr3.probe import vtn_checks as vtn31_checks

        return [bacnet_checks, vtn31_checks]
    from adrgw.openadr.probe import vtn_checks

    return [bacnet_checks, vtn_checks]


def make_adapter(settings: Settings, store: Store, samples: Readings, status: StatusSource,
                 tasks: TaskHealth, on_change: Callable[[], None] = lambda: None) -> ProtocolAdapter:
    """The adapter for ``[ven] protocol``: its ``opts`` for the core, then ``link(sink)``.

    ``on_change``: the adapter calls it when something the status shows changes (registration, the
    VTN's reachability, a report acknowledged), so the status snapshot follows within a second."""
    if protocol(settings) == "3.1":
        from adrgw.openadr3.adapter import OpenAdr31

        return OpenAdr31(settings, store, samples, status, tasks, on_change)
    from adrgw.openadr.adapter import OpenAdr2b

    return OpenAdr2b(settings, store, samples, status, tasks, on_change)


__all__ = ["PROTOCOLS", "Probe", "make_adapter", "probes", "protocol", "sample_ledger"]

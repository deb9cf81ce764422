"""Which protocol adapter talks to the VTN: chosen from ``[ven] protocol``.

The one place that knows the adapters by name. Each adapter implements the core's ProtocolAdapter
port (adrgw/core/ports.py) and says how the durable sample queue learns what the VTN acknowledged
(its ``Ledger``): ``2.0b`` (the default, adrgw/openadr/) and ``3.1`` (adrgw/openadr3/).
"""

from __future__ import annotations

from adrgw.config.settings import Settings
from adrgw.core.ports import ProtocolAdapter, Readings, StatusSource
from adrgw.core.supervise import TaskHealth
from adrgw.persist.samples import Ledger
from adrgw.persist.store import Store

PROTOCOLS = ("2.0b", "3.1")


def protocol(settings: Settings) -> str:
    """``[ven] protocol``; ValueError for one no adapter speaks (the config check reports it first)."""
    name = settings.ven.protocol
    if name not in PROTOCOLS:
        raise ValueError(f"[ven] protocol {name!r} is not supported (supported: {', '.join(PROTOCOLS)})")
    return name


def sample_ledger(settings: Settings) -> Ledger:
    """How the chosen adapter records acknowledged samples (for persist.samples.SampleQueue)."""
    if protocol(settings) == "3.1":
        from adrgw.openadr3.ledger import LEDGER

        return LEDGER
    from adrgw.openadr.adapter import SAMPLE_LEDGER

    return SAMPLE_LEDGER


def make_adapter(settings: Settings, store: Store, samples: Readings, status: StatusSource,
                 tasks: TaskHealth) -> ProtocolAdapter:
    """The adapter for ``[ven] protocol``: its ``opts`` for the core, then ``link(sink)``."""
    if protocol(settings) == "3.1":
        from adrgw.openadr3.adapter import OpenAdr31

        return OpenAdr31(settings, store, samples, status, tasks)
    from adrgw.openadr.adapter import OpenAdr2b

    return OpenAdr2b(settings, store, samples, status, tasks)


__all__ = ["PROTOCOLS", "make_adapter", "protocol", "sample_ledger"]

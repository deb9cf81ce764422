"""The OpenADR 3.1 adapter, built in dependency order: the composition of adrgw/openadr3/.

It implements the core's ProtocolAdapter port (core/ports.py) as the 2.0b adapter does: ``opts``
exists before the core's EventController; ``link(sink)`` then builds the VtnLink feeding that
EventSink. One client (token, bounded calls) is shared by the link and the reports.

Opt-out: OpenADR 3.1.0 has no opt message (no oadrCreateOpt, no optIn/optOut answer to an event).
An honest 3.1 VEN therefore applies ADR-Opt-Out locally only: the core keeps the points at rest for
the events opted out of (as in 2.0b), nothing is claimed to the VTN, and the USAGE reports go on
showing what the building actually did. ``LocalOptOut`` logs that once per change.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

from adrgw.config.settings import Settings
from adrgw.core.model import OptChange
from adrgw.core.ports import EventSink, Readings, StatusSource
from adrgw.core.supervise import TaskHealth
from adrgw.openadr3.client import Client
from adrgw.openadr3.config import Ven31Settings
from adrgw.openadr3.ledger import LEDGER
from adrgw.openadr3.link import Link31
from adrgw.openadr3.report_service import ReportService
from adrgw.persist.store import Store

log = logging.getLogger("adrgw.openadr3")

SAMPLE_LEDGER = LEDGER


class LocalOptOut:
    """core.ports.OptPort for 3.1: the building's opt-out stays local (3.1 has no opt message)."""

    def answers_changed(self, changes: Sequence[OptChange]) -> None:
        """Nothing to re-send: 3.1 VENs do not answer events."""

    async def opted_out(self, changes: Sequence[OptChange]) -> None:
        if changes:
            log.info("opt-out of %d event(s) applied locally: OpenADR 3.1 has no opt message, so the VTN is "
                     "not told (its USAGE reports show what the building does)", len(changes))

    async def opted_in(self) -> None:
        log.info("opt-out ended: the points follow the VTN's events again (nothing to tell an OpenADR 3.1 VTN)")


class OpenAdr31:
    """OpenADR 3.1.0 VEN (core.ports.ProtocolAdapter)."""

    def __init__(self, settings: Settings, store: Store, samples: Readings, status: StatusSource,
                 tasks: TaskHealth, on_change: Callable[[], None] = lambda: None) -> None:
        """``on_change``: called when something the status shows changes (the session won or lost, the
        VTN's reachability, a report accepted), so the status snapshot follows at once."""
        ven = settings.ven
        assert isinstance(ven, Ven31Settings), "protocol 3.1 settings come from adrgw/openadr3/config.py"
        self.settings = settings
        self.store = store
        self.tasks = tasks
        self.on_change = on_change
        self.client = Client(ven)
        self._opts = LocalOptOut()
        self._reports = ReportService(ven.ven_name, settings.meter, settings.reports, samples, store, self.client,
                                      retry_max=ven.retry_max, history_hours=settings.state.history_hours,
                                      on_change=on_change)
        self._link: Optional[Link31] = None

    @property
    def opts(self) -> LocalOptOut:
        return self._opts

    @property
    def reports(self) -> ReportService:
        return self._reports

    def link(self, sink: EventSink) -> Link31:
        assert self._link is None, "OpenAdr31.link() is called once"
        self._link = Link31(self.settings, self.client, sink, self._reports, self.store, self.tasks,
                            on_change=self.on_change)
        return self._link


__all__ = ["LocalOptOut", "OpenAdr31", "SAMPLE_LEDGER"]

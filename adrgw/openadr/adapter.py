"""The OpenADR 2.0b adapter, built in dependency order: the composition of adrgw/openadr/.

It implements the core's ProtocolAdapter port (core/ports.py): ``opts`` (the building's opt changes
as EiOpt and oadrCreatedEvent answers) exists before the core's EventController, which needs it;
``link(sink)`` then builds the VtnLink that feeds that EventSink. Everything the 2.0b link uses is
built here and handed in through constructors: openleadr's client with our transport, the EiOpt
service, the report service and its Transport, the events' way into the core.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

from adrgw.config.settings import Settings
from adrgw.core.ports import EventSink, Readings, StatusSource
from adrgw.core.supervise import TaskHealth
from adrgw.openadr.errors import NotRegistered, VtnError
from adrgw.openadr.events import EventAnswers
from adrgw.openadr.opt import OptChannel, OptService
from adrgw.openadr.report_service import ReportService, Transport
from adrgw.openadr.report_store import LEDGER
from adrgw.openadr.ven import GatewayClient, VtnLink
from adrgw.persist.store import Store

# What the durable sample queue needs to know of this adapter's acknowledgements (report cursors).
SAMPLE_LEDGER = LEDGER


class OpenAdr2b:
    """OpenADR 2.0b: pull-mode VEN on openleadr (core.ports.ProtocolAdapter)."""

    def __init__(self, settings: Settings, store: Store, samples: Readings, status: StatusSource,
                 tasks: TaskHealth, on_change: Callable[[], None] = lambda: None) -> None:
        """``on_change``: called when something the status shows changes (a registration won or lost,
        the VTN back, a report acknowledged): given to the link and the report service."""
        s = settings
        self.settings = settings
        self.store = store
        self.tasks = tasks
        self.on_change = on_change
        self.client = GatewayClient(s.ven)
        self.registered = asyncio.Event()  # set while the VTN knows us
        self.reregister = asyncio.Event()  # set when the VTN no longer does: register again
        self.opt_service = OptService(self.client, self.registered, store, s.ven.retry_max)
        self._opts = OptChannel(self.opt_service)
        client = self.client
        self._reports = ReportService(
            s.meter, s.reports, samples, store,
            Transport(exchange=client._perform_request, create_message=client._create_message,
                      ven_id=lambda: client.ven_id, registered=self.registered, reregister=self.reregister.set,
                      errors=(VtnError,), not_registered=NotRegistered),
            status=status, status_report=s.ven.status_report, history_hours=s.state.history_hours,
            retry_max=s.ven.retry_max, on_change=on_change)
        self._link: Optional[VtnLink] = None

    @property
    def opts(self) -> OptChannel:
        return self._opts

    @property
    def reports(self) -> ReportService:
        return self._reports

    def link(self, sink: EventSink) -> VtnLink:
        """The VtnLink feeding ``sink`` (once: the adapter has one VTN link)."""
        assert self._link is None, "OpenAdr2b.link() is called once"
        self._link = VtnLink(self.settings.ven, self.client, EventAnswers(sink, self.settings.points.signal_name),
                             self.opt_service, self._reports, self.registered, self.reregister, store=self.store,
                             tasks=self.tasks, on_change=self.on_change)
        return self._link


__all__ = ["OpenAdr2b", "SAMPLE_LEDGER"]



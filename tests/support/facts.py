"""Stand-in parts for ops/facts.py: what the readers of the gateway's facts (page, /metrics,
--status snapshot, systemd STATUS) are tested with, without a gateway, sockets or a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Optional

from adrgw.core.model import LinkState
from adrgw.core.schedule import Event
from adrgw.ops.facts import FactSources, Labels

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)

LABELS = Labels(device="ADR-Gateway (device 599)", ven_name="ven-name", vtn_url="http://vtn/OpenADR2/Simple/2.0b",
                meter="192.168.1.20 analogInput 2 presentValue", meter_point="192.168.1.20 analogInput 2",
                meter_interval=10.0, meter_unit="kW")


@dataclass
class Link:
    """ports.VtnLink: its state from plain attributes a test changes."""

    registered: bool = True
    online: bool = True
    ven_id: Optional[str] = "ven-1"
    last_contact: Optional[datetime] = None
    attempts: int = 1
    poll_period: timedelta = timedelta(seconds=1)

    async def run(self) -> None:
        pass

    def state(self) -> LinkState:
        return LinkState(registered=self.registered, online=self.online, ven_id=self.ven_id,
                         last_contact=self.last_contact, attempts=self.attempts, poll_period=self.poll_period)


@dataclass
class Reports:
    """ports.Reports."""

    last_delivery: Optional[datetime] = None
    reports_sent: int = 0
    period: Optional[timedelta] = None

    def rearm(self) -> None:
        pass

    def report_period(self) -> Optional[timedelta]:
        return self.period


@dataclass
class Queue:
    """The sample queue's counters and its one query (``oldest_owed``; ``fail``: it raises)."""

    depth: int = 0
    oldest: Optional[datetime] = None
    fail: bool = False
    stored: int = 0
    delivered: int = 0
    dropped: int = 0
    unstored: int = 0

    def __len__(self) -> int:
        return self.depth

    async def oldest_owed(self) -> Optional[datetime]:
        if self.fail:
            raise OSError("disk I/O error")
        return self.oldest


@dataclass
class Store:
    failing: Optional[str] = None
    episodes: int = 0
    written: dict[str, str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.failing is None

    async def set(self, key: str, value: str) -> None:
        self.written[key] = value


def sampler(**values: Any) -> SimpleNamespace:
    base: dict[str, Any] = dict(failures=0, last_sample=None, last_error=None, reads_ok=0, read_errors=0, missed=0,
                                late_reads=0)
    return SimpleNamespace(**{**base, **values})


def controller(events: tuple[Event, ...] = (), opt_out: bool = False) -> SimpleNamespace:
    return SimpleNamespace(events={e.event_id: e for e in events}, opt_out=opt_out, apply_test_events=False)


def sources(link: Optional[Link] = None, reports: Optional[Reports] = None, samples: Optional[Queue] = None,
            store: Optional[Store] = None, events: tuple[Event, ...] = (), opt_out: bool = False,
            writers: tuple[Any, ...] = (), gateway_status: Optional[int] = 1, dead: tuple[str, ...] = (),
            **sampler_values: Any) -> FactSources:
    """FactSources of stand-ins (the parts a test needs to change are returned through ``sources.x``)."""
    return FactSources(labels=LABELS, link=link or Link(), reports=reports or Reports(),
                       samples=samples or Queue(),  # type: ignore[arg-type]
                       sampler=sampler(**sampler_values),  # type: ignore[arg-type]
                       controller=controller(events, opt_out),  # type: ignore[arg-type]
                       store=store or Store(),  # type: ignore[arg-type]
                       tasks=SimpleNamespace(dead=set(dead), crashes=len(dead)),  # type: ignore[arg-type]
                       clock_watch=SimpleNamespace(steps=0),  # type: ignore[arg-type]
                       writers=lambda: writers, gateway_status=lambda: gateway_status)

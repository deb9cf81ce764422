"""The gateway as an OpenADR 3.1 VEN in tests: its settings against the 3.1 test VTN, and event helpers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from adrgw.config.settings import BacnetSettings, MeterSettings, Route, Settings, StateSettings
from adrgw.demo.embedded import SimulatedMeter
from adrgw.openadr3.config import Ven31Settings

from .config import udp_port


def ven31_settings(vtn_url: str, meter: Optional[SimulatedMeter], tmp_path: Any, signals: tuple[Any, ...] = (),
                   reports: tuple[Any, ...] = (), **ven: Any) -> Settings:
    """An in-process 3.1 gateway: credentials ven-1/secret, 1 s meter interval, state under ``tmp_path``."""
    routes = (Route(12345, meter.host, meter.port),) if meter else ()
    base = dict(vtn_url=vtn_url, ven_name="ven-31", client_id="ven-1", client_secret="secret",
                request_timeout=3.0, retry_max=2.0, poll_interval=30.0)
    base.update(ven)
    return Settings(
        ven=Ven31Settings(**base),
        bacnet=BacnetSettings(address="127.0.0.1/8", port=udp_port(), device_id=599, routes=routes),
        meter=replace(MeterSettings(interval=1.0, timeout=0.5)),
        state=StateSettings(directory=str(tmp_path / "state")),
        source="(test)", signals=signals, reports=reports,
    )


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def simple(levels: list[int | float], start: datetime, seconds: float, kind: str = "SIMPLE") -> dict[str, Any]:
    """add_event keyword arguments: consecutive intervals of ``seconds`` with one payload each."""
    return {"intervals": [{"id": n, "payloads": [{"type": kind, "values": [level]}]} for n, level in enumerate(levels)],
            "interval_period": {"start": stamp(start), "duration": f"PT{seconds:g}S"}}


def now_plus(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)

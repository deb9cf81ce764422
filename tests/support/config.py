"""ONE builder for the gateway's config.ini text, in-process ``Settings`` for the gateway, and the
helpers of the config tests (load a text as a user would and collect its problems).

``config_ini`` renders sections in order; overrides change, add or (with ``None``) drop a key or a
whole section. Sections whose names are not identifiers (``signal.price``, ``report.feeder-1``) go in
the positional mapping::

    config_ini(bacnet={"port": 47900}, meter=None)
    config_ini({"signal.price": {"signal_name": "electricity_price"}})
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import pytest

from adrgw.config.settings import (
    BacnetSettings,
    ConfigError,
    MeterSettings,
    Route,
    Settings,
    StateSettings,
    VenSettings,
)
from adrgw.settings_load import load
from adrgw.demo.embedded import SimulatedMeter, free_port

from .process import SCRIPT

Value = Union[str, int, float, bool]
Section = Mapping[str, Optional[Value]]
Sections = Mapping[str, Optional[Section]]

#: The least a config.ini needs; every other key takes its contract default.
MINIMAL_SECTIONS: dict[str, dict[str, Value]] = {
    "ven": {"ven_name": "ven123", "vtn_url": "http://127.0.0.1:8080/OpenADR2/Simple/2.0b"},
    "bacnet": {"address": "127.0.0.1/8"},
}


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_ini(overrides: Optional[Sections] = None, /, *, base: Sections = MINIMAL_SECTIONS,
               **sections: Optional[Section]) -> str:
    """``base`` with ``overrides`` and ``sections`` applied, rendered as config.ini text.

    A key set to ``None`` is dropped, a section set to ``None`` too; new sections come after the
    base's, in the order given."""
    merged: dict[str, dict[str, Value]] = {name: {k: v for k, v in (keys or {}).items() if v is not None}
                                          for name, keys in base.items() if keys is not None}
    for name, keys in {**(overrides or {}), **sections}.items():
        if keys is None:
            merged.pop(name, None)
            continue
        target = merged.setdefault(name, {})
        for key, value in keys.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    lines: list[str] = []
    for name, keys in merged.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_text(value)}" for key, value in keys.items())
    return "\n".join(lines) + "\n"


MINIMAL = config_ini()


def config_text(vtn_url: str, gateway_port: int, router_port: int, overrides: Optional[Sections] = None, /,
                **sections: Optional[Section]) -> str:
    """The config of a gateway process on loopback: the VTN at ``vtn_url``, its BACnet port, a route to
    the simulated meter's router, 1 s meter interval, state in ./state, the page on a free port."""
    base: dict[str, dict[str, Value]] = {
        "ven": {"ven_name": "process-ven", "vtn_url": vtn_url, "request_timeout": 3, "retry_max": 2},
        "bacnet": {"address": "127.0.0.1/8", "port": gateway_port, "routes": f"12345=127.0.0.1:{router_port}"},
        "meter": {"interval": 1, "timeout": 0.5},
        "state": {"directory": "./state"},
        "http": {"listen": f"127.0.0.1:{free_port()}"},
    }
    return config_ini(overrides, base=base, **sections)


def udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


def gateway_settings(vtn_url: str, meter: Optional[SimulatedMeter], tmp_path: Any, **meter_overrides: Any) -> Settings:
    """Settings of an in-process gateway: the VTN at ``vtn_url``, a route to ``meter`` (if any), 1 s meter
    interval, state under ``tmp_path``."""
    routes = (Route(12345, meter.host, meter.port),) if meter else ()
    return Settings(
        ven=VenSettings(ven_name="test-ven", vtn_url=vtn_url, request_timeout=3.0, retry_max=2.0),
        bacnet=BacnetSettings(address="127.0.0.1/8", port=udp_port(), device_id=599, routes=routes),
        meter=replace(MeterSettings(interval=1.0, timeout=0.5), **meter_overrides),
        state=StateSettings(directory=str(tmp_path / "state")),
        source="(test)",
    )


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.ini"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def problems(tmp_path: Path, text: str | bytes) -> list[str]:
    """Load as a user would from the config's own folder, so messages start with 'config.ini:'."""
    write(tmp_path, text)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ConfigError) as info:
            load("config.ini")
    finally:
        os.chdir(cwd)
    return info.value.problems


def run_cli(*args: str, cwd: Path = SCRIPT.parent) -> subprocess.CompletedProcess:
    """bacnet_server_ven.py with ``args``, to its end (60 s at most), output captured."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)

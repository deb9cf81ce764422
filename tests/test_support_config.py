"""The one config.ini builder of the tests (tests/support/config.py): what it renders is what the gateway
loads, overrides change, add and drop keys and sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from adrgw.settings_load import load

from .support.config import MINIMAL, config_ini, config_text, write

pytestmark = pytest.mark.unit


def test_minimal_is_the_least_config_and_loads(tmp_path: Path) -> None:
    assert MINIMAL == ("[ven]\nven_name = ven123\nvtn_url = http://127.0.0.1:8080/OpenADR2/Simple/2.0b\n"
                       "[bacnet]\naddress = 127.0.0.1/8\n")
    assert load(write(tmp_path, MINIMAL)).ven.ven_name == "ven123"


def test_overrides_change_add_and_drop_keys_and_sections() -> None:
    text = config_ini({"signal.price": {"signal_name": "electricity_price"}},
                      ven={"ven_name": "other", "vtn_url": None, "retry_max": 2}, bacnet=None, meter={"interval": 1})
    assert text == ("[ven]\nven_name = other\nretry_max = 2\n[signal.price]\nsignal_name = electricity_price\n"
                    "[meter]\ninterval = 1\n")
    assert config_ini(state={"enabled": True}).endswith("[state]\nenabled = true\n")


def test_process_config_loads_with_its_ports_and_overrides(tmp_path: Path) -> None:
    text = config_text("http://127.0.0.1:9/OpenADR2/Simple/2.0b", 47901, 47902,
                       ven={"ven_name": "fault-ven", "request_timeout": 1}, bacnet={"device_id": 77})
    s = load(write(tmp_path, text))
    assert (s.ven.ven_name, s.ven.request_timeout, s.ven.retry_max) == ("fault-ven", 1.0, 2.0)
    assert (s.bacnet.port, s.bacnet.device_id) == (47901, 77)
    assert [(r.network, r.host, r.port) for r in s.bacnet.routes] == [(12345, "127.0.0.1", 47902)]
    assert (s.meter.interval, s.meter.timeout) == (1.0, 0.5)
    assert s.http.listen is not None and s.http.listen[0] == "127.0.0.1"
    assert "[http]" not in config_text("http://x", 1, 2, http=None)

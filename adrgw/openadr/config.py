"""The OpenADR 2.0b adapter's share of config.ini: the ``[ven]`` keys of protocol ``2.0b``, and the
OpenADR names the other sections use (the ``[meter]`` and ``[report.NAME]`` measurement and unit,
the ``[signal.NAME]`` signal name and type).

Only this module knows openleadr's enumerations; adrgw/config checks syntax and collects the problems.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from openleadr import enums as oadr_enums

from adrgw.config.settings import (
    REQUIRED, ConfigPart, KeyParser, check_tls_files, fingerprint, nonempty, number, parse_bool, parse_id_list,
    readable_file, url,
)

# The value of ``[ven] protocol`` this adapter speaks.
PROTOCOL = "2.0b"


def measurement_name(text: str) -> str:
    """A measurement openleadr knows (power_real, energy_real, ...), lower case as config.ini spells it."""
    name = text.strip()
    if name.upper() not in oadr_enums.MEASUREMENTS.members:
        known = ", ".join(sorted(m.lower() for m in oadr_enums.MEASUREMENTS.members))
        raise ValueError(f"unknown measurement {name!r}; known: {known}")
    return name.lower()


def measurement_unit(measurement: str, unit: str) -> tuple[str, str]:
    """Split a configured unit into (OpenADR unit, SI scale code) for ``measurement``.

    OpenADR carries 'kW' as unit 'W' with scale 'k'; openleadr silently replaces an unknown unit
    by the measurement's default, so we check it here and say so instead.
    """
    item = oadr_enums.MEASUREMENTS[measurement.upper()]
    acceptable = list(item.acceptable_units) or [item.unit]
    if unit in acceptable:
        return unit, "none"
    for prefix in ("micro", "p", "n", "m", "c", "d", "k", "M", "G", "T"):
        if unit.startswith(prefix) and unit[len(prefix):] in acceptable:
            return unit[len(prefix):], prefix
    raise ValueError(f"unit {unit!r} does not fit measurement {measurement!r} "
                     f"(use {', '.join(acceptable)}, optionally with an SI prefix such as k)")



def signal_name(text: str) -> str:
    """An OpenADR 2.0b signalName: one of the enumerated names or an ``x-`` extension."""
    name = text.strip()
    if name.upper() in (n.upper() for n in oadr_enums.SIGNAL_NAME.values) or re.match(r"^x-\S+$", name):
        return name.upper() if not name.startswith("x-") else name
    known = ", ".join(sorted({n.upper() for n in oadr_enums.SIGNAL_NAME.values}))
    raise ValueError(f"unknown signal name {name!r}; known: {known}, or x-NAME")


def signal_type(text: str) -> str:
    kind = text.strip()
    for known in oadr_enums.SIGNAL_TYPE.values:
        if kind.lower() == known.lower():
            return known
    raise ValueError(f"unknown signal type {kind!r}; known: {', '.join(oadr_enums.SIGNAL_TYPE.values)}")


# ---------------------------------------------------------------------------------------------
# [ven] for protocol 2.0b: key -> (parser, default or REQUIRED), in the order --check reports them
# (``protocol`` itself is read by the loader, which chose this adapter by it).

VEN_SCHEMA: dict[str, tuple[KeyParser, object]] = {
    "ven_name": (nonempty, REQUIRED),
    "vtn_url": (url, REQUIRED),
    "ven_id": (str.strip, None),
    "cert": (readable_file, None),
    "key": (readable_file, None),
    "ca_file": (readable_file, None),
    "vtn_fingerprint": (fingerprint, None),
    "disable_signature": (parse_bool, False),
    "check_hostname": (parse_bool, True),
    "request_timeout": (number(float, 0.5, 120), 10.0),
    "retry_max": (number(float, 1, 3600), 300.0),
    "status_report": (parse_bool, False),
    "group_ids": (parse_id_list, ()),
    "party_ids": (parse_id_list, ()),
}


def _check_ven(ven: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """Cross-key checks of [ven], only when the keys themselves were fine."""
    if (ven.get("cert") is None) != (ven.get("key") is None):
        missing = "key" if ven.get("key") is None else "cert"
        problems.append(f"{where} {missing}: cert and key must be given together")
    if not any(p.startswith(f"{where} {k}:") for p in problems for k in ("cert", "key", "ca_file")):
        for key_name, problem in check_tls_files(ven.get("cert"), ven.get("key"), ven.get("ca_file")):
            problems.append(f"{where} {key_name}: {problem}")
    if isinstance(ven.get("vtn_url"), str) and ven["vtn_url"].startswith("http://") and ven.get("cert"):
        problems.append(f"{where} vtn_url: a client certificate is configured but the URL is http://")


def _check_unit(values: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """The unit of [meter] or [report.NAME] must be one OpenADR allows for its measurement."""
    if isinstance(values.get("measurement"), str) and isinstance(values.get("unit"), str):
        try:
            measurement_unit(values["measurement"], values["unit"])
        except ValueError as exc:
            problems.append(f"{where} unit: {exc}")


PART = ConfigPart(
    sections={"ven": VEN_SCHEMA},
    keys={"meter": {"measurement": measurement_name}, "report.": {"measurement": measurement_name},
          "signal.": {"signal_name": signal_name, "signal_type": signal_type}},
    checks={"ven": (_check_ven,), "meter": (_check_unit,), "report.": (_check_unit,)},
)

"""The BACnet adapter's share of config.ini: the ``[bacnet]`` section, and the BACnet names of the
other sections (object types and properties of ``[meter]``, ``[report.NAME]`` and ``[write.NAME]``,
engineering units and the built-in points a ``[signal.NAME]`` point must not clash with).

Only this module knows bacpypes3's enumerations; adrgw/config checks syntax and collects the
problems. bacpypes3 is imported inside the functions, so ``--check`` stays quick and BAC0 (which
writes ~/.BAC0 when imported) is never loaded here.
"""

from __future__ import annotations

import configparser
import re
from typing import Any, Callable, Mapping, Optional

from adrgw.config import inifile
from adrgw.config.settings import (
    MAX_DEVICE_INSTANCE, REQUIRED, ConfigPart, KeyParser, WriteTarget, nonempty, number, parse_bacnet_address,
    parse_cidr, parse_ip_port, parse_networks, parse_routes, parse_values, target_kind,
)

_OBJECT_RE = re.compile(r"^([A-Za-z][A-Za-z-]*)[ ,:](\d+)$")


def parse_object(text: str) -> tuple[str, int]:
    """``analogInput 2`` -> ('analogInput', 2); the type must be a BACnet object type."""
    from bacpypes3.basetypes import ObjectType  # local import: keeps the pure parts cheap

    m = _OBJECT_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not 'objectType instance' (e.g. 'analogInput 2')")
    try:
        ObjectType(m.group(1))
    except (ValueError, KeyError, TypeError) as exc:
        known = object_type_names()
        raise ValueError(f"unknown object type {m.group(1)!r}{inifile.did_you_mean(m.group(1), known)} "
                         f"(valid: {', '.join(known)})") from exc
    instance = int(m.group(2))
    if not 0 <= instance <= MAX_DEVICE_INSTANCE:
        raise ValueError(f"instance {instance} is out of range 0..{MAX_DEVICE_INSTANCE}")
    return m.group(1), instance


def object_type_names() -> list[str]:
    """The standard BACnet object type names as config.ini spells them (camelCase, e.g. analogInput)."""
    from bacpypes3.basetypes import ObjectType

    return sorted(ObjectType._attr_map.values())


def parse_property(text: str) -> str:
    from bacpypes3.basetypes import PropertyIdentifier

    try:
        PropertyIdentifier(text.strip())
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unknown property {text.strip()!r}") from exc
    return text.strip()



def bacnet_text(limit: int, allow_empty: bool = True) -> Callable[[str], str]:
    """A CharacterString property value: printable, at most ``limit`` characters (issue 13)."""
    def parse(text: str) -> str:
        value = text.strip()
        if not value and not allow_empty:
            raise ValueError("must not be empty")
        if len(value) > limit:
            raise ValueError(f"{len(value)} characters, at most {limit} allowed")
        if not value.isprintable():
            raise ValueError("contains control characters")
        return value
    return parse


def bacnet_password(text: str) -> str:
    """DeviceCommunicationControl/ReinitializeDevice password: 1..20 printable characters
    (ASHRAE 135 clauses 16.1 and 16.4 limit it to 20)."""
    value = text.strip()
    if len(value) > 20:
        raise ValueError(f"{len(value)} characters, at most 20 allowed (ASHRAE 135 16.1)")
    if not value.isprintable():
        raise ValueError("contains control characters")
    return value



def engineering_units(text: str) -> str:
    """A ``[signal.NAME] units`` value: a BACnet engineering unit name (e.g. kilowatts)."""
    from bacpypes3.basetypes import EngineeringUnits

    try:
        return str(EngineeringUnits(text.strip()))
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"unknown BACnet engineering unit {text.strip()!r} (e.g. kilowatts, "
                         "percent, noUnits)") from None


_WRITE_KEYS = ("address", "object", "property", "priority", "values")


def _write_target(section: configparser.SectionProxy, title: str, name: str,
                  problems: list[str]) -> Optional[WriteTarget]:
    """One [write.NAME] section, or None with its problems appended."""
    before = len(problems)
    target_name = title[len("write."):]

    def problem(key: str, text: str) -> None:
        problems.append(f"{name}: [{title}] {key}: {text}")

    if not re.match(r"^[A-Za-z0-9_-]+$", target_name):
        problems.append(f"{name}: [{title}]: the name after 'write.' may use letters, digits, _ and - only")
    for key in section:
        if key not in _WRITE_KEYS:
            problem(key, "unknown key" + inifile.did_you_mean(key, _WRITE_KEYS))
    address = obj = None
    prop, priority = "presentValue", 10
    if not section.get("address", "").strip():
        problem("address", "required but missing")
    else:
        try:
            address = parse_bacnet_address(section["address"])
        except ValueError as exc:
            problem("address", str(exc))
    if not section.get("object", "").strip():
        problem("object", "required but missing")
    else:
        try:
            obj = parse_object(section["object"])
            target_kind(obj[0])
        except ValueError as exc:
            problem("object", str(exc))
            obj = None
    if section.get("property", "").strip():
        try:
            prop = parse_property(section["property"])
        except ValueError as exc:
            problem("property", str(exc))
    if section.get("priority", "").strip():
        try:
            priority = number(int, 1, 16)(section["priority"])
            if priority <= 2:
                problem("priority", f"{priority} is reserved for life safety (use 3..16)")
        except ValueError as exc:
            problem("priority", str(exc))
    values: tuple[tuple[float, object], ...] = ()
    if not section.get("values", "").strip():
        problem("values", "required but missing (e.g. 1=74.0, 2=76.0)")
    elif obj is not None:
        try:
            values = parse_values(target_kind(obj[0]), section["values"])
        except ValueError as exc:
            problem("values", str(exc))
    if len(problems) > before or address is None or obj is None:
        return None
    return WriteTarget(name=target_name, address=address, object_type=obj[0], instance=obj[1],
                       property_id=prop, priority=priority, values=values)


# ---------------------------------------------------------------------------------------------
# [bacnet]: key -> (parser, default or REQUIRED), in the order --check reports them

BACNET_SCHEMA: dict[str, tuple[KeyParser, object]] = {
    "address": (parse_cidr, REQUIRED),
    "port": (number(int, 1, 65535), 47808),
    "device_id": (number(int, 0, MAX_DEVICE_INSTANCE), 599),
    "device_name": (nonempty, "ADR-Gateway"),
    "routes": (parse_routes, ()),
    "bbmd": (lambda t: "%s:%d" % parse_ip_port(t), None),
    "bbmd_ttl": (number(int, 1, 65535), 900),
    "allow_writes_from": (parse_networks, ()),
    # issue 13: identity and device management
    "vendor_id": (number(int, 0, 65535), 999),
    "vendor_name": (bacnet_text(64, allow_empty=False), "adrgw project"),
    "model_name": (bacnet_text(64, allow_empty=False), "ADR gateway (OpenADR 2.0b VEN to BACnet/IP)"),
    "description": (bacnet_text(255), "OpenADR 2.0b demand-response gateway"),
    "location": (bacnet_text(255), ""),
    "password": (bacnet_password, ""),
    "apdu_timeout": (number(int, 100, 60000), 3000),
    "apdu_retries": (number(int, 0, 10), 3),
}


def _check_bacnet(bacnet: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """A static route must not point back at the gateway's own address and port."""
    routes = bacnet.get("routes") or ()
    if isinstance(routes, tuple):
        port = bacnet.get("port")
        address = bacnet.get("address")
        for route in routes:
            if isinstance(port, int) and route.port == port and isinstance(address, str) and \
                    route.host == address.split("/")[0]:
                problems.append(f"{where} routes: network {route.network} points at this "
                                "gateway's own address and port")


def builtin_points(event_level: str) -> tuple[dict[int, str], list[str]]:
    """The gateway's own points a ``[signal.NAME]`` point must not clash with: (analogValue
    instance -> object name, every object name)."""
    from adrgw.bacnet import points as P

    specs = P.point_specs(event_level)
    return {s.instance: s.name for s in specs if s.kind == "analog"}, [s.name for s in specs]


_OBJECT_KEYS: dict[str, KeyParser] = {"object": parse_object, "property": parse_property}

PART = ConfigPart(
    sections={"bacnet": BACNET_SCHEMA},
    keys={"meter": _OBJECT_KEYS, "report.": _OBJECT_KEYS, "signal.": {"units": engineering_units}},
    prefixed={"write.": _write_target},
    checks={"bacnet": (_check_bacnet,)},
    builtin_points=builtin_points,
)

"""config.ini -> typed, validated settings.

Every problem in the file is collected before anything starts, so a technician fixing a config sees
all of them at once, each as ``<file>: [section] key: what is wrong`` (DESIGN.md section 1). Nothing
here touches the network: addresses are checked by their syntax, never resolved.
"""

from __future__ import annotations

import configparser
import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from openleadr import enums as oadr_enums

from adrgw.config import inifile

# BACnet limits, ASHRAE 135 clause 12.11 (device instance) and 6.2.2 (network numbers).
MAX_DEVICE_INSTANCE = 4194302
MAX_NETWORK_NUMBER = 65534
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

T = TypeVar("T")


class ConfigError(Exception):
    """Raised with every problem found; ``problems`` holds the one-line messages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Route:
    """A static route: BACnet network ``network`` is reached through the router at ``host:port``."""

    network: int
    host: str
    port: int


@dataclass(frozen=True)
class VenSettings:
    ven_name: str
    vtn_url: str
    ven_id: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    ca_file: Optional[str] = None
    vtn_fingerprint: Optional[str] = None
    disable_signature: bool = False
    check_hostname: bool = True
    # Added options (not in the original contract, all optional):
    request_timeout: float = 10.0  # seconds one HTTP exchange with the VTN may take
    retry_max: float = 300.0  # cap of the registration / delivery backoff, seconds
    status_report: bool = False  # offer TELEMETRY_STATUS (online, manual override) at registration
    group_ids: tuple[str, ...] = ()  # eiTarget groupIDs/groupNames this VEN belongs to (targeting.py)
    party_ids: tuple[str, ...] = ()  # eiTarget partyIDs this VEN belongs to
    protocol: str = "2.0b"  # [ven] protocol: which OpenADR adapter (issue 19/20)


@dataclass(frozen=True)
class BacnetSettings:
    address: str  # CIDR form, e.g. 192.168.0.10/24
    port: int = 47808
    device_id: int = 599
    device_name: str = "ADR-Gateway"
    routes: tuple[Route, ...] = ()
    bbmd: Optional[str] = None  # IP:PORT
    bbmd_ttl: int = 900
    allow_writes_from: tuple[str, ...] = ()  # networks (CIDR) that may write ADR-Opt-Out; empty: anyone
    # Device identity and management (issue 13): see adrgw/conformance.py and adrgw/devmgmt.py.
    vendor_id: int = 999
    vendor_name: str = "adrgw project"
    model_name: str = "ADR gateway (OpenADR 2.0b VEN to BACnet/IP)"
    description: str = "OpenADR 2.0b demand-response gateway"
    location: str = ""
    password: str = ""  # DeviceCommunicationControl / ReinitializeDevice password; empty: none asked
    apdu_timeout: int = 3000  # ms the device advertises and uses for its own confirmed requests
    apdu_retries: int = 3

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    @property
    def prefix(self) -> int:
        return int(self.address.split("/")[1])


@dataclass(frozen=True)
class MeterSettings:
    address: str = "12345:2"
    object_type: str = "analogInput"
    instance: int = 2
    property_id: str = "presentValue"  # the [meter] property key
    interval: float = 10.0
    timeout: float = 3.0
    resource_id: str = "device001"
    measurement: str = "power_real"
    unit: str = "kW"
    scale: float = 1.0

    @property
    def object(self) -> str:
        return f"{self.object_type} {self.instance}"

    @property
    def oadr_unit_scale(self) -> tuple[str, str]:
        """(OpenADR unit, SI scale code) for the report description, e.g. ('W', 'k') for kW."""
        return measurement_unit(self.measurement, self.unit)

    @property
    def network(self) -> Optional[int]:
        """The BACnet network number of a routed meter (``NET:MAC``), None for a local one."""
        m = _REMOTE_RE.match(self.address)
        return int(m.group(1)) if m else None


@dataclass(frozen=True)
class ReportPoint:
    """A ``[report.NAME]`` section: one more value sampled with the meter and reported to the VTN."""

    name: str
    address: str
    object_type: str
    instance: int
    property_id: str = "presentValue"
    resource_id: str = ""
    measurement: str = "power_real"
    unit: str = "kW"
    scale: float = 1.0

    @property
    def oadr_unit_scale(self) -> tuple[str, str]:
        return measurement_unit(self.measurement, self.unit)


@dataclass(frozen=True)
class PointSettings:
    event_level: str = "ADR-Event-Level"
    expose: bool = True  # false: a client-only gateway (no points of its own; write-through only)
    signal_name: Optional[str] = None  # the only signal driving the level; default SIMPLE
    apply_test_events: bool = False  # testEvent=true events move the points only when true


@dataclass(frozen=True)
class WriteTarget:
    """A ``[write.NAME]`` section: a point of the building the gateway commands during events."""

    name: str
    address: str
    object_type: str
    instance: int
    property_id: str = "presentValue"
    priority: int = 10
    values: tuple[tuple[float, object], ...] = ()  # (level, value to write); unmapped levels relinquish

    @property
    def kind(self) -> str:
        return target_kind(self.object_type)

    def value_for(self, level: float) -> Optional[object]:
        for mapped_level, value in self.values:
            if mapped_level == level:
                return value
        return None

    def __str__(self) -> str:
        return f"{self.address} {self.object_type} {self.instance} {self.property_id} @{self.priority}"


def target_kind(object_type: str) -> str:
    """'analog' | 'binary' | 'multistate' for the commandable object types write-through supports."""
    lowered = object_type.replace("-", "").lower()
    for kind in ("analog", "binary", "multistate"):
        if lowered.startswith(kind) and (lowered.endswith("value") or lowered.endswith("output")):
            return kind
    raise ValueError(f"object type {object_type!r} cannot be commanded by write-through "
                     "(use an analog, binary or multi-state value or output)")


def parse_target_value(kind: str, text: str) -> object:
    text = text.strip()
    if kind == "analog":
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return value
    if kind == "binary":
        lowered = text.lower()
        if lowered in ("active", "1", "on"):
            return "active"
        if lowered in ("inactive", "0", "off"):
            return "inactive"
        raise ValueError(f"{text!r} is not active or inactive")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{text!r} is not a state number (1, 2, ...)")
    return int(text)


def parse_values(kind: str, text: str) -> tuple[tuple[float, object], ...]:
    """``LEVEL=VALUE[, LEVEL=VALUE]`` e.g. ``1=74.0, 2=76.0`` or ``1=active``."""
    pairs: list[tuple[float, object]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        level_text, sep, value_text = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r} is not LEVEL=VALUE")
        try:
            level = float(level_text)
        except ValueError:
            raise ValueError(f"level {level_text.strip()!r} is not a number") from None
        if any(level == known for known, _ in pairs):
            raise ValueError(f"level {level:g} is mapped twice")
        try:
            pairs.append((level, parse_target_value(kind, value_text)))
        except ValueError as exc:
            raise ValueError(f"level {level:g}: {exc}") from None
    if not pairs:
        raise ValueError("no LEVEL=VALUE pairs")
    return tuple(pairs)


@dataclass(frozen=True)
class StateSettings:
    directory: str = "./state"
    max_backlog_hours: float = 168.0  # undelivered samples older than this are dropped, oldest first
    history_hours: float = 168.0  # delivered samples kept this long, for HISTORY_USAGE requests


# -- [http] (status page, /metrics, /healthz): parsed in its own block, see parse_http_listen ----

DEFAULT_HTTP_LISTEN = ("127.0.0.1", 8047)


@dataclass(frozen=True)
class HttpSettings:
    """Settings built in code (tests, benchmarks) have no web server unless they ask for one; a
    config file gets DEFAULT_HTTP_LISTEN when it does not mention [http]."""

    listen: Optional[tuple[str, int]] = None  # None: no web server

    @property
    def loopback(self) -> bool:
        return self.listen is None or ipaddress.IPv4Address(self.listen[0]).is_loopback


def parse_http_listen(text: Optional[str]) -> Optional[tuple[str, int]]:
    """``[http] listen``: ``IP:PORT`` (IPv4 literal, port 1..65535); missing -> the default; empty
    (the key present with no value) -> None, the web server is off. No DNS: a name is refused."""
    if text is None:
        return DEFAULT_HTTP_LISTEN
    text = text.strip()
    if not text:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not IP:PORT (e.g. 127.0.0.1:8047; empty disables the web server)")
    try:
        host = str(ipaddress.IPv4Address(host.strip()))
    except ipaddress.AddressValueError:
        raise ValueError(f"{host.strip()!r} is not an IPv4 address (e.g. 127.0.0.1:8047)") from None
    if not port_text.strip().isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port {port_text.strip()!r} is not a number in 1..65535")
    return host, int(port_text)


def _http_settings(parser: configparser.ConfigParser, name: str, problems: list[str]) -> HttpSettings:
    if not parser.has_section("http"):
        return HttpSettings(listen=DEFAULT_HTTP_LISTEN)
    for key in parser["http"]:
        if key != "listen":
            problems.append(f"{name}: [http] {key}: unknown key")
    try:
        return HttpSettings(listen=parse_http_listen(parser["http"].get("listen")))
    except ValueError as exc:
        problems.append(f"{name}: [http] listen: {exc}")
        return HttpSettings(listen=None)


@dataclass(frozen=True)
class Settings:
    ven: VenSettings
    bacnet: BacnetSettings
    meter: MeterSettings = field(default_factory=MeterSettings)
    points: PointSettings = field(default_factory=PointSettings)
    state: StateSettings = field(default_factory=StateSettings)
    log_level: str = "INFO"
    source: str = "config.ini"
    writes: tuple[WriteTarget, ...] = ()
    reports: tuple[ReportPoint, ...] = ()
    http: HttpSettings = field(default_factory=HttpSettings)
    signals: tuple[Any, ...] = ()  # signals.SignalPoint, one per [signal.NAME] section


# ---------------------------------------------------------------------------------------------
# syntax checks (pure, no DNS)

_REMOTE_RE = re.compile(r"^(\d+):(0x[0-9A-Fa-f]+|\d+)$")
_IP_PORT_RE = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d+))?$")
_FINGERPRINT_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$")
_OBJECT_RE = re.compile(r"^([A-Za-z][A-Za-z-]*)[ ,:](\d+)$")


def _ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ipaddress.AddressValueError as exc:
        raise ValueError(f"{text!r} is not an IPv4 address") from exc


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is out of range 1..65535")
    return value


def parse_ip_port(text: str, default_port: Optional[int] = None) -> tuple[str, int]:
    """``IP[:PORT]`` -> (ip, port); the port is required when no default is given."""
    m = _IP_PORT_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not IP:PORT")
    host = _ipv4(m.group(1))
    if m.group(2) is None:
        if default_port is None:
            raise ValueError(f"{text!r} has no port (IP:PORT expected)")
        return host, default_port
    return host, _port(m.group(2))


def parse_bacnet_address(text: str) -> str:
    """A BACnet address: ``NET:MAC`` (routed, MAC decimal or 0x-hex, 1 byte for MS/TP) or ``IP[:PORT]``."""
    text = text.strip()
    m = _REMOTE_RE.match(text)
    if m:
        net = int(m.group(1))
        if not 1 <= net <= MAX_NETWORK_NUMBER:
            raise ValueError(f"network {net} is out of range 1..{MAX_NETWORK_NUMBER}")
        mac = int(m.group(2), 0)
        if not 0 <= mac <= 255:
            raise ValueError(f"MAC {mac} is out of range 0..255 (NET:MAC expected)")
        return f"{net}:{mac}"
    if _IP_PORT_RE.match(text):
        host, port = parse_ip_port(text, default_port=47808)
        return f"{host}:{port}"
    raise ValueError(f"{text!r} is not a BACnet address (NET:MAC or IP[:PORT])")


def parse_routes(text: str) -> tuple[Route, ...]:
    """``NET=IP:PORT[, NET=IP:PORT]``."""
    routes: list[Route] = []
    seen: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        net_text, sep, target = part.partition("=")
        if not sep or not net_text.strip().isdigit():
            raise ValueError(f"{part!r} is not NET=IP:PORT")
        net = int(net_text)
        if not 1 <= net <= MAX_NETWORK_NUMBER:
            raise ValueError(f"network {net} is out of range 1..{MAX_NETWORK_NUMBER}")
        if net in seen:
            raise ValueError(f"network {net} is routed twice")
        seen.add(net)
        host, port = parse_ip_port(target.strip())
        routes.append(Route(net, host, port))
    return tuple(routes)


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


def parse_cidr(text: str) -> str:
    if "/" not in text:
        raise ValueError(f"{text!r} is not in CIDR form (e.g. 192.168.0.10/24)")
    ip, _, prefix = text.partition("/")
    _ipv4(ip.strip())
    if not prefix.strip().isdigit() or not 0 <= int(prefix) <= 32:
        raise ValueError(f"prefix /{prefix} is not 0..32")
    return f"{ip.strip()}/{int(prefix)}"


def parse_networks(text: str) -> tuple[str, ...]:
    """``IP[/PREFIX][, IP[/PREFIX]]`` -> normalized CIDR strings."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.IPv4Network(part, strict=False)))
        except ValueError:
            raise ValueError(f"{part!r} is not an IPv4 address or network (e.g. 192.168.0.20 or 10.1.2.0/24)") from None
    return tuple(networks)


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _number(kind: Callable[[str], T], low: float, high: float) -> Callable[[str], T]:
    def parse(text: str) -> T:
        try:
            value = kind(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        if not low <= value <= high:  # type: ignore[operator]
            raise ValueError(f"{value} is out of range {low:.15g}..{high:.15g}")
        return value

    return parse


def _bacnet_text(limit: int, allow_empty: bool = True) -> Callable[[str], str]:
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


def _bacnet_password(text: str) -> str:
    """DeviceCommunicationControl/ReinitializeDevice password: 1..20 printable characters
    (ASHRAE 135 clauses 16.1 and 16.4 limit it to 20)."""
    value = text.strip()
    if len(value) > 20:
        raise ValueError(f"{len(value)} characters, at most 20 allowed (ASHRAE 135 16.1)")
    if not value.isprintable():
        raise ValueError("contains control characters")
    return value


def _nonempty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def _url(text: str) -> str:
    text = text.strip()
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", text):
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


def _fingerprint(text: str) -> str:
    text = text.strip()
    if not _FINGERPRINT_RE.match(text):
        raise ValueError(f"{text!r} is not a fingerprint (hex pairs separated by ':')")
    return text.upper()


def _readable_file(text: str) -> str:
    path = text.strip()
    if not os.path.isfile(path):
        raise ValueError(f"file {path!r} does not exist")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file {path!r} is not readable")
    return path


def _measurement(text: str) -> str:
    name = text.strip()
    if name.upper() not in oadr_enums.MEASUREMENTS.members:
        known = ", ".join(sorted(m.lower() for m in oadr_enums.MEASUREMENTS.members))
        raise ValueError(f"unknown measurement {name!r}; known: {known}")
    return name.lower()


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


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


def check_tls_files(cert: Optional[str], key: Optional[str], ca_file: Optional[str]) -> list[tuple[str, str]]:
    """(key, problem) pairs for the [ven] TLS files: format, expiry, key/cert match, key permissions.

    Messages name files and facts only, never key material.
    """
    from datetime import datetime, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    problems: list[tuple[str, str]] = []
    certificate = private_key = None
    if cert:
        try:
            certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
        except (ValueError, OSError):
            problems.append(("cert", f"file {cert!r} is not a PEM certificate"))
        else:
            expires = certificate.not_valid_after_utc
            if expires < datetime.now(timezone.utc):
                problems.append(("cert", f"certificate {cert!r} expired on {expires:%Y-%m-%d}"))
    if key:
        mode = os.stat(key).st_mode
        if mode & 0o077:
            problems.append(("key", f"file {key!r} is readable by group or others (mode {mode & 0o777:o}); "
                                    "chmod 600 it"))
        try:
            private_key = serialization.load_pem_private_key(Path(key).read_bytes(), password=None)
        except TypeError:
            problems.append(("key", f"file {key!r} is an encrypted key; the gateway needs it unencrypted"))
        except (ValueError, OSError):
            problems.append(("key", f"file {key!r} is not a PEM private key"))
    if certificate is not None and private_key is not None:
        fmt = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.DER
        if certificate.public_key().public_bytes(enc, fmt) != private_key.public_key().public_bytes(enc, fmt):
            problems.append(("key", f"file {key!r} does not match the certificate in {cert!r}"))
    if ca_file:
        try:
            if not x509.load_pem_x509_certificates(Path(ca_file).read_bytes()):
                raise ValueError
        except (ValueError, OSError):
            problems.append(("ca_file", f"file {ca_file!r} contains no PEM certificate"))
    return problems


def parse_id_list(text: str) -> tuple[str, ...]:
    """``a, b, c`` -> ('a', 'b', 'c'): IDs as the VTN spells them (case-sensitive), no duplicates."""
    ids: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if re.search(r"\s", part):
            raise ValueError(f"{part!r} contains white space (separate IDs with commas)")
        if part in ids:
            raise ValueError(f"{part!r} is listed twice")
        ids.append(part)
    return tuple(ids)


# ---------------------------------------------------------------------------------------------
# the schema: section -> key -> (parser, default or REQUIRED)

REQUIRED = object()
_SCHEMA: dict[str, dict[str, tuple[Callable[[str], object], object]]] = {
    "ven": {
        "ven_name": (_nonempty, REQUIRED),
        "vtn_url": (_url, REQUIRED),
        "ven_id": (str.strip, None),
        "cert": (_readable_file, None),
        "key": (_readable_file, None),
        "ca_file": (_readable_file, None),
        "vtn_fingerprint": (_fingerprint, None),
        "disable_signature": (parse_bool, False),
        "check_hostname": (parse_bool, True),
        "request_timeout": (_number(float, 0.5, 120), 10.0),
        "retry_max": (_number(float, 1, 3600), 300.0),
        "status_report": (parse_bool, False),
        "group_ids": (parse_id_list, ()),
        "party_ids": (parse_id_list, ()),
    },
    "bacnet": {
        "address": (parse_cidr, REQUIRED),
        "port": (_number(int, 1, 65535), 47808),
        "device_id": (_number(int, 0, MAX_DEVICE_INSTANCE), 599),
        "device_name": (_nonempty, "ADR-Gateway"),
        "routes": (parse_routes, ()),
        "bbmd": (lambda t: "%s:%d" % parse_ip_port(t), None),
        "bbmd_ttl": (_number(int, 1, 65535), 900),
        "allow_writes_from": (parse_networks, ()),
        # issue 13: identity and device management
        "vendor_id": (_number(int, 0, 65535), 999),
        "vendor_name": (_bacnet_text(64, allow_empty=False), "adrgw project"),
        "model_name": (_bacnet_text(64, allow_empty=False), "ADR gateway (OpenADR 2.0b VEN to BACnet/IP)"),
        "description": (_bacnet_text(255), "OpenADR 2.0b demand-response gateway"),
        "location": (_bacnet_text(255), ""),
        "password": (_bacnet_password, ""),
        "apdu_timeout": (_number(int, 100, 60000), 3000),
        "apdu_retries": (_number(int, 0, 10), 3),
    },
    "meter": {
        "address": (parse_bacnet_address, "12345:2"),
        "object": (parse_object, ("analogInput", 2)),
        "property": (parse_property, "presentValue"),
        "interval": (_number(float, 0.1, 86400), 10.0),
        "timeout": (_number(float, 0.05, 3600), 3.0),
        "resource_id": (_nonempty, "device001"),
        "measurement": (_measurement, "power_real"),
        "unit": (_nonempty, "kW"),
        "scale": (_number(float, -1e12, 1e12), 1.0),
    },
    "points": {
        "event_level": (_nonempty, "ADR-Event-Level"),
        "expose": (parse_bool, True),
        "signal_name": (_nonempty, None),
        "apply_test_events": (parse_bool, False),
    },
    "state": {
        "directory": (_nonempty, "./state"),
        "max_backlog_hours": (_number(float, 0.0001, 87600), 168.0),
        "history_hours": (_number(float, 0, 87600), 168.0),
    },
    "logging": {
        "level": (_log_level, "INFO"),
    },
}


def load(path: str | os.PathLike[str]) -> Settings:
    """Read and validate ``path``; raise ConfigError listing every problem."""
    try:
        parser = inifile.read(path)
    except inifile.IniError as exc:
        raise ConfigError(exc.problems) from None
    return from_parser(parser, str(path))


def from_parser(parser: configparser.ConfigParser, name: str = "config.ini") -> Settings:
    problems: list[str] = []
    values: dict[str, dict[str, object]] = {}

    writes: list[WriteTarget] = []
    reports: list[ReportPoint] = []
    for section in parser.sections():
        if section.startswith("write."):
            target = _write_target(parser[section], section, name, problems)
            if target is not None:
                writes.append(target)
        elif section.startswith("report."):
            point = _report_point(parser[section], section, name, problems)
            if point is not None:
                reports.append(point)
        elif section.startswith("signal."):
            pass  # parsed below, once [points] is known (signals.parse_sections)
        elif section not in _SCHEMA and section != "http":
            problems.append(f"{name}: [{section}]: unknown section"
                            f"{inifile.did_you_mean(section, [*_SCHEMA, 'http'])} "
                            f"(known: {', '.join(_SCHEMA)}, http, write.NAME, report.NAME, signal.NAME)")
    for section, keys in _SCHEMA.items():
        got = parser[section] if parser.has_section(section) else {}
        values[section] = {}
        for key in got:
            if key not in keys:
                problems.append(f"{name}: [{section}] {key}: unknown key{inifile.did_you_mean(key, keys)}")
        for key, (parse, default) in keys.items():
            raw = got.get(key) if got else None
            if raw is None or raw.strip() == "":
                if default is REQUIRED:
                    problems.append(f"{name}: [{section}] {key}: required but missing")
                values[section][key] = default
                continue
            try:
                values[section][key] = parse(raw)
            except ValueError as exc:
                problems.append(f"{name}: [{section}] {key}: {exc}")
                values[section][key] = None

    http = _http_settings(parser, name, problems)
    ven: dict[str, Any] = values["ven"]
    meter: dict[str, Any] = values["meter"]
    # Cross-key checks, only when the keys themselves were fine.
    if (ven.get("cert") is None) != (ven.get("key") is None):
        missing = "key" if ven.get("key") is None else "cert"
        problems.append(f"{name}: [ven] {missing}: cert and key must be given together")
    if not any(p.startswith(f"{name}: [ven] {k}:") for p in problems for k in ("cert", "key", "ca_file")):
        for key_name, problem in check_tls_files(ven.get("cert"), ven.get("key"), ven.get("ca_file")):
            problems.append(f"{name}: [ven] {key_name}: {problem}")
    if isinstance(ven.get("vtn_url"), str) and ven["vtn_url"].startswith("http://") and ven.get("cert"):
        problems.append(f"{name}: [ven] vtn_url: a client certificate is configured but the URL is http://")
    if isinstance(meter.get("timeout"), float) and isinstance(meter.get("interval"), float) \
            and meter["timeout"] >= meter["interval"]:
        problems.append(f"{name}: [meter] timeout: {meter['timeout']:g} s must be shorter than "
                        f"interval ({meter['interval']:g} s)")
    if isinstance(meter.get("measurement"), str) and isinstance(meter.get("unit"), str):
        try:
            measurement_unit(meter["measurement"], meter["unit"])
        except ValueError as exc:
            problems.append(f"{name}: [meter] unit: {exc}")
    bacnet: dict[str, Any] = values["bacnet"]
    routes = bacnet.get("routes") or ()
    if isinstance(routes, tuple):
        port = bacnet.get("port")
        address = bacnet.get("address")
        for route in routes:
            if isinstance(port, int) and route.port == port and isinstance(address, str) and \
                    route.host == address.split("/")[0]:
                problems.append(f"{name}: [bacnet] routes: network {route.network} points at this "
                                "gateway's own address and port")

    signal_points = _signal_points(parser, name, problems, values["points"])

    if problems:
        raise ConfigError(problems)

    obj_type, instance = meter["object"]
    return Settings(
        ven=VenSettings(**{k: v for k, v in ven.items()}),  # type: ignore[arg-type]
        bacnet=BacnetSettings(**values["bacnet"]),  # type: ignore[arg-type]
        meter=MeterSettings(
            address=meter["address"], object_type=obj_type, instance=instance,  # type: ignore[arg-type]
            property_id=meter["property"], interval=meter["interval"],  # type: ignore[arg-type]
            timeout=meter["timeout"], resource_id=meter["resource_id"],  # type: ignore[arg-type]
            measurement=meter["measurement"], unit=meter["unit"], scale=meter["scale"],  # type: ignore[arg-type]
        ),
        points=PointSettings(**values["points"]),  # type: ignore[arg-type]
        state=StateSettings(**values["state"]),  # type: ignore[arg-type]
        log_level=values["logging"]["level"],  # type: ignore[arg-type]
        source=name,
        writes=tuple(writes),
        reports=tuple(reports),
        http=http,
        signals=signal_points,
    )


def _signal_points(parser: configparser.ConfigParser, name: str, problems: list[str],
                   points: dict[str, Any]) -> tuple[Any, ...]:
    """The [signal.NAME] sections (adrgw/signals.py), checked against the built-in points."""
    from adrgw.bacnet import points as P
    from adrgw.core.signals import parse_sections

    level_name = points.get("event_level") or "ADR-Event-Level"
    specs = P.point_specs(level_name)
    return parse_sections(parser, name, problems, points.get("signal_name"),
                          reserved={s.instance: s.name for s in specs if s.kind == "analog"},
                          reserved_names=[s.name for s in specs])


_REPORT_SCHEMA: dict[str, tuple[Callable[[str], object], object]] = {
    "address": (parse_bacnet_address, REQUIRED),
    "object": (parse_object, REQUIRED),
    "property": (parse_property, "presentValue"),
    "resource_id": (_nonempty, None),
    "measurement": (_measurement, "power_real"),
    "unit": (_nonempty, "kW"),
    "scale": (_number(float, -1e12, 1e12), 1.0),
}


def _report_point(section: configparser.SectionProxy, title: str, name: str,
                  problems: list[str]) -> Optional[ReportPoint]:
    """One [report.NAME] section, or None with its problems appended."""
    before = len(problems)
    point_name = title[len("report."):]
    if not re.match(r"^[A-Za-z0-9_.-]+$", point_name):
        problems.append(f"{name}: [{title}]: the name after 'report.' may use letters, digits, _ . and - only")
    values: dict[str, Any] = {}
    for key in section:
        if key not in _REPORT_SCHEMA:
            problems.append(f"{name}: [{title}] {key}: unknown key{inifile.did_you_mean(key, _REPORT_SCHEMA)}")
    for key, (parse, default) in _REPORT_SCHEMA.items():
        raw = section.get(key, "").strip()
        if not raw:
            if default is REQUIRED:
                problems.append(f"{name}: [{title}] {key}: required but missing")
            values[key] = default
            continue
        try:
            values[key] = parse(raw)
        except ValueError as exc:
            problems.append(f"{name}: [{title}] {key}: {exc}")
    if len(problems) == before:
        try:
            measurement_unit(values["measurement"], values["unit"])
        except ValueError as exc:
            problems.append(f"{name}: [{title}] unit: {exc}")
    if len(problems) > before:
        return None
    object_type, instance = values["object"]
    return ReportPoint(name=point_name, address=values["address"], object_type=object_type, instance=instance,
                       property_id=values["property"], resource_id=values["resource_id"] or point_name,
                       measurement=values["measurement"], unit=values["unit"], scale=values["scale"])


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
            priority = _number(int, 1, 16)(section["priority"])
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


def summary(settings: Settings) -> list[str]:
    """The short summary ``--check`` prints."""
    s = settings
    routes = ", ".join(f"{r.network}={r.host}:{r.port}" for r in s.bacnet.routes) or "none (router discovery)"
    return [
        f"{s.source}: OK",
        f"  VEN {s.ven.ven_name!r} -> VTN {s.ven.vtn_url}"
        + (" (TLS client certificate)" if s.ven.cert else ""),
        f"  BACnet device {s.bacnet.device_id} {s.bacnet.device_name!r} on {s.bacnet.address} port {s.bacnet.port}",
        f"  routes: {routes}",
        f"  meter {s.meter.address} {s.meter.object} {s.meter.property_id} every {s.meter.interval:g} s "
        f"(timeout {s.meter.timeout:g} s) -> {s.meter.resource_id} {s.meter.measurement} [{s.meter.unit}] x{s.meter.scale:g}",
        f"  point {s.points.event_level!r} (analogValue 1); state in {s.state.directory}",
    ] + [f"  status page: http://{s.http.listen[0]}:{s.http.listen[1]}/ (also /metrics, /healthz)"
         if s.http.listen else "  status page: off ([http] listen is empty)"] + [
         f"  signal {p.signal_name}{' ' + p.signal_type if p.signal_type else ''} -> {p.object_name!r} "
         f"(analogValue {p.instance}, {p.units}, idle {p.idle:g})" for p in s.signals]

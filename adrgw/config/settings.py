"""config.ini -> typed, validated settings: the generic part.

Every problem in the file is collected before anything starts, so a technician fixing a config sees
all of them at once, each as ``<file>: [section] key: what is wrong`` (one line per problem, exit 2,
never a traceback: the command line's contract). Nothing here touches the network: addresses are
checked by their syntax, never resolved.

This module knows the sections every gateway has ([meter], [points], [state], [logging], [http],
[report.NAME], [signal.NAME]) and the settings types. It imports no protocol library: each adapter
contributes a ``ConfigPart`` (the sections it owns, the checks of the names only it knows), and
adrgw/settings_load.py hands the adapters' parts to ``load``.
"""

from __future__ import annotations

import configparser
import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, TypeVar

from adrgw.config import inifile
from adrgw.config.inifile import ConfigError
from adrgw.config.signals import parse_sections

# BACnet limits, ASHRAE 135 clause 12.11 (device instance) and 6.2.2 (network numbers).
MAX_DEVICE_INSTANCE = 4194302
MAX_NETWORK_NUMBER = 65534
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

T = TypeVar("T")


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


class VenCommon(Protocol):
    """What every protocol's ``[ven]`` settings have: the composition root, the page, --status and
    --check read only these. Protocol 2.0b: ``VenSettings``; another protocol's ConfigPart builds its
    own (``ConfigPart.ven_settings``, e.g. adrgw/openadr3/config.py), keeping these names."""

    protocol: str
    ven_name: str
    vtn_url: str
    cert: Optional[str]
    request_timeout: float
    retry_max: float
    group_ids: tuple[str, ...]
    party_ids: tuple[str, ...]


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
    ven: VenSettings  # protocol 2.0b; another protocol's own settings object (a VenCommon) otherwise
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
OBJECT_RE = re.compile(r"^([A-Za-z][A-Za-z-]*)[ ,:](\d+)$")


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


def object_syntax(text: str) -> tuple[str, int]:
    """``analogInput 2`` -> ('analogInput', 2), by syntax only: the BACnet adapter's parser also checks
    that the type is a BACnet object type."""
    m = OBJECT_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not 'objectType instance' (e.g. 'analogInput 2')")
    instance = int(m.group(2))
    if not 0 <= instance <= MAX_DEVICE_INSTANCE:
        raise ValueError(f"instance {instance} is out of range 0..{MAX_DEVICE_INSTANCE}")
    return m.group(1), instance


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


def number(kind: Callable[[str], T], low: float, high: float) -> Callable[[str], T]:
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


def nonempty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def url(text: str) -> str:
    text = text.strip()
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", text):
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


def fingerprint(text: str) -> str:
    text = text.strip()
    if not _FINGERPRINT_RE.match(text):
        raise ValueError(f"{text!r} is not a fingerprint (hex pairs separated by ':')")
    return text.upper()


def readable_file(text: str) -> str:
    path = text.strip()
    if not os.path.isfile(path):
        raise ValueError(f"file {path!r} does not exist")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file {path!r} is not readable")
    return path


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


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
# the schema: section -> key -> (parser, default or REQUIRED); the adapters' parts add to it

REQUIRED = object()
KeyParser = Callable[[str], object]
Schema = Mapping[str, tuple[KeyParser, object]]
# (the parsed values of one section, "config.ini: [section]", problems): appends what is wrong
SectionCheck = Callable[[Mapping[str, Any], str, list[str]], None]
# (the section, its title, the file name, problems) -> the parsed item, or None with its problems appended
SectionParser = Callable[[configparser.SectionProxy, str, str, list[str]], Any]

# The [ven] protocol this gateway speaks unless the file says otherwise.
DEFAULT_PROTOCOL = "2.0b"


@dataclass(frozen=True)
class ConfigPart:
    """One adapter's share of config.ini, handed to ``load``.

    The generic sections check syntax only (an object is ``TYPE INSTANCE``, a measurement is a
    word); an adapter that knows the real names (bacpypes3's object types, openleadr's
    measurements) validates those keys instead, with the same messages the technician always saw.
    """

    # whole sections the adapter owns, e.g. {"ven": {...}}, in the order --check reports them
    sections: Mapping[str, Schema] = field(default_factory=dict)
    # the adapter's parsers for keys of shared sections: {"meter" | "report." | "signal.": {key: parser}}
    keys: Mapping[str, Mapping[str, KeyParser]] = field(default_factory=dict)
    # sections by prefix the adapter parses alone, e.g. {"write.": one [write.NAME] section -> WriteTarget}
    prefixed: Mapping[str, SectionParser] = field(default_factory=dict)
    # cross-key checks per section ("ven", "meter", "report." ...), run once the keys were parsed
    checks: Mapping[str, Sequence[SectionCheck]] = field(default_factory=dict)
    # [points] event_level -> the built-in points a [signal.NAME] point must not clash with:
    # (analogValue instance -> object name, every object name)
    builtin_points: Optional[Callable[[str], tuple[dict[int, str], list[str]]]] = None
    # the [ven] settings object from the parsed [ven] values (default: VenSettings, protocol 2.0b)
    ven_settings: Optional[Callable[..., Any]] = None


def _lower_word(text: str) -> str:
    return nonempty(text).lower()


_SCHEMA: dict[str, dict[str, tuple[KeyParser, object]]] = {
    "meter": {
        "address": (parse_bacnet_address, "12345:2"),
        "object": (object_syntax, ("analogInput", 2)),
        "property": (nonempty, "presentValue"),
        "interval": (number(float, 0.1, 86400), 10.0),
        "timeout": (number(float, 0.05, 3600), 3.0),
        "resource_id": (nonempty, "device001"),
        "measurement": (_lower_word, "power_real"),
        "unit": (nonempty, "kW"),
        "scale": (number(float, -1e12, 1e12), 1.0),
    },
    "points": {
        "event_level": (nonempty, "ADR-Event-Level"),
        "expose": (parse_bool, True),
        "signal_name": (nonempty, None),
        "apply_test_events": (parse_bool, False),
    },
    "state": {
        "directory": (nonempty, "./state"),
        "max_backlog_hours": (number(float, 0.0001, 87600), 168.0),
        "history_hours": (number(float, 0, 87600), 168.0),
    },
    "logging": {
        "level": (_log_level, "INFO"),
    },
}


def _check_meter(meter: Mapping[str, Any], where: str, problems: list[str]) -> None:
    if isinstance(meter.get("timeout"), float) and isinstance(meter.get("interval"), float) \
            and meter["timeout"] >= meter["interval"]:
        problems.append(f"{where} timeout: {meter['timeout']:g} s must be shorter than "
                        f"interval ({meter['interval']:g} s)")


_CHECKS: dict[str, tuple[SectionCheck, ...]] = {"meter": (_check_meter,)}


def _with_keys(schema: Schema, section: str, parts: Sequence[ConfigPart]) -> dict[str, tuple[KeyParser, object]]:
    """``schema`` with the parts' parsers for its keys (the defaults and the key order stay)."""
    merged = dict(schema)
    for part in parts:
        for key, parse in part.keys.get(section, {}).items():
            merged[key] = (parse, merged[key][1])
    return merged


def _parse_keys(got: Mapping[str, str], schema: Schema, where: str, problems: list[str],
                foreign: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """Every key of one section: unknown keys named (with a "did you mean"; a key of another
    protocol says which), values parsed."""
    values: dict[str, Any] = {}
    for key in got:
        if key not in schema and foreign and key in foreign:
            problems.append(f"{where} {key}: {foreign[key]}")
        elif key not in schema:
            problems.append(f"{where} {key}: unknown key{inifile.did_you_mean(key, schema)}")
    for key, (parse, default) in schema.items():
        raw = got.get(key)
        if raw is None or raw.strip() == "":
            if default is REQUIRED:
                problems.append(f"{where} {key}: required but missing")
            values[key] = default
            continue
        try:
            values[key] = parse(raw)
        except ValueError as exc:
            problems.append(f"{where} {key}: {exc}")
            values[key] = None
    return values


def load(path: str | os.PathLike[str], protocols: Mapping[str, ConfigPart],
         parts: Sequence[ConfigPart] = ()) -> Settings:
    """Read and validate ``path``; raise ConfigError listing every problem. ``protocols``: the
    OpenADR adapters' parts by ``[ven] protocol`` value; ``parts``: the other adapters' (BACnet)."""
    return from_parser(inifile.read(path), str(path), protocols, parts)


def _protocol(parser: configparser.ConfigParser, name: str, protocols: Mapping[str, ConfigPart],
              problems: list[str]) -> Optional[str]:
    """``[ven] protocol``: which OpenADR adapter reads [ven]; None (with a problem) when unknown."""
    raw = parser.get("ven", "protocol", fallback="").strip() or DEFAULT_PROTOCOL
    if raw in protocols:
        return raw
    problems.append(f"{name}: [ven] protocol: {raw!r} is not a supported protocol{inifile.did_you_mean(raw, protocols)} "
                    f"(supported: {', '.join(protocols)})")
    return None


def _foreign_ven_keys(protocol: Optional[str], protocols: Mapping[str, ConfigPart]) -> dict[str, str]:
    """[ven] keys only other protocols know -> the problem line's text (a 2.0b key in a 3.1 file)."""
    if protocol is None:
        return {}
    ours = protocols[protocol].sections.get("ven", {})
    found: dict[str, str] = {}
    for other, part in protocols.items():
        for key in part.sections.get("ven", {}):
            if other != protocol and key not in ours and key != "protocol":
                found.setdefault(key, f"a key of protocol {other}, not used with protocol = {protocol} (remove it)")
    return found


def from_parser(parser: configparser.ConfigParser, name: str, protocols: Mapping[str, ConfigPart],
                parts: Sequence[ConfigPart] = ()) -> Settings:
    problems: list[str] = []
    protocol = _protocol(parser, name, protocols, problems)
    ven_part = protocols[protocol if protocol is not None else DEFAULT_PROTOCOL]
    all_parts = (ven_part, *parts)
    schemas: dict[str, dict[str, tuple[KeyParser, object]]] = {}
    for part in all_parts:
        schemas.update({section: dict(schema) for section, schema in part.sections.items()})
    schemas["ven"]["protocol"] = (str.strip, DEFAULT_PROTOCOL)  # read above; listed so it is a known key
    schemas.update({section: _with_keys(schema, section, all_parts) for section, schema in _SCHEMA.items()})
    prefixed: dict[str, SectionParser] = {}
    for part in all_parts:
        prefixed.update(part.prefixed)
    checks: dict[str, list[SectionCheck]] = {}
    for section, found in [*_CHECKS.items(), *(c for part in all_parts for c in part.checks.items())]:
        checks.setdefault(section, []).extend(found)
    report_schema = _with_keys(_REPORT_SCHEMA, "report.", all_parts)

    items: dict[str, list[Any]] = {prefix: [] for prefix in prefixed}
    reports: list[ReportPoint] = []
    for section in parser.sections():
        prefix = next((p for p in prefixed if section.startswith(p)), None)
        if prefix is not None:
            item = prefixed[prefix](parser[section], section, name, problems)
            if item is not None:
                items[prefix].append(item)
        elif section.startswith("report."):
            point = _report_point(parser[section], section, name, problems, report_schema,
                                  checks.get("report.", ()))
            if point is not None:
                reports.append(point)
        elif section.startswith("signal."):
            pass  # parsed below, once [points] is known (signals.parse_sections)
        elif section not in schemas and section != "http":
            problems.append(f"{name}: [{section}]: unknown section"
                            f"{inifile.did_you_mean(section, [*schemas, 'http'])} "
                            f"(known: {', '.join(schemas)}, http, "
                            f"{', '.join(p + 'NAME' for p in [*prefixed, 'report.', 'signal.'])})")
    values: dict[str, dict[str, Any]] = {}
    for section, keys in schemas.items():
        if section == "ven" and protocol is None:
            values[section] = {}  # which protocol's keys these are is unknown: not checked
            continue
        got = parser[section] if parser.has_section(section) else {}
        foreign = _foreign_ven_keys(protocol, protocols) if section == "ven" else None
        values[section] = _parse_keys(got, keys, f"{name}: [{section}]", problems, foreign)

    http = _http_settings(parser, name, problems)
    # Cross-key checks, only when the keys themselves were fine: [ven], the generic sections, then
    # the other adapters' sections (the order --check has always listed them in).
    for section in [*ven_part.sections, *_SCHEMA, *(s for part in parts for s in part.sections)]:
        if section in values and values[section]:
            for check in checks.get(section, ()):
                check(values[section], f"{name}: [{section}]", problems)

    signal_points = _signal_points(parser, name, problems, values["points"], all_parts)

    if problems:
        raise ConfigError(problems)

    meter = values["meter"]
    obj_type, instance = meter["object"]
    make_ven = ven_part.ven_settings or VenSettings
    return Settings(
        ven=make_ven(**values["ven"]),
        bacnet=BacnetSettings(**values["bacnet"]),
        meter=MeterSettings(
            address=meter["address"], object_type=obj_type, instance=instance,
            property_id=meter["property"], interval=meter["interval"],
            timeout=meter["timeout"], resource_id=meter["resource_id"],
            measurement=meter["measurement"], unit=meter["unit"], scale=meter["scale"],
        ),
        points=PointSettings(**values["points"]),
        state=StateSettings(**values["state"]),
        log_level=values["logging"]["level"],
        source=name,
        writes=tuple(items.get("write.", ())),
        reports=tuple(reports),
        http=http,
        signals=signal_points,
    )


def _signal_points(parser: configparser.ConfigParser, name: str, problems: list[str],
                   points: Mapping[str, Any], parts: Sequence[ConfigPart]) -> tuple[Any, ...]:
    """The [signal.NAME] sections (adrgw/config/signals.py), checked against the built-in points."""
    level_name = points.get("event_level") or "ADR-Event-Level"
    reserved: dict[int, str] = {}
    reserved_names: list[str] = []
    for part in parts:
        if part.builtin_points is not None:
            instances, names = part.builtin_points(level_name)
            reserved.update(instances)
            reserved_names += names
    parsers: dict[str, KeyParser] = {}
    for part in parts:
        parsers.update(part.keys.get("signal.", {}))
    return parse_sections(parser, name, problems, points.get("signal_name"),
                          reserved=reserved, reserved_names=reserved_names, parsers=parsers)


_REPORT_SCHEMA: dict[str, tuple[KeyParser, object]] = {
    "address": (parse_bacnet_address, REQUIRED),
    "object": (object_syntax, REQUIRED),
    "property": (nonempty, "presentValue"),
    "resource_id": (nonempty, None),
    "measurement": (_lower_word, "power_real"),
    "unit": (nonempty, "kW"),
    "scale": (number(float, -1e12, 1e12), 1.0),
}


def _report_point(section: configparser.SectionProxy, title: str, name: str, problems: list[str],
                  schema: Schema, checks: Sequence[SectionCheck]) -> Optional[ReportPoint]:
    """One [report.NAME] section, or None with its problems appended."""
    before = len(problems)
    point_name = title[len("report."):]
    if not re.match(r"^[A-Za-z0-9_.-]+$", point_name):
        problems.append(f"{name}: [{title}]: the name after 'report.' may use letters, digits, _ . and - only")
    values = _parse_keys({key: section[key].strip() for key in section}, schema, f"{name}: [{title}]", problems)
    if len(problems) == before:
        for check in checks:
            check(values, f"{name}: [{title}]", problems)
    if len(problems) > before:
        return None
    object_type, instance = values["object"]
    return ReportPoint(name=point_name, address=values["address"], object_type=object_type, instance=instance,
                       property_id=values["property"], resource_id=values["resource_id"] or point_name,
                       measurement=values["measurement"], unit=values["unit"], scale=values["scale"])



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
         f"(analogValue {p.instance}, {p.units}, idle {p.idle:g})" for p in s.signals] + list(
         getattr(s.ven, "summary_lines", lambda: [])())

"""The OpenADR 3.1 adapter's share of config.ini: the ``[ven]`` keys of ``protocol = 3.1``.

The key names are fixed by issue 20 (README "OpenADR 3.1"). adrgw/config checks syntax and collects
the problems; this module only adds the 3.1 keys, their cross-key checks and the settings object
(``Ven31Settings``), so 2.0b's ``VenSettings`` stays exactly as it was. A 2.0b-only key in a 3.1
file (ven_id, vtn_fingerprint, ...) is reported by the loader, which knows every protocol's keys.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from adrgw.config.settings import (
    REQUIRED, ConfigPart, KeyParser, check_tls_files, nonempty, number, parse_bool, parse_ip_port, readable_file,
    url,
)

# The value of ``[ven] protocol`` this adapter speaks.
PROTOCOL = "3.1"
NOTIFICATIONS = ("auto", "mqtt", "webhook", "poll")


@dataclass(frozen=True)
class Ven31Settings:
    """``[ven]`` of an OpenADR 3.1.0 VEN (the fields of config.settings.VenCommon, and the 3.1 keys)."""

    vtn_url: str  # base URL including the version path, e.g. https://vtn.example/openadr3/3.1.0
    ven_name: str  # the VEN object's venName
    client_id: str
    client_secret: Optional[str] = None
    client_secret_file: Optional[str] = None
    token_url: Optional[str] = None  # None: GET {vtn_url}/auth/server, else {vtn_url}/auth/token
    notifications: str = "auto"  # auto | mqtt | webhook | poll
    poll_interval: float = 30.0  # the poll period, and the full re-sync period in the other modes
    programs: tuple[str, ...] = ()  # programNames to follow; empty: every program this VEN can see
    callback_url: Optional[str] = None  # webhook mode: the https URL the VTN posts to
    callback_listen: Optional[tuple[str, int]] = None  # webhook mode: where we serve it (IP:PORT)
    ca_file: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    check_hostname: bool = True
    request_timeout: float = 10.0
    retry_max: float = 300.0
    protocol: str = PROTOCOL
    # VenCommon: 3.1 targets are the VTN's business (the VEN object's targets), not configured here.
    group_ids: tuple[str, ...] = field(default=(), repr=False)
    party_ids: tuple[str, ...] = field(default=(), repr=False)

    def secret(self) -> str:
        """The client secret: ``client_secret``, else the first line of ``client_secret_file`` (read
        now, so a rotated secret is picked up at the next token request)."""
        if self.client_secret:
            return self.client_secret
        if self.client_secret_file:
            return Path(self.client_secret_file).read_text(encoding="utf-8").strip().splitlines()[0].strip()
        return ""

    def summary_lines(self) -> list[str]:
        """What ``--check`` adds to its summary for 3.1."""
        mode = self.notifications
        if mode == "webhook" and self.callback_url and self.callback_listen:
            mode += f" ({self.callback_url}, served on {self.callback_listen[0]}:{self.callback_listen[1]})"
        return [f"  OpenADR 3.1: client {self.client_id!r}, token from "
                f"{self.token_url or 'discovery (GET /auth/server, else /auth/token)'}",
                f"  notifications {mode}; full re-sync every {self.poll_interval:g} s; programs: "
                f"{', '.join(self.programs) if self.programs else 'every program the VTN shows'}"]


def notifications(text: str) -> str:
    value = text.strip().lower()
    if value not in NOTIFICATIONS:
        raise ValueError(f"{text.strip()!r} is not one of {', '.join(NOTIFICATIONS)}")
    return value


def program_names(text: str) -> tuple[str, ...]:
    """``a, b``: programNames (1..128 characters each, as the spec allows), no duplicates."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if len(part) > 128:
            raise ValueError(f"{part[:20]!r}... is longer than 128 characters (programName)")
        if part in names:
            raise ValueError(f"{part!r} is listed twice")
        names.append(part)
    return tuple(names)


def https_url(text: str) -> str:
    value = url(text)
    if not value.startswith("https://"):
        raise ValueError(f"{value!r} is not an https:// URL (the VTN posts notifications with our bearer token)")
    return value


def listen_address(text: str) -> tuple[str, int]:
    host, port = parse_ip_port(text)
    ipaddress.IPv4Address(host)
    return host, port


def client_id(text: str) -> str:
    value = nonempty(text)
    if len(value) > 4096:
        raise ValueError("is longer than 4096 characters")
    return value


def payload_type(text: str) -> str:
    """A 3.1 payloadType for ``[signal.NAME] signal_name`` (PRICE, EXPORT_PRICE, GHG, ...): matched
    case-insensitively, as the 2.0b names are."""
    value = nonempty(text)
    if len(value) > 128 or re.search(r"\s", value):
        raise ValueError(f"{value!r} is not a payloadType (one word, up to 128 characters, e.g. PRICE)")
    return value.upper()


def no_signal_type(text: str) -> str:
    raise ValueError("OpenADR 3.1 payloads have no signal type: leave signal_type out with protocol = 3.1")


# [ven] for protocol 3.1: key -> (parser, default or REQUIRED), in the order --check reports them.
VEN_SCHEMA: dict[str, tuple[KeyParser, object]] = {
    "vtn_url": (url, REQUIRED),
    "ven_name": (nonempty, REQUIRED),
    "client_id": (client_id, REQUIRED),
    "client_secret": (str.strip, None),
    "client_secret_file": (readable_file, None),
    "token_url": (url, None),
    "notifications": (notifications, "auto"),
    "poll_interval": (number(float, 0.2, 86400), 30.0),
    "programs": (program_names, ()),
    "callback_url": (https_url, None),
    "callback_listen": (listen_address, None),
    "ca_file": (readable_file, None),
    "cert": (readable_file, None),
    "key": (readable_file, None),
    "check_hostname": (parse_bool, True),
    "request_timeout": (number(float, 0.5, 120), 10.0),
    "retry_max": (number(float, 1, 3600), 300.0),
}


def _check_ven(ven: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """Cross-key checks of [ven] for 3.1, only when the keys themselves were fine."""
    if not ven.get("client_secret") and not ven.get("client_secret_file"):
        if not any(p.startswith(f"{where} client_secret_file:") for p in problems):
            problems.append(f"{where} client_secret: required (or client_secret_file)")
    elif ven.get("client_secret") and ven.get("client_secret_file"):
        problems.append(f"{where} client_secret_file: give client_secret or client_secret_file, not both")
    elif ven.get("client_secret_file"):
        try:
            if not Path(ven["client_secret_file"]).read_text(encoding="utf-8").strip():
                problems.append(f"{where} client_secret_file: file {ven['client_secret_file']!r} is empty")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{where} client_secret_file: cannot read it ({exc})")
    if (ven.get("cert") is None) != (ven.get("key") is None):
        missing = "key" if ven.get("key") is None else "cert"
        problems.append(f"{where} {missing}: cert and key must be given together")
    if not any(p.startswith(f"{where} {k}:") for p in problems for k in ("cert", "key", "ca_file")):
        for key_name, problem in check_tls_files(ven.get("cert"), ven.get("key"), ven.get("ca_file")):
            problems.append(f"{where} {key_name}: {problem}")
    if ven.get("notifications") == "webhook":
        for key in ("callback_url", "callback_listen", "cert", "key"):
            if ven.get(key) is None and not any(p.startswith(f"{where} {key}:") for p in problems):
                why = "the HTTPS certificate and key of the callback server" if key in ("cert", "key") \
                    else "webhook mode needs it"
                problems.append(f"{where} {key}: required with notifications = webhook ({why})")
    vtn = ven.get("vtn_url")
    if isinstance(vtn, str) and vtn.endswith("/"):
        problems.append(f"{where} vtn_url: no trailing '/' (the base URL including its version path, "
                        "e.g. https://vtn.example/openadr3/3.1.0)")


def _ven_settings(**values: Any) -> Ven31Settings:
    return Ven31Settings(**values)


PART = ConfigPart(
    sections={"ven": VEN_SCHEMA},
    keys={"signal.": {"signal_name": payload_type, "signal_type": no_signal_type}},
    checks={"ven": (_check_ven,)},
    ven_settings=_ven_settings,
)

__all__ = ["PART", "PROTOCOL", "Ven31Settings"]

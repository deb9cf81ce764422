"""``--probe`` for OpenADR 3.1: the VTN's side of the commissioning check, read-only.

Gets a token (discovering the token URL as the gateway does), looks for this VEN's object by
venName, lists the programs it can see (and the ones ``[ven] programs`` names), and reads the
notifiers (MQTT offered or not). Nothing is created or changed at the VTN.
"""

from __future__ import annotations

from adrgw.config.settings import Settings
from adrgw.core.model import ProbeCheck
from adrgw.openadr3 import wire
from adrgw.openadr3.client import Client, NotAuthorized, VtnError, VtnUnreachable
from adrgw.openadr3.config import Ven31Settings

# (name, ok, detail, hint): one line of adrgw/ops/probe.py's table
Row = tuple[str, bool, str, str]


async def vtn_checks(settings: Settings) -> list[ProbeCheck]:
    """The 3.1 VTN's lines of ``--probe`` (links.probes)."""
    ven = settings.ven
    assert isinstance(ven, Ven31Settings)
    return [ProbeCheck(*row) for row in await vtn_rows(ven)]


async def vtn_rows(ven: Ven31Settings) -> list[Row]:
    client = Client(ven)
    rows: list[Row] = []
    try:
        try:
            await client.token()
        except NotAuthorized as exc:
            return [("VTN token", False, str(exc), "check [ven] client_id and client_secret with the utility")]
        except VtnUnreachable as exc:
            hint = ("check ca_file, check_hostname and the host name in vtn_url"
                    if "certificate" in str(exc).lower() or "SSL" in str(exc) else
                    "check vtn_url (including its version path, e.g. /openadr3/3.1.0), DNS and the firewall")
            return [("VTN token", False, str(exc), hint)]
        except VtnError as exc:
            return [("VTN token", False, str(exc), "set [ven] token_url if the VTN's token endpoint is elsewhere")]
        rows.append(("VTN token", True, f"token from {client._token_url} ({'HTTP Basic' if client._basic else 'form'})",
                     ""))
        vens = [v for v in await client.list_all("/vens", {"venName": ven.ven_name}) if isinstance(v, dict)]
        mine = [v for v in vens if v.get("venName") == ven.ven_name]
        rows.append(("VEN object", True, f"VEN object {mine[0].get('id')} for venName {ven.ven_name!r}" if mine else
                     f"no VEN object for venName {ven.ven_name!r} yet: the gateway creates it at its first start", ""))
        programs = [p for p in await client.list_all("/programs") if isinstance(p, dict)]
        names = {str(p.get("programName")) for p in programs}
        missing = [n for n in ven.programs if n not in names]
        rows.append(("programs", not missing,
                     f"{len(programs)} program(s) visible: {', '.join(sorted(names)) or 'none'}"
                     + (f"; not found: {', '.join(missing)}" if missing else ""),
                     "check [ven] programs against the programNames the utility uses" if missing else ""))
        mqtt = wire.notifiers(await client.call("GET", "/notifiers", ok=(200,)))
        offered = ", ".join(str(u) for u in (mqtt or {}).get("URIS", [])) if mqtt else ""
        rows.append(("notifiers", ven.notifications != "mqtt" or bool(mqtt),
                     f"MQTT at {offered}" if mqtt else "webhooks only (no MQTT)",
                     "notifications = mqtt needs a VTN that offers MQTT: use auto or poll" if not mqtt else ""))
    except (VtnError, wire.Invalid) as exc:
        rows.append(("VTN", False, str(exc), "the server at vtn_url does not answer as an OpenADR 3.1.0 VTN"))
    finally:
        await client.close()
    return rows



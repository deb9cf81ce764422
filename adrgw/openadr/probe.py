"""``--probe``, the OpenADR 2.0b side: contact the VTN once (TLS handshake, fingerprint,
oadrQueryRegistration); nothing is registered. ops/probe.py prints the table.
"""

from __future__ import annotations

from adrgw.config.settings import Settings
from adrgw.core.model import ProbeCheck as Check
from adrgw.openadr.errors import VtnHttpError, VtnProtocolError, VtnUnreachable
from adrgw.openadr.ven import GatewayClient


async def vtn_checks(settings: Settings) -> list[Check]:
    return [await _vtn_check(settings)]


async def _vtn_check(settings: Settings) -> Check:
    client = GatewayClient(settings.ven)
    try:
        message = client._create_message("oadrQueryRegistration", request_id="probe")
        message_type, payload = await client._perform_request("EiRegisterParty", message)
    except VtnUnreachable as exc:
        hint = ("check the CA (ca_file), client certificate and the host name in vtn_url"
                if "TLS" in str(exc) or "SSL" in str(exc) or "certificate" in str(exc).lower()
                else "check vtn_url, DNS and the firewall (outbound HTTPS)")
        return Check("VTN", False, str(exc), hint)
    except VtnHttpError as exc:
        return Check("VTN", False, str(exc), "the URL path must end in /OpenADR2/Simple/2.0b; ask the utility")
    except VtnProtocolError as exc:
        hint = ("check [ven] vtn_fingerprint against the fingerprint the utility gave you"
                if "not trusted" in str(exc) else "the server at vtn_url does not speak OpenADR 2.0b")
        return Check("VTN", False, str(exc), hint)
    finally:
        await client.close()
    if message_type != "oadrCreatedPartyRegistration":
        return Check("VTN", False, f"unexpected answer {message_type!r} to oadrQueryRegistration",
                     "the server at vtn_url does not speak OpenADR 2.0b")
    tls = "TLS, " if settings.ven.vtn_url.startswith("https://") else ""
    pinned = "fingerprint verified, " if settings.ven.vtn_fingerprint else ""
    vtn_id = payload.get("vtn_id") or "?"
    poll = payload.get("requested_oadr_poll_freq")
    return Check("VTN", True, f"{tls}{pinned}VTN {vtn_id} answers the registration query"
                              + (f" (poll every {poll.total_seconds():g} s)" if poll else ""))


__all__ = ["vtn_checks"]

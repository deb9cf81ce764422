"""openleadr message templates the gateway cannot send as they are: corrected copies, in one place.

openleadr 0.5.36 renders every message from a Jinja template (``openleadr/templates``) and signs the
result in ``messaging.create_message``. Where a template is wrong we register a corrected copy
under the ``adrgw/`` prefix in openleadr's own template environment and ask ``create_message`` for
that name, so preflight, signing and the envelope stay openleadr's. openleadr's own templates are
left untouched (its VTN in the same process, in tests and ``--demo``, keeps using them).

Library bugs worked around here (each pinned by tests/test_registration.py):

* ``oadrCreatePartyRegistration.xml`` always renders ``<oadr:oadrTransportAddress>``, so a pull-mode
  VEN (no address) sends the text ``None``. The 2.0b schema says the element is "not required if
  http pull model": ``adrgw/oadrCreatePartyRegistration.xml`` leaves it out when there is no address.
"""

from __future__ import annotations

from typing import Any

from jinja2 import ChoiceLoader, DictLoader
from openleadr.messaging import TEMPLATES

PREFIX = "adrgw/"

_CREATE_PARTY_REGISTRATION = """\
<oadr:oadrSignedObject xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07" oadr:Id="oadrSignedObject">
  <oadr:oadrCreatePartyRegistration ei:schemaVersion="2.0b" xmlns:ei="http://docs.oasis-open.org/ns/energyinterop/201110">
    <requestID xmlns="http://docs.oasis-open.org/ns/energyinterop/201110/payloads">{{ request_id }}</requestID>
    {% if registration_id is defined and registration_id is not none %}
    <ei:registrationID>{{ registration_id }}</ei:registrationID>
    {% endif %}
    {% if ven_id is defined and ven_id is not none %}
    <ei:venID>{{ ven_id }}</ei:venID>
    {% endif %}
    <oadr:oadrProfileName>{{ profile_name }}</oadr:oadrProfileName>
    <oadr:oadrTransportName>{{ transport_name }}</oadr:oadrTransportName>
    {% if transport_address is defined and transport_address is not none %}
    <oadr:oadrTransportAddress>{{ transport_address }}</oadr:oadrTransportAddress>
    {% endif %}
    <oadr:oadrReportOnly>{{ report_only|booleanformat }}</oadr:oadrReportOnly>
    <oadr:oadrXmlSignature>{{ xml_signature|booleanformat }}</oadr:oadrXmlSignature>
    <oadr:oadrVenName>{{ ven_name }}</oadr:oadrVenName>
    <oadr:oadrHttpPullModel>{{ http_pull_model|booleanformat }}</oadr:oadrHttpPullModel>
  </oadr:oadrCreatePartyRegistration>
</oadr:oadrSignedObject>"""

_FIXED = {f"{PREFIX}oadrCreatePartyRegistration.xml": _CREATE_PARTY_REGISTRATION}


def _has_fixes(loader: Any) -> bool:
    """Whether ``loader`` already serves our templates, however deep another ChoiceLoader (e.g. a
    test's own templates installed after ours) has nested it."""
    if isinstance(loader, DictLoader):
        return set(_FIXED) <= set(loader.mapping)
    return isinstance(loader, ChoiceLoader) and any(_has_fixes(each) for each in loader.loaders)


def _install() -> None:
    """Add the corrected templates (under PREFIX) in front of openleadr's loader, once."""
    loader = TEMPLATES.loader
    if _has_fixes(loader):
        return
    TEMPLATES.loader = ChoiceLoader([DictLoader(_FIXED), loader])  # type: ignore[list-item]


_install()


def create_party_registration(client: Any, **payload: Any) -> str:
    """oadrCreatePartyRegistration, signed like any openleadr message, without the ``None``
    transport address (see the module docstring)."""
    return client._create_message(f"{PREFIX}oadrCreatePartyRegistration", **payload)

"""Pins the openleadr 0.5.36 bugs worked around in adrgw/oadr_fixes.py and tests/test_eiopt_targeting.py.

If one of the ``test_openleadr_still_*`` tests fails, openleadr fixed the bug: the workaround can go.
"""

from __future__ import annotations

from functools import partial

import pytest
from openleadr.messaging import TEMPLATES, create_message

from adrgw.openadr import oadr_fixes
from adrgw.demo.embedded import DemoVtn, free_port

from .support.schema_vtn import validate

pytestmark = pytest.mark.unit

REGISTRATION = dict(request_id="r1", ven_name="ven", ven_id=None, http_pull_model=True, xml_signature=False,
                    report_only=False, profile_name="2.0b", transport_name="simpleHttp", transport_address=None,
                    registration_id=None)


class Client:
    _create_message = staticmethod(partial(create_message))


def test_openleadr_still_renders_the_pull_mode_transport_address_as_none() -> None:
    assert "<oadr:oadrTransportAddress>None</oadr:oadrTransportAddress>" in \
        create_message("oadrCreatePartyRegistration", **REGISTRATION)


def test_our_registration_has_no_transport_address_in_pull_mode_and_carries_the_registration() -> None:
    message = oadr_fixes.create_party_registration(Client(), **{**REGISTRATION, "registration_id": "reg-7"})
    assert "oadrTransportAddress" not in message and "<ei:registrationID>reg-7</ei:registrationID>" in message
    assert validate(message) == []
    push = oadr_fixes.create_party_registration(Client(), **{**REGISTRATION, "http_pull_model": False,
                                                             "transport_address": "https://ven.example:8443"})
    assert "<oadr:oadrTransportAddress>https://ven.example:8443</oadr:oadrTransportAddress>" in push
    assert validate(push) == []


def test_the_fix_is_installed_once_and_leaves_openleadrs_templates_alone() -> None:
    loader = TEMPLATES.loader
    oadr_fixes._install()
    assert TEMPLATES.loader is loader
    assert "oadrTransportAddress" in TEMPLATES.get_template("oadrCreatePartyRegistration.xml").render(**REGISTRATION)


def test_the_fix_is_found_when_another_loader_wrapped_it(monkeypatch) -> None:
    """oadr_report (and any later module) puts its own ChoiceLoader in front of ours: installing again
    must find ours nested inside, not stack another copy (seen as an order-dependent failure of the
    test above when the suite ran with work stealing)."""
    from jinja2 import ChoiceLoader, DictLoader

    monkeypatch.setattr(TEMPLATES, "loader", ChoiceLoader([DictLoader({"other.xml": "x"}), TEMPLATES.loader]))
    wrapped = TEMPLATES.loader
    oadr_fixes._install()
    assert TEMPLATES.loader is wrapped


@pytest.mark.integration
def test_openleadr_still_does_not_route_eiopt() -> None:
    from openleadr import OpenADRServer

    server = OpenADRServer(vtn_id="V", http_host="127.0.0.1", http_port=free_port())
    paths = {route.resource.canonical for route in server.app.router.routes()}
    assert not any(path.endswith("/EiOpt") for path in paths), paths
    assert any(path.endswith("/EiEvent") for path in paths)
    demo = DemoVtn(port=free_port())._create_server()  # the test peer routes it (DemoVtn._route_eiopt)
    assert any(route.resource.canonical.endswith("/EiOpt") for route in demo.app.router.routes())

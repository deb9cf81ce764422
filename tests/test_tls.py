"""TLS as OpenADR 2.0b certification requires, against openleadr's VTN on https://127.0.0.1 with a
private CA made here: client certificates, XML signatures, a pinned VTN fingerprint, both named
cipher suites, and the failures (wrong fingerprint, expired certificate) that must never register."""

from __future__ import annotations

import asyncio
import logging
import ssl

import pytest

from adrgw.demo.embedded import DemoVtn, free_port

from .support.pki import build, fingerprint, issue, make_ca, tls_settings
from .support.wait import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("vtn_kind, cipher", [
    ("ec", "ECDHE-ECDSA-AES128-SHA256"),  # TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
    ("rsa", "AES128-SHA256"),             # TLS_RSA_WITH_AES_128_CBC_SHA256
    ("ec", None),                         # whatever modern suite the two sides agree on
])
async def test_tls_registration_reports_and_signed_messages(meter, start_gateway, tmp_path, vtn_kind, cipher) -> None:
    extra = {"ciphers": cipher, "max_version": ssl.TLSVersion.TLSv1_2} if cipher else {}
    ca, vtn_cert, ven_cert, tls = build(tmp_path, vtn_kind=vtn_kind, **extra)
    vtn = DemoVtn(port=free_port(), poll_freq=1.0, tls=tls)
    await vtn.start()
    try:
        gateway = await start_gateway(tls_settings(vtn, meter, tmp_path, ca, ven_cert, fingerprint(vtn_cert)))
        await asyncio.wait_for(gateway.link.registered.wait(), 10)
        await wait_for(lambda: len(vtn.record.readings) >= 1, 10, what="a reading over TLS")
    finally:
        await vtn.stop()


async def test_wrong_vtn_fingerprint_is_never_trusted(meter, start_gateway, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="adrgw")
    ca, vtn_cert, ven_cert, tls = build(tmp_path)
    vtn = DemoVtn(port=free_port(), poll_freq=1.0, tls=tls)
    await vtn.start()
    try:
        wrong = "00:11:22:33:44:55:66:77:88:99"
        gateway = await start_gateway(tls_settings(vtn, meter, tmp_path, ca, ven_cert, wrong))
        await wait_for(lambda: gateway.link.registration_attempts >= 3, 15, what="three refused attempts")
        assert not gateway.link.registered.is_set()
        messages = [r.getMessage() for r in caplog.records if "registration attempt" in r.getMessage()]
        assert messages and all(wrong in m and fingerprint(vtn_cert) in m for m in messages[:2]), messages
        assert not gateway.controller.events
    finally:
        await vtn.stop()


async def test_expired_vtn_certificate_is_refused(meter, start_gateway, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="adrgw")
    ca, vtn_cert, ven_cert, tls = build(tmp_path, expired=True)
    vtn = DemoVtn(port=free_port(), poll_freq=1.0, tls=tls)
    await vtn.start()
    try:
        gateway = await start_gateway(tls_settings(vtn, meter, tmp_path, ca, ven_cert, fingerprint(vtn_cert)))
        await wait_for(lambda: gateway.link.registration_attempts >= 2, 10, what="refused attempts")
        assert not gateway.link.registered.is_set()
        assert any("certificate has expired" in r.getMessage() for r in caplog.records)
    finally:
        await vtn.stop()


def test_check_finds_certificate_and_key_problems(tmp_path) -> None:
    import os

    from adrgw.config.settings import ConfigError
    from adrgw.settings_load import load

    ca = make_ca(tmp_path)
    ven = issue(tmp_path, ca, "ven")
    other = issue(tmp_path, ca, "other")
    old = issue(tmp_path, ca, "old", expired=True)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    loose = tmp_path / "loose.key"
    loose.write_bytes(ven.key.read_bytes())
    loose.chmod(0o644)

    def problems(cert, key, ca_file=ca.cert) -> list[str]:
        path = tmp_path / "config.ini"
        path.write_text(f"[ven]\nven_name = v\nvtn_url = https://127.0.0.1/x\ncert = {cert}\nkey = {key}\n"
                        f"ca_file = {ca_file}\n[bacnet]\naddress = 127.0.0.1/8\n")
        try:
            load(path)
        except ConfigError as exc:
            return exc.problems
        return []

    assert problems(ven.cert, ven.key) == []
    assert any("[ven] key:" in p and "does not match" in p for p in problems(ven.cert, other.key))
    assert any("[ven] cert:" in p and "is not a PEM certificate" in p for p in problems(garbage, ven.key))
    assert any("[ven] key:" in p and "is not a PEM private key" in p for p in problems(ven.cert, garbage))
    assert any("[ven] key:" in p and "readable by group or others" in p for p in problems(ven.cert, loose))
    assert any("[ven] cert:" in p and "expired on" in p for p in problems(old.cert, old.key))
    assert any("[ven] ca_file:" in p for p in problems(ven.cert, ven.key, ca_file=garbage))
    secret = ven.key.read_text().splitlines()[1]
    assert all(secret not in p for p in problems(ven.cert, other.key) + problems(ven.cert, loose))
    assert os.stat(ven.key).st_mode & 0o077 == 0

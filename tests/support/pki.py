"""A private CA and certificates made in the test (cryptography), written as PEM files."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .config import gateway_settings


def _key(kind: str) -> Any:
    return ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)


@dataclass
class Issued:
    cert: Path
    key: Path
    obj: Any
    private: Any


def _write(directory: Path, name: str, cert: Any, key: Any) -> Issued:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return Issued(cert_path, key_path, cert, key)


def make_ca(directory: Path, kind: str = "ec") -> Issued:
    key = _key(kind)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ADR test CA")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return _write(directory, "ca", cert, key)


def issue(directory: Path, ca: Issued, name: str, kind: str = "ec", expired: bool = False) -> Issued:
    key = _key(kind)
    now = datetime.now(timezone.utc)
    start, end = (now - timedelta(days=10), now - timedelta(days=1)) if expired else (now - timedelta(days=1),
                                                                                     now + timedelta(days=30))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.obj.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca.private, hashes.SHA256()))
    return _write(directory, name, cert, key)


def fingerprint(issued: Issued) -> str:
    from openleadr import utils

    return utils.certificate_fingerprint(issued.cert.read_text())


def build(tmp_path: Path, vtn_kind: str = "ec", expired: bool = False, **tls_extra: Any) -> tuple[Issued, Issued, Issued, dict[str, Any]]:
    """A CA, the VTN's and the VEN's certificates, and the VTN's TLS options (DemoVtn(tls=...))."""
    ca = make_ca(tmp_path, kind="ec")
    vtn_cert = issue(tmp_path, ca, "vtn", kind=vtn_kind, expired=expired)
    ven_cert = issue(tmp_path, ca, "ven", kind="ec")
    tls = {"cert": str(vtn_cert.cert), "key": str(vtn_cert.key), "ca_file": str(ca.cert),
           "ven_fingerprint": fingerprint(ven_cert), **tls_extra}
    return ca, vtn_cert, ven_cert, tls


def tls_settings(vtn: Any, meter: Any, tmp_path: Path, ca: Issued, ven_cert: Issued, vtn_fingerprint: str) -> Any:
    """gateway_settings with the VEN's client certificate, the CA and the pinned VTN fingerprint."""
    settings = gateway_settings(vtn.url, meter, tmp_path)
    return replace(settings, ven=replace(settings.ven, cert=str(ven_cert.cert), key=str(ven_cert.key),
                                         ca_file=str(ca.cert), vtn_fingerprint=vtn_fingerprint))

"""The engine's private certificate authority and the TLS certificate its servers use.

Everything lives in one directory (DIR/pki): ca.crt/ca.key sign server.crt/server.key, whose
subject alternative names cover the loopback addresses the engine binds to. The files are made
once and kept, so clients that trusted the CA on an earlier `up` keep working.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..private_file import write_private

CA_VALIDITY = datetime.timedelta(days=3650)
SERVER_VALIDITY = datetime.timedelta(days=825)
SERVER_IPS = ("127.0.0.1",)
SERVER_DNS_NAMES = ("localhost",)


def _paths(pki_dir: Path) -> dict:
    return dict(
        ca_cert=pki_dir / "ca.crt",
        ca_key=pki_dir / "ca.key",
        cert=pki_dir / "server.crt",
        key=pki_dir / "server.key",
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)


def _make_ca(paths: dict) -> None:
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "osbs-local"),
        x509.NameAttribute(NameOID.COMMON_NAME, "osbs-local CA"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(paths["ca_key"], key)
    _write_cert(paths["ca_cert"], cert)


def _make_server_cert(paths: dict) -> None:
    ca_key = serialization.load_pem_private_key(paths["ca_key"].read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(paths["ca_cert"].read_bytes())
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    alt_names += [x509.DNSName(name) for name in SERVER_DNS_NAMES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "osbs-local"),
            x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1"),
        ]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(paths["key"], key)
    _write_cert(paths["cert"], cert)


def _server_cert_valid(paths: dict) -> bool:
    """True when the server certificate exists, was signed by the current CA and is not near expiry."""
    if not (paths["cert"].exists() and paths["key"].exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
        ca_cert = x509.load_pem_x509_certificate(paths["ca_cert"].read_bytes())
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # unreadable, or from another CA: remake it
        return False
    # not_valid_after_utc exists from cryptography 42 on; the naive attribute is UTC too.
    expires = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(
        tzinfo=datetime.timezone.utc
    )
    remaining = expires - datetime.datetime.now(datetime.timezone.utc)
    return remaining > datetime.timedelta(days=7)


def ensure_pki(pki_dir: Path) -> dict:
    """Create the CA and server certificate under pki_dir unless they exist; return their paths."""
    pki_dir = Path(pki_dir)
    pki_dir.mkdir(parents=True, exist_ok=True)
    paths = _paths(pki_dir)
    if not (paths["ca_cert"].exists() and paths["ca_key"].exists()):
        _make_ca(paths)
    if not _server_cert_valid(paths):
        _make_server_cert(paths)
    for key_name in ("ca_key", "key"):
        os.chmod(paths[key_name], 0o600)
    return paths

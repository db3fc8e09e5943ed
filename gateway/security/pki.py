"""A small private certificate authority for TLS and mTLS (``silian tls init``).

For evaluation and small deployments: one CA, a server certificate for the
gateway (names in its subjectAltName) and a client certificate per principal
whose common name is the principal's id — under mTLS the gateway requires that
name to be the agency the bearer token names. An organisation with its own CA
issues the same certificates there instead (README, "TLS").

Layout of a PKI folder (private keys 0600, written atomically, so a process
that re-reads them never sees half a file)::

    ca.pem  ca.key  gateway.pem  gateway.key  <principal>.pem  <principal>.key
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Names every gateway certificate carries, so local clients can reach it.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
#: File stem of the gateway's server certificate in a PKI folder.
GATEWAY = "gateway"
CA_DAYS = 3650
LEAF_DAYS = 397


@dataclass(frozen=True)
class Issued:
    """One certificate and its private key, both PEM."""

    cert: bytes
    key: bytes


def _name(common_name: str, organisation: str = "Silian gateway") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def new_ca(common_name: str = "Silian private CA", days: int = CA_DAYS) -> Issued:
    """A self-signed CA certificate (P-256) that may sign leaf certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(
    ca: Issued, common_name: str, *, hosts: Iterable[str] = (), days: int = LEAF_DAYS
) -> Issued:
    """A leaf certificate signed by ``ca``: a server certificate (it may also
    authenticate as a client) when ``hosts`` names it, else a client certificate
    of the principal ``common_name``."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    names = list(dict.fromkeys(hosts))
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = _builder(_name(common_name), ca_cert.subject, key.public_key(), days)
    if names:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alt_name(host) for host in names]), critical=False
        )
    cert = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, mode)  # whatever the umask
    os.replace(temporary, path)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (a temporary file
    renamed over it)."""
    _write(path, data, 0o600)


def write_issued(folder: Path, stem: str, issued: Issued) -> None:
    """``<stem>.key`` (0600) and ``<stem>.pem`` (0644) in ``folder``; the key
    first, then the certificate, each replaced atomically."""
    write_private(folder / f"{stem}.key", issued.key)
    _write(folder / f"{stem}.pem", issued.cert, 0o644)


def read_issued(folder: Path, stem: str) -> Issued:
    return Issued((folder / f"{stem}.pem").read_bytes(), (folder / f"{stem}.key").read_bytes())


def load_or_create_ca(folder: Path) -> tuple[Issued, bool]:
    """The CA in ``folder``, made there first if there is none; True if made now."""
    if (folder / "ca.pem").exists() and (folder / "ca.key").exists():
        return read_issued(folder, "ca"), False
    ca = new_ca()
    write_issued(folder, "ca", ca)
    return ca, True


def init_pki(
    folder: Path,
    principals: Iterable[str],
    *,
    gateway_name: str,
    hosts: Iterable[str] = (),
    renew: bool = False,
) -> list[Path]:
    """Make (or complete) the PKI folder: the CA, the gateway's server certificate
    for ``LOCAL_NAMES`` and ``hosts``, and a client certificate per principal.
    Existing certificates are kept unless ``renew`` (the CA is always kept).
    Returns the certificate files written."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca, _ = load_or_create_ca(folder)
    wanted = {GATEWAY: (gateway_name, [*LOCAL_NAMES, *hosts])}
    wanted |= {principal: (principal, []) for principal in principals}
    written = []
    for stem, (common_name, names) in wanted.items():
        if renew or not (folder / f"{stem}.pem").exists():
            write_issued(folder, stem, issue(ca, common_name, hosts=names))
            written.append(folder / f"{stem}.pem")
    return written


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """True if the first certificate in ``cert_pem`` is for the private key ``key_pem``."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) == key.public_key().public_bytes(serialization.Encoding.DER, spki)


def serial_of(cert_pem: bytes) -> int:
    return x509.load_pem_x509_certificate(cert_pem).serial_number

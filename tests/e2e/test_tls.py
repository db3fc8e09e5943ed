"""TLS and mTLS: with client certificates required, the certificate's agency
must be the token's issuer."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.testing import BackgroundGateway, enrolment, register_principals


@dataclass
class Pki:
    ca: bytes
    certs: dict[str, tuple[bytes, bytes]]  # name -> (cert PEM, key PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str, ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name, server: bool
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certs = {"server": _issue("localhost", ca_key, ca_cert.subject, server=True)}
    for agency in ("judicial", "police"):
        certs[agency] = _issue(agency, ca_key, ca_cert.subject, server=False)
    return Pki(ca_cert.public_bytes(serialization.Encoding.PEM), certs)


def _credentials(pki: Pki, agency: str | None) -> grpc.ChannelCredentials:
    if agency is None:
        return grpc.ssl_channel_credentials(root_certificates=pki.ca)
    cert, key = pki.certs[agency]
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca, private_key=key, certificate_chain=cert
    )


@pytest.fixture(scope="module")
def mtls(
    settings: Settings, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BackgroundGateway, dict]]:
    folder: Path = tmp_path_factory.mktemp("pki")
    (folder / "server.pem").write_bytes(pki.certs["server"][0])
    (folder / "server.key").write_bytes(pki.certs["server"][1])
    (folder / "ca.pem").write_bytes(pki.ca)
    tls = replace(
        settings,
        tls_cert=str(folder / "server.pem"),
        tls_key=str(folder / "server.key"),
        client_ca=str(folder / "ca.pem"),
    )
    keys = register_principals(tls)
    with BackgroundGateway(tls, credentials=_credentials(pki, "judicial")) as running:
        yield running, keys


def _client(
    mtls: tuple[BackgroundGateway, dict], pki: Pki, cert_agency: str | None, token_agency: str
) -> AgencyClient:
    running, keys = mtls
    return AgencyClient.connect(
        running.target,
        agency=token_agency,
        key=keys[token_agency],
        gateway_id=running.settings.gateway_id,
        credentials=_credentials(pki, cert_agency),
    )


def test_matching_certificate_and_token_are_accepted(mtls, pki: Pki) -> None:
    client = _client(mtls, pki, "judicial", "judicial")
    assert client.submit(kinds.ROSTER_CHANGE, enrolment()).audit_index >= 0
    client.close()


def test_certificate_of_another_agency_is_refused(mtls, pki: Pki) -> None:
    client = _client(mtls, pki, "police", "judicial")
    with pytest.raises(grpc.RpcError) as caught:
        client.submit(kinds.ROSTER_CHANGE, enrolment())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert "certificate is for 'police'" in caught.value.details()  # type: ignore[attr-defined]
    client.close()


def test_no_client_certificate_cannot_connect(mtls, pki: Pki) -> None:
    client = _client(mtls, pki, None, "judicial")
    with pytest.raises(grpc.RpcError) as caught:
        client.submit(kinds.ROSTER_CHANGE, enrolment(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    client.close()

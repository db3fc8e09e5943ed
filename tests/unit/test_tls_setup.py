"""The gateway's TLS rules: plaintext stays on loopback, certificates are
re-read when they change, and a half-done rotation is not taken."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from gateway.cli import main
from gateway.config import Settings
from gateway.rpc.tls import PlaintextOnNetwork, ServerTls, check_listen, is_loopback
from gateway.security import pki


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:7443", True),
        ("127.0.0.2:7443", True),
        ("localhost:7443", True),
        ("[::1]:7443", True),
        ("unix:/run/silian.sock", True),
        ("0.0.0.0:7443", False),
        ("[::]:7443", False),
        (":7443", False),
        ("10.1.2.3:7443", False),
        ("gateway.example:7443", False),
    ],
)
def test_loopback_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_plaintext_on_the_network_is_refused_unless_said_loudly() -> None:
    with pytest.raises(PlaintextOnNetwork, match="--tls-cert FILE --tls-key FILE"):
        check_listen(Settings(listen="0.0.0.0:7443"))
    check_listen(Settings(listen="0.0.0.0:7443", insecure_plaintext_on_network=True))
    check_listen(Settings(listen="0.0.0.0:7443", tls_cert="gateway.pem", tls_key="gateway.key"))
    check_listen(Settings(listen="127.0.0.1:7443"))


def test_serve_refuses_plaintext_on_the_network_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path), "serve", "--listen", "0.0.0.0:7443"], env={}
    )
    assert result.exit_code == 1
    assert "refusing to serve plaintext on 0.0.0.0:7443" in result.output
    assert "--tls-cert" in result.output and "silian tls init" in result.output
    assert "--insecure-plaintext-on-network" in result.output
    assert "Traceback" not in result.output


def test_tls_init_issues_certificates_for_the_policy_and_the_hosts(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(tmp_path / "data"), "tls", "init", str(folder), "--host", "gw.example"],
        env={},
    )
    assert result.exit_code == 0, result.output
    cert = x509.load_pem_x509_certificate((folder / "gateway.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "gw.example"} <= set(names.get_values_for_type(x509.DNSName))
    assert {"judicial", "police", "procuratorate", "ngo", "detox", "auditor"} <= {
        path.stem for path in folder.glob("*.pem")
    }
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in folder.glob("*.key"))
    again = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path / "data"), "tls", "init", str(folder)], env={}
    )
    assert "already" in again.output
    assert (folder / "gateway.pem").read_bytes() == pki.read_issued(folder, "gateway").cert


def _server_tls(folder: Path) -> ServerTls:
    pki.init_pki(folder, ["police"], gateway_name="silian-gateway")
    return ServerTls(folder / "gateway.pem", folder / "gateway.key", folder / "ca.pem")


def test_unchanged_files_keep_the_configuration(tmp_path: Path) -> None:
    tls = _server_tls(tmp_path)
    assert tls.fetch() is None


def test_a_new_certificate_is_taken_at_the_next_connection(tmp_path: Path) -> None:
    tls = _server_tls(tmp_path)
    ca = pki.read_issued(tmp_path, "ca")
    pki.write_issued(tmp_path, "gateway", pki.issue(ca, "silian-gateway", hosts=["localhost"]))
    assert tls.fetch() is not None
    assert tls.fetch() is None


def test_a_key_that_is_not_the_certificates_is_not_taken(tmp_path: Path) -> None:
    tls = _server_tls(tmp_path)
    ca = pki.read_issued(tmp_path, "ca")
    new = pki.issue(ca, "silian-gateway", hosts=["localhost"])
    pki.write_private(tmp_path / "gateway.key", new.key)  # the certificate not yet
    assert tls.fetch() is None
    pki.write_private(tmp_path / "gateway.pem", new.cert)
    assert tls.fetch() is not None


def test_sighup_reads_the_files_again(tmp_path: Path) -> None:
    tls = _server_tls(tmp_path)
    assert tls.fetch() is None
    tls.reload()
    assert tls.fetch() is not None
    assert tls.fetch() is None

"""TLS and mTLS on every client path, with the CA and certificates of
``silian tls init``: the Python client, ``silian send``/``receive`` and a
connector command of every adapter. With client certificates required, the
certificate's agency must be the token's issuer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import grpc
import pytest
from click.testing import CliRunner
from google.protobuf import json_format

from gateway.cli import main
from gateway.client import AgencyClient, channel_credentials
from gateway.client.keys import gateway_keys
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security import keys as keyring
from gateway.security import kid_for
from gateway.testing import (
    BackgroundGateway,
    enrolment,
    referral,
    register_principals,
    serving_mtls,
)
from tests.conftest import PRINCIPALS


@dataclass
class Mtls:
    running: BackgroundGateway
    keys: dict
    folder: Path  # the PKI folder `silian tls init` made

    def pem(self, stem: str) -> Path:
        return self.folder / f"{stem}.pem"

    def key(self, stem: str) -> Path:
        return self.folder / f"{stem}.key"

    def credentials(self, agency: str | None) -> grpc.ChannelCredentials:
        if agency is None:
            return channel_credentials(self.pem("ca"))
        return channel_credentials(self.pem("ca"), self.pem(agency), self.key(agency))

    def client(self, cert_agency: str | None, token_agency: str) -> AgencyClient:
        return AgencyClient.connect(
            self.running.target,
            agency=token_agency,
            key=self.keys[token_agency],
            gateway_id=self.running.settings.gateway_id,
            credentials=self.credentials(cert_agency),
        )

    def cli(
        self, *args: str, agency: str | None = None, input: str | None = None
    ) -> click.testing.Result:
        """``silian …`` against the gateway, presenting ``agency``'s certificate."""
        settings = self.running.settings
        tls = ["--ca-bundle", str(self.pem("ca"))]
        if agency:
            tls += ["--client-cert", str(self.pem(agency)), "--client-key", str(self.key(agency))]
        return CliRunner().invoke(
            main,
            ["--data-dir", str(settings.data_dir), *args, "--target", self.running.target, *tls],
            env={"SILIAN_DATABASE_URL": settings.database_url},
            input=input,
            catch_exceptions=False,
        )


@pytest.fixture(scope="module")
def mtls(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mtls]:
    folder: Path = tmp_path_factory.mktemp("pki")
    tls = serving_mtls(settings, folder, PRINCIPALS)
    keys = register_principals(tls)
    credentials = channel_credentials(
        folder / "ca.pem", folder / "judicial.pem", folder / "judicial.key"
    )
    with BackgroundGateway(tls, credentials=credentials) as running:
        yield Mtls(running, keys, folder)


def test_tls_init_keeps_private_keys_private(mtls: Mtls) -> None:
    assert {path.stem for path in mtls.folder.glob("*.key")} == {"ca", "gateway", *PRINCIPALS}
    for path in mtls.folder.glob("*.key"):
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_matching_certificate_and_token_are_accepted(mtls: Mtls) -> None:
    client = mtls.client("judicial", "judicial")
    assert client.submit(kinds.ROSTER_CHANGE, enrolment()).audit_index >= 0
    client.close()


def test_certificate_of_another_agency_is_refused(mtls: Mtls) -> None:
    client = mtls.client("police", "judicial")
    with pytest.raises(grpc.RpcError) as caught:
        client.submit(kinds.ROSTER_CHANGE, enrolment())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert "certificate is for 'police'" in caught.value.details()  # type: ignore[attr-defined]
    client.close()


def test_no_client_certificate_cannot_connect(mtls: Mtls) -> None:
    client = mtls.client(None, "judicial")
    with pytest.raises(grpc.RpcError) as caught:
        client.submit(kinds.ROSTER_CHANGE, enrolment(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    client.close()


def test_the_client_connects_with_ca_bundle_and_certificate_files(mtls: Mtls) -> None:
    def connect(agency: str) -> AgencyClient:
        return AgencyClient.connect(
            mtls.running.target,
            agency=agency,
            key=mtls.keys[agency],
            gateway_id=mtls.running.settings.gateway_id,
            gateway_keys=gateway_keys(mtls.running.settings),
            ca_bundle=mtls.pem("ca"),
            client_cert=mtls.pem(agency),
            client_key=mtls.key(agency),
        )

    judicial, police = connect("judicial"), connect("police")
    receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    delivered = {d.mid for d in police.drain(count=50, timeout=5)}
    assert receipt.mid in delivered
    judicial.close()
    police.close()


def test_send_with_options_and_receive_with_config_toml(mtls: Mtls, tmp_path: Path) -> None:
    mid = str(uuid.uuid4())
    sent = mtls.cli(
        "send",
        "--as",
        "judicial",
        "--kind",
        "roster.change",
        "--mid",
        mid,
        "-",
        agency="judicial",
        input=json_format.MessageToJson(enrolment()),
    )
    assert sent.exit_code == 0, sent.output
    assert f'"mid": "{mid}"' in sent.stdout
    agency_dir = tmp_path / "police-fep"  # the police's front-end processor
    agency_dir.mkdir()
    jwks = agency_dir / "gateway.jwks"  # what `silian keys gateway` prints, handed over
    jwks.write_text(
        json.dumps(keyring.jwks([(k, kid_for(k)) for k in gateway_keys(mtls.running.settings)]))
    )
    (agency_dir / "config.toml").write_text(
        f'listen = "{mtls.running.target}"\n'
        f'gateway_jwks = "{jwks}"\n'
        f'ca_bundle = "{mtls.pem("ca")}"\n'
        f'client_cert = "{mtls.pem("police")}"\n'
        f'client_key = "{mtls.key("police")}"\n',
        encoding="utf-8",
    )
    police_key = max(
        (mtls.running.settings.data_dir / "agency-keys" / "police").glob("*.pem"),
        key=lambda p: p.stat().st_mtime,
    )
    received = CliRunner().invoke(
        main,
        [
            "--data-dir",
            str(agency_dir),
            "receive",
            "--as",
            "police",
            "--key",
            str(police_key),
            "--idle",
            "10",  # the first delivery may wait for the relay's lease on a loaded machine
        ],
        env={},
        catch_exceptions=False,
    )
    assert received.exit_code == 0, received.output
    assert mid in {json.loads(line)["mid"] for line in received.stdout.splitlines()}


def _referral(drug_related: bool) -> pb.ServiceReferral:
    message = referral()
    message.drug_related = drug_related
    if drug_related:
        message.needs[:] = [pb.SERVICE_TYPE_DRUG_EDUCATION]
    return message


#: Per adapter: what the bureau sends that reaches it.
DELIVERED = {
    "police": lambda: (kinds.ROSTER_CHANGE, enrolment()),
    "procuratorate": lambda: (kinds.ROSTER_CHANGE, enrolment()),
    "ngo": lambda: (kinds.SERVICE_REFERRAL, _referral(drug_related=False)),
    "detox": lambda: (kinds.SERVICE_REFERRAL, _referral(drug_related=True)),
}


@pytest.mark.parametrize("agency", sorted(DELIVERED))
def test_every_connector_exports_over_mtls(mtls: Mtls, agency: str, tmp_path: Path) -> None:
    judicial = mtls.client("judicial", "judicial")
    judicial.submit(*DELIVERED[agency]())
    judicial.close()
    result = mtls.cli(agency, "export", "--out", str(tmp_path), "--idle", "10", agency=agency)
    assert result.exit_code == 0, result.output
    acknowledged = int(result.output.split("acknowledged ")[1].split()[0])
    assert acknowledged >= 1 and list(tmp_path.glob("*.csv"))


def test_a_connector_without_its_certificate_fails_in_one_line(mtls: Mtls, tmp_path: Path) -> None:
    result = mtls.cli("police", "export", "--out", str(tmp_path), "--idle", "1")
    assert result.exit_code == 1
    assert "UNAVAILABLE" in result.output and "Traceback" not in result.output
    assert "--client-cert and --client-key" in result.output  # how to put it right

"""The broker is not trusted: a delivery slipped into an agency's inbox behind
the gateway's back — forged, altered, or meant for another agency — is refused
by the agency's inbox reader, which checks the gateway's signature of every
delivery. It is given back until it rests in the dead-letter queue; the
genuine deliveries around it go through."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pika
import pytest
from click.testing import CliRunner

from gateway import bootstrap
from gateway.broker.topology import Names, blocking_channel
from gateway.cli import main
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.domain.routing import sha256_hex
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import generate_private_key, kid_for, public_raw, sign_gateway
from gateway.testing import enrolment
from tests.e2e.conftest import Running

DELIVERY_LIMIT = 1


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    return replace(settings, delivery_limit=DELIVERY_LIMIT)


def _delivery(settings: Settings, recipient: str, *, key: object = None) -> envelope_pb2.Delivery:
    """A roster change for ``recipient`` signed as the gateway signs one, with the
    gateway's own key unless ``key`` is another."""
    payload = kinds.encode(enrolment())
    mid = str(uuid.uuid4())
    signer = bootstrap.gateway_signer(settings)
    claims = {
        "iss": settings.gateway_id,
        "mid": mid,
        "kind": kinds.ROSTER_CHANGE,
        "sub": recipient,
        "snd": "judicial",
        "sha256": sha256_hex(payload),
    }
    private = key or signer.private_key
    return envelope_pb2.Delivery(
        mid=mid,
        kind=kinds.ROSTER_CHANGE,
        sender="judicial",
        recipient=recipient,
        payload=payload,
        payload_sha256=sha256_hex(payload),
        signature=sign_gateway(private, kid_for(public_raw(private)), claims),  # type: ignore[arg-type]
    )


def _slip_into_inbox(settings: Settings, agency: str, delivery: envelope_pb2.Delivery) -> None:
    """Publish ``delivery`` straight into ``agency``'s inbox, as a broker
    intruder could."""
    names = Names(settings.broker_prefix)
    with blocking_channel(settings.amqp_url) as channel:
        channel.basic_publish(
            names.inbox_exchange,
            agency,
            delivery.SerializeToString(),
            properties=pika.BasicProperties(
                message_id=delivery.mid, type=delivery.kind, delivery_mode=2
            ),
        )


def _forgeries(settings: Settings) -> list[envelope_pb2.Delivery]:
    forged = _delivery(settings, "police", key=generate_private_key())
    altered = _delivery(settings, "police")
    altered.payload = kinds.encode(enrolment())
    misaddressed = _delivery(settings, "procuratorate")
    misaddressed.recipient = "police"
    return [forged, altered, misaddressed]


def _assert_inbox_quiet(client: AgencyClient) -> None:
    """Nothing more comes: the refused deliveries rest in the dead-letter queue."""
    with client.inbox(idle_seconds=2) as inbox:
        assert list(inbox) == [] and inbox.refused == []


def _cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {
        "SILIAN_BROKER_PREFIX": settings.broker_prefix,
        "SILIAN_AMQP_URL": settings.amqp_url,
        "SILIAN_DATABASE_URL": settings.database_url,
    }
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_deliveries_the_gateway_did_not_sign_are_refused_and_end_in_the_dead_letters(
    running: Running,
) -> None:
    settings = running.settings
    forgeries = _forgeries(settings)
    for delivery in forgeries:
        _slip_into_inbox(settings, "police", delivery)
    judicial, police = running.client("judicial"), running.client("police")
    genuine = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    refused_times = DELIVERY_LIMIT + 1  # given back that often, then dead-lettered
    with police.inbox(timeout=30) as inbox:
        handed = []
        for delivery in inbox:
            handed.append(delivery.mid)
            inbox.acknowledge(delivery)
            if delivery.mid == genuine.mid:
                break
        inbox.wait_for(
            lambda: len(inbox.refused) >= refused_times * len(forgeries) and inbox.all_settled(),
            30,
        )
    assert handed == [genuine.mid]
    reasons = {r.delivery.mid: r.reason for r in inbox.refused}
    assert reasons == {
        forgeries[0].mid: "the gateway's signature does not verify",
        forgeries[1].mid: (
            f"the gateway signed payload digest {forgeries[1].payload_sha256!r}, "
            f"the delivery has {sha256_hex(forgeries[1].payload)!r}"
        ),
        forgeries[2].mid: "the gateway signed addressee 'procuratorate', the delivery has 'police'",
    }
    _assert_inbox_quiet(police)
    code, listing, _ = _cli(settings, "dlq", "list", "--agency", "police")
    assert code == 0 and all(delivery.mid in listing for delivery in forgeries)
    judicial.close()
    police.close()


def test_silian_receive_prints_the_genuine_and_reports_a_forged_delivery(
    running: Running, tmp_path: Path
) -> None:
    settings = running.settings
    code, printed, _ = _cli(settings, "keys", "gateway")
    assert code == 0
    jwks = tmp_path / "gateway.jwks"
    jwks.write_text(printed)  # what the bureau gives the agency
    forged = _delivery(settings, "police", key=generate_private_key())
    _slip_into_inbox(settings, "police", forged)
    judicial = running.client("judicial")
    genuine = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    code, out, err = _cli(
        settings,
        "receive",
        "--as",
        "police",
        "--target",
        running.target,
        "--idle",
        "2",
        "--gateway-jwks",
        str(jwks),
    )
    assert code == 1
    assert genuine.mid in out and forged.mid not in out
    assert f"refused delivery {forged.mid} (roster.change from judicial)" in err
    assert "the gateway's signature does not verify" in err
    _assert_inbox_quiet(running.client("police"))
    judicial.close()

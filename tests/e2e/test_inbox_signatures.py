"""The broker is not trusted: a message slipped into an agency's inbox behind
the gateway's back — forged, altered, meant for another agency, or not a
delivery at all — is never handed over. The gateway checks its own signature
and the addressee before ``Receive`` hands a delivery over, dead-letters what
fails with an audit entry, and the stream goes on. The agency's inbox reader
checks the gateway's signature too, and refuses what does not verify with the
keys it was given."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pika
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gateway import bootstrap
from gateway.broker.consumer import dead_letters
from gateway.broker.topology import Names, blocking_channel
from gateway.cli import main
from gateway.client import AgencyClient, InboxReader
from gateway.config import Settings
from gateway.domain import kinds
from gateway.domain.routing import sha256_hex
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import generate_private_key, kid_for, public_raw, sign_gateway
from gateway.security import keys as keyring
from gateway.store.models import AuditEntry
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


def _slip_into_inbox(
    settings: Settings, agency: str, delivery: envelope_pb2.Delivery | bytes
) -> str:
    """Publish ``delivery`` (or any bytes) straight into ``agency``'s inbox, as a
    broker intruder could; returns the message id it carries."""
    names = Names(settings.broker_prefix)
    if isinstance(delivery, bytes):
        body, mid, kind = delivery, str(uuid.uuid4()), kinds.ROSTER_CHANGE
    else:
        body, mid, kind = delivery.SerializeToString(), delivery.mid, delivery.kind
    with blocking_channel(settings.amqp_url) as channel:
        channel.basic_publish(
            names.inbox_exchange,
            agency,
            body,
            properties=pika.BasicProperties(message_id=mid, type=kind, delivery_mode=2),
        )
    return mid


def _forgeries(settings: Settings) -> list[envelope_pb2.Delivery]:
    forged = _delivery(settings, "police", key=generate_private_key())
    altered = _delivery(settings, "police")
    altered.payload = kinds.encode(enrolment())
    misaddressed = _delivery(settings, "procuratorate")
    misaddressed.recipient = "police"
    relabelled = _delivery(settings, "procuratorate")
    return [forged, altered, misaddressed, relabelled]


def _assert_inbox_quiet(client: AgencyClient) -> None:
    """Nothing more comes: the refused messages rest in the dead-letter queue."""
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


def _quarantined(settings: Settings, since: int) -> list[dict[str, Any]]:
    """The ``quarantined`` audit entries after index ``since``, oldest first."""
    store = bootstrap.open_store(settings)
    try:
        with store.transaction() as session:
            entries = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.event == "quarantined", AuditEntry.idx > since)
                .order_by(AuditEntry.idx)
            ).all()
            return [json.loads(entry.entry) for entry in entries]
    finally:
        store.engine.dispose()


def _read_until(inbox: InboxReader, mid: str) -> list[str]:
    handed = []
    for delivery in inbox:
        handed.append(delivery.mid)
        inbox.acknowledge(delivery)
        if delivery.mid == mid:
            break
    return handed


def test_messages_the_gateway_did_not_sign_for_the_agency_are_dead_lettered_and_audited(
    running: Running,
) -> None:
    settings = running.settings
    judicial, police = running.client("judicial"), running.client("police")
    since = judicial.submit(kinds.ROSTER_CHANGE, enrolment()).audit_index
    forgeries = _forgeries(settings)
    for delivery in forgeries:
        _slip_into_inbox(settings, "police", delivery)
    garbage = _slip_into_inbox(settings, "police", b"\xff\xffnot a delivery")
    first = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    with police.inbox(timeout=30) as inbox:
        handed = _read_until(inbox, first.mid)
        # the stream goes on past garbage slipped in while it is open
        unsigned = _slip_into_inbox(settings, "police", b"\x0a\x05short")
        second = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
        handed += _read_until(inbox, second.mid)
        inbox.wait_for(inbox.all_settled, 30)
    assert first.mid in handed and second.mid in handed
    assert not {d.mid for d in forgeries} & set(handed)
    assert inbox.refused == [] and inbox.error is None
    reasons = {e["mid"]: e["detail"]["reason"] for e in _quarantined(settings, since)}
    assert {reasons[d.mid] for d in forgeries} == {
        "the gateway's signature does not verify",
        f"the gateway signed payload digest {forgeries[1].payload_sha256!r}, "
        f"the delivery has {sha256_hex(forgeries[1].payload)!r}",
        "the gateway signed addressee 'procuratorate', the delivery has 'police'",
    }
    assert reasons[garbage] == "the message is not a Delivery"
    assert reasons[unsigned] == "the gateway's signature does not verify"
    _assert_inbox_quiet(police)
    names = Names(settings.broker_prefix)
    resting = {letter.mid for letter in dead_letters(settings.amqp_url, names, "police", 20)}
    assert resting == {d.mid for d in forgeries} | {garbage, unsigned}
    code, _, err = _cli(settings, "dlq", "list", "--agency", "police")
    assert code == 0, err
    judicial.close()
    police.close()


def test_the_inbox_reader_refuses_deliveries_its_gateway_keys_do_not_verify(
    running: Running, tmp_path: Path
) -> None:
    """An agency given another key than the gateway's (a gateway impostor's, in
    earnest) hands nothing over: ``silian receive`` reports each delivery
    refused and gives it back, until it rests in the dead-letter queue."""
    settings = running.settings
    impostor = generate_private_key()
    jwks = tmp_path / "gateway.jwks"
    jwks.write_text(
        json.dumps(keyring.jwks([(public_raw(impostor), kid_for(public_raw(impostor)))]))
    )
    judicial = running.client("judicial")
    sent = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
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
    assert sent.mid not in out
    assert f"refused delivery {sent.mid} (roster.change from judicial)" in err
    assert "the gateway's signature does not verify" in err
    _assert_inbox_quiet(running.client("police"))
    judicial.close()

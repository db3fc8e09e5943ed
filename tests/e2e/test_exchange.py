"""A signed message from one agency reaches its recipients' inboxes through the
real gateway, RabbitMQ and database (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway import bootstrap
from gateway.client import AgencyClient
from gateway.domain import kinds
from gateway.proto.silian.v1 import exchange_pb2
from gateway.security import verify_gateway
from gateway.testing import enrolment, referral, resident_id, verification_hit
from tests.e2e.conftest import Running
from tests.helpers import enrolled, known_as, receive_mids

Clients = Callable[[str], AgencyClient]
ACKNOWLEDGED = exchange_pb2.DELIVERY_STATE_ACKNOWLEDGED


def test_roster_change_reaches_police_and_procuratorate_with_identity(client: Clients) -> None:
    change = enrolment()
    receipt = client("judicial").submit(kinds.ROSTER_CHANGE, change)
    assert sorted(receipt.recipients) == ["police", "procuratorate"]
    for agency in ("police", "procuratorate"):
        delivery = receive_mids(client(agency), [receipt.mid])[receipt.mid]
        view = kinds.decode(delivery.kind, delivery.payload)
        assert view.subject.resident_id == change.subject.resident_id
        assert delivery.sender == "judicial" and delivery.recipient == agency


def test_verification_result_reaches_the_bureau(client: Clients) -> None:
    hit = verification_hit(enrolled(client("judicial")))
    receipt = client("police").submit(kinds.VERIFICATION_RESULT, hit)
    assert list(receipt.recipients) == ["judicial"]
    delivery = receive_mids(client("judicial"), [receipt.mid])[receipt.mid]
    assert kinds.decode(delivery.kind, delivery.payload) == hit


def test_status_shows_each_recipient_acknowledged(client: Clients) -> None:
    judicial = client("judicial")
    receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    receive_mids(client("police"), [receipt.mid])
    receive_mids(client("procuratorate"), [receipt.mid])
    status = judicial.status(receipt.mid)
    assert {(r.recipient, r.state) for r in status.recipients} == {
        ("police", ACKNOWLEDGED),
        ("procuratorate", ACKNOWLEDGED),
    }
    assert all(r.published_at.seconds and r.acknowledged_at.seconds for r in status.recipients)


def test_unacknowledged_delivery_comes_back_after_reconnect(client: Clients) -> None:
    receipt = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment())
    first = receive_mids(client("police"), [receipt.mid], ack=False)[receipt.mid]
    again = receive_mids(client("police"), [receipt.mid])[receipt.mid]
    assert again.mid == first.mid and again.redelivered
    assert again.payload == first.payload


def test_same_mid_same_payload_returns_the_original_receipt(client: Clients) -> None:
    judicial = client("judicial")
    envelope = judicial.envelope(kinds.ROSTER_CHANGE, enrolment())
    first = judicial.submit_envelope(envelope)
    second = judicial.submit_envelope(envelope)
    assert second == first
    receive_mids(client("police"), [first.mid])


def test_receipt_and_delivery_are_signed_by_the_gateway(running: Running, client: Clients) -> None:
    public = bootstrap.gateway_signer(running.settings).public
    receipt = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment())
    claims = verify_gateway(receipt.signature, public)
    assert claims["mid"] == receipt.mid and claims["audit_index"] == receipt.audit_index
    assert claims["sha256"] == receipt.payload_sha256
    delivery = receive_mids(client("police"), [receipt.mid])[receipt.mid]
    claims = verify_gateway(delivery.signature, public)
    assert claims["sub"] == "police" and claims["sha256"] == delivery.payload_sha256
    assert delivery.original_payload_sha256 == receipt.payload_sha256


def test_ngo_sees_a_pseudonym_and_no_identity(running: Running, client: Clients) -> None:
    subject = resident_id()
    receipt = client("judicial").submit(kinds.SERVICE_REFERRAL, referral(subject))
    assert "ngo" in receipt.recipients
    known = known_as(running.settings, "ngo", "judicial", receipt.mid)
    delivery = receive_mids(client("ngo"), [known])[known]
    view = kinds.decode(delivery.kind, delivery.payload)
    assert view.subject.pseudonym and not view.subject.name
    assert subject.encode() not in delivery.payload
    assert "王某".encode() not in delivery.payload and "盗窃".encode() not in delivery.payload
    assert re.fullmatch(r"\d0-\d9", view.subject.age_band)


def test_submit_stream_answers_each_message_in_order(client: Clients) -> None:
    judicial = client("judicial")
    envelopes = [judicial.envelope(kinds.ROSTER_CHANGE, enrolment()) for _ in range(20)]
    bad = judicial.envelope(kinds.ROSTER_CHANGE, enrolment(unit="999999"))
    results = list(judicial.submit_stream([*envelopes[:10], bad, *envelopes[10:]]))
    assert [r.mid for r in results] == [e.mid for e in [*envelopes[:10], bad, *envelopes[10:]]]
    assert results[10].rejection.reason == "PAYLOAD_INVALID"
    assert all(r.HasField("receipt") for i, r in enumerate(results) if i != 10)
    received = receive_mids(client("police"), [e.mid for e in envelopes])
    assert {e.mid for e in envelopes} <= set(received)


def test_health_is_serving_and_reflection_lists_exchange(running: Running) -> None:
    with grpc.insecure_channel(running.target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="silian.v1.Exchange"), timeout=5
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        services = {s.name for r in responses for s in r.list_services_response.service}
    assert "silian.v1.Exchange" in services


def test_messages_naming_a_person_are_indexed_by_a_keyed_hash(
    running: Running, client: Clients
) -> None:
    person = resident_id()
    receipt = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment(person))
    store = bootstrap.open_store(running.settings)
    key = bootstrap.subject_keys(running.settings)(person)
    assert store.messages_about(key) == [("judicial", receipt.mid)]
    assert person not in key
    store.engine.dispose()
    receive_mids(client("police"), [receipt.mid])

"""Minimized deliveries are unlinkable: the NGO and the detox centre, both
serving one person, get one roster change under ids of their own, with no
digest or signature of the original and only the date of acceptance — nothing
they could match with each other or with the police's copy, which names the
person. Acknowledging under those ids, the sender's GetStatus and the audit
still speak of the one message."""

from __future__ import annotations

import uuid
from datetime import UTC, time

from gateway import bootstrap
from gateway.domain import kinds
from gateway.domain.calendar import BUREAU_TIME
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security import verify_gateway
from gateway.testing import enrolment, referral, resident_id
from tests.e2e.conftest import Running
from tests.helpers import known_as, receive_mids

Delivery = envelope_pb2.Delivery


def _identifiers(delivery: Delivery, gateway_public: bytes) -> set[str]:
    """Every value of ``delivery`` that could single out one message: its ids,
    digests and signatures, and those its signature's claims name."""
    claims = verify_gateway(delivery.signature, gateway_public)
    values = {
        delivery.mid,
        delivery.payload_sha256,
        delivery.signature,
        delivery.original_payload_sha256,
        delivery.original_signature,
        *(str(claims.get(name, "")) for name in ("mid", "sha256", "orig_sha256")),
    }
    return values - {""}


def test_two_partners_deliveries_of_one_roster_change_share_no_identifier(
    running: Running,
) -> None:
    judicial = running.client("judicial")
    person = resident_id()
    judicial.submit(kinds.ROSTER_CHANGE, enrolment(person))
    judicial.submit(kinds.SERVICE_REFERRAL, referral(person))  # to the NGO
    to_detox = referral(person)
    to_detox.drug_related = True
    judicial.submit(kinds.SERVICE_REFERRAL, to_detox)
    warning = enrolment(person)
    warning.change_type = pb.ROSTER_CHANGE_TYPE_WARNING
    warning.reason = "未按规定报告 failed to report"
    sent = judicial.submit(kinds.ROSTER_CHANGE, warning)
    assert {"police", "ngo", "detox"} <= set(sent.recipients)

    settings = running.settings
    ngo_mid = known_as(settings, "ngo", "judicial", sent.mid)
    detox_mid = known_as(settings, "detox", "judicial", sent.mid)
    ngo = receive_mids(running.client("ngo"), [ngo_mid])[ngo_mid]
    detox = receive_mids(running.client("detox"), [detox_mid])[detox_mid]
    police = receive_mids(running.client("police"), [sent.mid])[sent.mid]

    public = bootstrap.gateway_signer(settings).public
    seen_by_ngo, seen_by_detox = _identifiers(ngo, public), _identifiers(detox, public)
    original = _identifiers(police, public) | {sent.mid, sent.payload_sha256, sent.signature}
    assert not seen_by_ngo & seen_by_detox
    assert not (seen_by_ngo | seen_by_detox) & original
    assert uuid.UUID(ngo.mid).version == 8 and uuid.UUID(detox.mid).version == 8
    for partner in (ngo, detox):
        assert not partner.original_payload_sha256 and not partner.original_signature
        accepted = partner.accepted_at.ToDatetime(tzinfo=UTC).astimezone(BUREAU_TIME)
        assert accepted.time() == time()  # the day, not the moment
    assert police.original_payload_sha256 == sent.payload_sha256

    states = {r.recipient: r.state for r in judicial.status(sent.mid).recipients}
    assert states["ngo"] == states["detox"] == exchange_pb2.DELIVERY_STATE_ACKNOWLEDGED
    judicial.close()

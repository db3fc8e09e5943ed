"""The exchange service as bootstrap builds it, with fakes where the outside
world would be: a clock the test moves, a linkage the test controls, and a
SQLite file of its own (no server, no broker)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message
from sqlalchemy import select

from gateway import bootstrap
from gateway.client import build_envelope
from gateway.config import Settings
from gateway.domain import kinds
from gateway.domain.errors import (
    Conflict,
    FailedPrecondition,
    InvalidMessage,
    PermissionDenied,
    Unauthenticated,
)
from gateway.domain.linkage import Accepted, AlertDraft, LinkageContext, Linkages
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security import issue_token, kid_for, public_raw, verify_gateway
from gateway.service.exchange import ExchangeService
from gateway.service.provision import ensure_principals
from gateway.store.models import AuditEntry
from gateway.store.repository import Store
from gateway.testing import enrolment

START = 1_790_000_000.0


@dataclass
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Gatekeeper:
    """A linkage of roster changes that refuses the change ids it is told to,
    and raises an alert for each enrolment it accepts."""

    name: str = "gatekeeper"
    kinds: frozenset[str] = frozenset({kinds.ROSTER_CHANGE})
    refused: set[str] = field(default_factory=set)

    def on_accepted(self, accepted: Accepted, ctx: LinkageContext) -> list[AlertDraft]:
        change = accepted.message
        assert isinstance(change, pb.RosterChange)
        if change.change_id in self.refused:
            raise FailedPrecondition("CHANGE_REFUSED", f"{change.change_id} is refused")
        ctx.put(change.change_id, {"mid": accepted.mid})
        return [
            AlertDraft(
                pb.ALERT_TYPE_NEW_OFFENCE,
                pb.SEVERITY_HIGH,
                change.unit_code,
                "enrolled",
                [accepted.mid],
            )
        ]

    def sweep(self, ctx: LinkageContext) -> list[AlertDraft]:
        return []


@dataclass
class World:
    service: ExchangeService
    store: Store
    keys: dict[str, Ed25519PrivateKey]
    clock: Clock
    gatekeeper: Gatekeeper

    def envelope(
        self, agency: str, kind: str, message: Message, mid: str | None = None
    ) -> envelope_pb2.Envelope:
        return build_envelope(agency, self.keys[agency], kind, message, mid)

    def token(self, agency: str, ttl: int = 300) -> str:
        key = self.keys[agency]
        return issue_token(
            key, kid_for(public_raw(key)), issuer=agency, audience="silian-gateway", ttl_seconds=ttl
        )

    def events(self, mid: str) -> list[str]:
        with self.store.transaction() as session:
            return list(
                session.scalars(
                    select(AuditEntry.event).where(AuditEntry.mid == mid).order_by(AuditEntry.idx)
                )
            )


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    settings = Settings(data_dir=tmp_path, listen="127.0.0.1:0", log_format="console")
    store = bootstrap.open_store(settings)
    keys = ensure_principals(settings, store, bootstrap.load_policy(settings))
    clock = Clock()
    gatekeeper = Gatekeeper()
    # Message signatures are made at the real time; the service's clock starts there.
    monkeypatch.setattr("time.time", lambda: clock.now)
    service = bootstrap.exchange_service(
        settings, store, linkages=Linkages([gatekeeper]), clock=clock
    )
    yield World(service, store, keys, clock, gatekeeper)
    service.committer.close()
    store.engine.dispose()


def test_an_accepted_message_gets_a_receipt_the_gateway_signed(world: World) -> None:
    envelope = world.envelope("judicial", kinds.ROSTER_CHANGE, enrolment())
    receipt = world.service.submit(envelope, "judicial")
    claims = verify_gateway(receipt.signature, world.service.signer.public)
    assert (claims["mid"], claims["audit_index"]) == (envelope.mid, receipt.audit_index)
    assert set(receipt.recipients) >= {"police", "procuratorate"}
    assert world.events(envelope.mid)[:1] == ["accepted"]


def test_a_resend_returns_the_original_receipt_and_another_payload_is_refused(
    world: World,
) -> None:
    envelope = world.envelope("judicial", kinds.ROSTER_CHANGE, enrolment())
    first = world.service.submit(envelope, "judicial")
    assert world.service.submit(envelope, "judicial") == first
    other = world.envelope("judicial", kinds.ROSTER_CHANGE, enrolment(), mid=envelope.mid)
    with pytest.raises(Conflict) as refused:
        world.service.submit(other, "judicial")
    assert refused.value.reason == "MID_REUSED"
    assert world.events(envelope.mid).count("duplicate") == 1


def test_a_sender_other_than_the_caller_is_refused_and_audited(world: World) -> None:
    envelope = world.envelope("judicial", kinds.ROSTER_CHANGE, enrolment())
    with pytest.raises(PermissionDenied) as refused:
        world.service.submit(envelope, "police")
    assert refused.value.reason == "SENDER_NOT_CALLER"
    assert world.events(envelope.mid) == ["rejected"]


def test_an_invalid_payload_names_the_field(world: World) -> None:
    change = enrolment()
    valid = change.subject.resident_id
    change.subject.resident_id = valid[:17] + ("1" if valid[17] != "1" else "0")
    envelope = world.envelope("judicial", kinds.ROSTER_CHANGE, change)
    with pytest.raises(InvalidMessage) as refused:
        world.service.submit(envelope, "judicial")
    assert refused.value.reason == "PAYLOAD_INVALID"
    assert [v.field for v in refused.value.violations] == ["payload.subject.resident_id"]


def test_a_token_past_its_expiry_on_the_service_clock_is_refused(world: World) -> None:
    token = world.token("police", ttl=60)
    assert world.service.authenticate(token) == "police"
    world.clock.now += 60 + world.service.settings.clock_skew_seconds + 1
    with pytest.raises(Unauthenticated):
        world.service.authenticate(token)


def test_a_linkage_refusal_fails_its_message_alone_in_a_shared_batch(world: World) -> None:
    changes = [enrolment() for _ in range(6)]
    world.gatekeeper.refused.add(changes[2].change_id)
    envelopes = [world.envelope("judicial", kinds.ROSTER_CHANGE, c) for c in changes]
    outcomes: dict[int, envelope_pb2.Receipt | FailedPrecondition] = {}
    start = threading.Barrier(len(envelopes))

    def send(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = world.service.submit(envelopes[index], "judicial")
        except FailedPrecondition as err:
            outcomes[index] = err

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(envelopes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    refused = {i for i, outcome in outcomes.items() if isinstance(outcome, FailedPrecondition)}
    assert refused == {2} and len(outcomes) == 6
    assert world.events(envelopes[2].mid) == ["rejected"]
    accepted = world.events(envelopes[0].mid)
    assert accepted[0] == "accepted" and "rejected" not in accepted


def test_alerts_a_linkage_raises_are_stored_with_the_message(world: World) -> None:
    envelope = world.envelope("judicial", kinds.ROSTER_CHANGE, enrolment())
    world.service.submit(envelope, "judicial")
    with world.store.transaction() as session:
        raised = session.scalars(
            select(AuditEntry.mid).where(AuditEntry.event == "alert.raised")
        ).all()
    assert len(raised) == 1 and uuid.UUID(raised[0])

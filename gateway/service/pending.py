"""A message on its way into the group commit, and how one is made from a
routed envelope."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from google.protobuf.message import Message

from gateway.domain import events, validation
from gateway.domain.events import AuditEvent
from gateway.domain.linkage import Accepted, Linkage
from gateway.domain.messages import NewMessage
from gateway.domain.routing import Routing, unit_code
from gateway.proto.silian.v1 import envelope_pb2
from gateway.store.models import StoredMessage


@dataclass
class Pending:
    """A verified, validated, routed message waiting for the group commit."""

    message: NewMessage
    events: list[AuditEvent]  # events[0] is the acceptance
    #: Inbox recipients, as the receipt names them.
    recipients: list[str] = field(default_factory=list)
    #: The message as its linkages see it, and the linkages that want it.
    accepted: Accepted | None = None
    linkages: Sequence[Linkage] = ()
    #: (linkage, key) of the linkage state its linkages read, read ahead per batch.
    state_keys: list[tuple[str, str]] = field(default_factory=list)
    future: Future[StoredMessage] = field(default_factory=Future)
    #: The acceptance's audit index once this message itself was stored.
    audit_index: int = -1
    #: The stored message when this is a late retry of it (nothing to commit).
    known: StoredMessage | None = None


def pending_retry(envelope: envelope_pb2.Envelope, digest: str, known: StoredMessage) -> Pending:
    """A retry of the stored ``known`` message, signed too long ago to be
    accepted as new: it goes to no commit and is answered with the original
    receipt (or refused as MID_REUSED when ``digest`` differs)."""
    message = NewMessage(
        sender=envelope.sender,
        mid=envelope.mid,
        kind=envelope.kind,
        payload=b"",
        payload_sha256=digest,
        signature=envelope.signature,
        unit_code="",
        accepted_at=known.accepted_at,
        outbox=(),
        pseudonyms=(),
        referred=(),
    )
    return Pending(message=message, events=[], known=known)


def pending_for(
    envelope: envelope_pb2.Envelope,
    message: Message,
    digest: str,
    accepted_at: datetime,
    routing: Routing,
    kid: str,
    subject_key: Callable[[str], str],
) -> Pending:
    """The pending message of a verified, routed ``envelope``: what to store
    and its audit entries (the acceptance first, then the routing's)."""
    recipients = [r.recipient for r in routing.outbox if r.destination == "inbox"]
    accepted = AuditEvent(
        events.ACCEPTED,
        envelope.sender,
        mid=envelope.mid,
        kind=envelope.kind,
        detail={"sha256": digest, "kid": kid, "recipients": ",".join(recipients)},
    )
    return Pending(
        message=NewMessage(
            sender=envelope.sender,
            mid=envelope.mid,
            kind=envelope.kind,
            payload=envelope.payload,
            payload_sha256=digest,
            signature=envelope.signature,
            unit_code=unit_code(message),
            accepted_at=accepted_at,
            outbox=routing.outbox,
            pseudonyms=routing.pseudonyms,
            referred=routing.referred,
            ended=routing.ended,
            served=routing.served,
            subject_keys=[
                subject_key(subject.resident_id)
                for _, subject in validation.subjects(message)
                if subject.resident_id
            ],
        ),
        events=[accepted, *routing.events],
        recipients=recipients,
    )

"""Routing: from an accepted message to each recipient's signed view.

The policy names the routes of a kind; each route's condition and view run
against a per-recipient context (its pseudonym key, referrals); every
delivery is re-signed by the gateway, and the bureau's feed gets a copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from google.protobuf.message import Message

from gateway.domain import events, kinds
from gateway.domain.events import AuditEvent
from gateway.domain.messages import NewOutboxRow
from gateway.domain.policy import Policy, Route
from gateway.domain.views import CONDITIONS, apply_view
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import pseudonyms

#: Recipient and policy id of the bureau feed's copies.
FEED = "feed"
#: AMQP header carrying the gateway's signature of a feed message.
SIGNATURE_HEADER = "x-silian-signature"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unit_code(message: Message) -> str:
    """The message's county-level unit, if its kind has one."""
    return str(getattr(message, "unit_code", ""))


@dataclass
class RecipientContext:
    """ViewContext for one recipient; remembers the pseudonyms it handed out."""

    recipient: str
    key: bytes
    today: date
    lookups: Lookups
    issued: dict[str, str] = field(default_factory=dict)  # pseudonym -> resident id

    def pseudonym(self, resident_id: str) -> str:
        value = pseudonyms.pseudonym(self.key, resident_id)
        self.issued[value] = resident_id.upper()
        return value

    def is_referred(self, resident_id: str) -> bool:
        return self.lookups.referred(self.recipient, pseudonyms.pseudonym(self.key, resident_id))

    def resolve_pseudonyms(self, pseudonyms: Sequence[str]) -> dict[str, str]:
        return self.lookups.resolve(pseudonyms)


@dataclass(frozen=True)
class Lookups:
    """What routing asks the database (``gateway.service.lookups`` builds them):
    whether a pseudonym was referred to a recipient, and the resident IDs
    behind pseudonyms the gateway issued (all of them in one query)."""

    referred: Callable[[str, str], bool]
    resolve: Callable[[Sequence[str]], dict[str, str]]


class Signer(Protocol):
    """Signs claims as the gateway (``gateway.security.signer.GatewaySigner``)."""

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS over ``claims`` with ``iss`` set to the gateway id."""
        ...


@dataclass(frozen=True)
class Routing:
    outbox: list[NewOutboxRow]
    events: list[AuditEvent]
    pseudonyms: list[tuple[str, str, str]]
    referred: list[tuple[str, str]]


class Router:
    """Applies the policy's routes to accepted messages."""

    def __init__(
        self, policy: Policy, signer: Signer, pseudonym_key: Callable[[str], bytes]
    ) -> None:
        self.policy = policy
        self.signer = signer
        self.pseudonym_key = pseudonym_key

    def route(
        self,
        envelope: envelope_pb2.Envelope,
        message: Message,
        digest: str,
        accepted_at: datetime,
        today: date,
        lookups: Lookups,
    ) -> Routing:
        """Each recipient's signed delivery of ``message`` (in the view and under
        the condition its route names), the bureau's feed copy, the audit
        entries saying who got which view under which policy, and the
        pseudonyms handed out."""
        outbox: list[NewOutboxRow] = []
        entries: list[AuditEvent] = []
        issued: list[tuple[str, str, str]] = []
        referrals: list[tuple[str, str]] = []
        for route in self.policy.routes_for(envelope.kind):
            ctx = RecipientContext(
                route.recipient, self.pseudonym_key(route.recipient), today, lookups
            )
            if route.when and not CONDITIONS[route.when](message, ctx):
                continue
            view = apply_view(route.view, message, ctx)
            row = self._delivery_row(envelope, digest, accepted_at, route, kinds.encode(view))
            outbox.append(row)
            entries.append(
                AuditEvent(
                    events.ROUTED,
                    "gateway",
                    mid=envelope.mid,
                    kind=envelope.kind,
                    detail={
                        "recipient": route.recipient,
                        "policy": route.id,
                        "view": route.view,
                        "view_sha256": row.view_sha256,
                        "policy_sha256": self.policy.digest,
                    },
                )
            )
            issued += [(route.recipient, p, rid) for p, rid in ctx.issued.items()]
            if envelope.kind == kinds.SERVICE_REFERRAL:
                referrals += [(route.recipient, p) for p in ctx.issued]
        outbox.append(self._feed_row(envelope, message, digest, accepted_at))
        return Routing(outbox, entries, issued, referrals)

    def _delivery(
        self,
        envelope: envelope_pb2.Envelope,
        digest: str,
        accepted_at: datetime,
        recipient: str,
        policy_id: str,
        view: bytes,
    ) -> envelope_pb2.Delivery:
        view_digest = sha256_hex(view)
        delivery = envelope_pb2.Delivery(
            mid=envelope.mid,
            kind=envelope.kind,
            sender=envelope.sender,
            recipient=recipient,
            payload=view,
            payload_sha256=view_digest,
            original_payload_sha256=digest,
            original_signature=envelope.signature,
            policy_id=policy_id,
        )
        delivery.accepted_at.FromDatetime(accepted_at)
        delivery.signature = self.signer.sign(
            {
                "mid": envelope.mid,
                "kind": envelope.kind,
                "sub": recipient,
                "snd": envelope.sender,
                "sha256": view_digest,
                "orig_sha256": digest,
                "policy": policy_id,
                "iat": int(accepted_at.timestamp()),
            }
        )
        return delivery

    def _delivery_row(
        self,
        envelope: envelope_pb2.Envelope,
        digest: str,
        accepted_at: datetime,
        route: Route,
        view: bytes,
    ) -> NewOutboxRow:
        delivery = self._delivery(envelope, digest, accepted_at, route.recipient, route.id, view)
        return NewOutboxRow(
            destination="inbox",
            recipient=route.recipient,
            routing_key=route.recipient,
            policy_id=route.id,
            view_sha256=delivery.payload_sha256,
            body=delivery.SerializeToString(deterministic=True),
        )

    def _feed_row(
        self, envelope: envelope_pb2.Envelope, message: Message, digest: str, accepted_at: datetime
    ) -> NewOutboxRow:
        """The bureau feed's copy: the full payload, signed like a delivery, on
        routing key ``<kind>.<unit>.<sender>``; the signature also travels as the
        header ``x-silian-signature`` for consumers that filter before parsing."""
        delivery = self._delivery(envelope, digest, accepted_at, FEED, FEED, envelope.payload)
        unit = unit_code(message) or "none"
        return NewOutboxRow(
            destination="feed",
            recipient="",
            routing_key=f"{envelope.kind}.{unit}.{envelope.sender}",
            policy_id=FEED,
            view_sha256=digest,
            body=delivery.SerializeToString(deterministic=True),
            headers={SIGNATURE_HEADER: delivery.signature},
        )

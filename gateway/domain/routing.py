"""Routing: from an accepted message to each recipient's signed view.

The policy names the routes of a kind; each route's condition and view run
against a per-recipient context (its pseudonym key, referrals); every
delivery is re-signed by the gateway, and the bureau's feed gets a copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any, Protocol

from google.protobuf.message import Message

from gateway.domain import events, kinds
from gateway.domain import referrals as referrals_of
from gateway.domain.calendar import BUREAU_TIME
from gateway.domain.events import AuditEvent
from gateway.domain.messages import NewOutboxRow
from gateway.domain.policy import Policy, Route
from gateway.domain.validation import canonical_resident_id, subjects
from gateway.domain.views import CONDITIONS, apply_view
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import pseudonyms

#: Recipient and policy id of the bureau feed's copies.
FEED = "feed"
#: AMQP header carrying the gateway's signature of a feed message.
SIGNATURE_HEADER = "x-silian-signature"
#: Views that show the message's people as the sender named them: ``full`` (the
#: message as sent) and those registered with ``identified_view`` (the bureau's
#: ``resolved`` service records). A recipient of any other — minimized — view gets
#: the message under an id of its own (``pseudonyms.delivery_mid``), the
#: acceptance date but not the time, and no digest or signature of the original:
#: nothing two recipients could match with each other or with the original.
IDENTIFIED_VIEWS = {"full"}


def identified_view(name: str) -> None:
    """Declare view ``name`` as one that shows identity, so its recipients see
    the message's own mid and the original's digest and signature."""
    IDENTIFIED_VIEWS.add(name)


def recipient_mid(
    policy: Policy,
    pseudonym_key: Callable[[str], bytes],
    kind: str,
    recipient: str,
    sender: str,
    mid: str,
) -> str:
    """The mid under which ``recipient`` knows message ``mid`` of ``sender``: the
    mid itself, or its own delivery id when its route of ``kind`` is minimized."""
    views = {route.view for route in policy.routes_for(kind) if route.recipient == recipient}
    if not views or views & IDENTIFIED_VIEWS:
        return mid
    return pseudonyms.delivery_mid(pseudonym_key(recipient), sender, mid)


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
    #: (recipient, pseudonym) referred by this message / whose referral it ends /
    #: whose referral a partner's service record keeps alive (``domain.referrals``)
    referred: list[tuple[str, str]]
    ended: list[tuple[str, str]] = field(default_factory=list)
    served: list[tuple[str, str]] = field(default_factory=list)


class Router:
    """Applies the policy's routes to accepted messages."""

    def __init__(
        self,
        policy: Policy,
        signer: Signer,
        pseudonym_key: Callable[[str], bytes],
        zone: tzinfo = BUREAU_TIME,
    ) -> None:
        self.policy = policy
        self.signer = signer
        self.pseudonym_key = pseudonym_key
        self.zone = zone

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
        closing = referrals_of.is_closure(envelope.kind, message)
        for route in self.policy.routes_for(envelope.kind):
            ctx = RecipientContext(
                route.recipient, self.pseudonym_key(route.recipient), today, lookups
            )
            # a closure reaches each partner the person is referred to, whatever its flags
            when = "referred" if closing else route.when
            if when and not CONDITIONS[when](message, ctx):
                continue
            view = apply_view(route.view, message, ctx)
            delivery = self._delivery(
                envelope,
                digest,
                accepted_at,
                route.recipient,
                route.id,
                kinds.encode(view),
                minimized=route.view not in IDENTIFIED_VIEWS,
            )
            outbox.append(_inbox_row(route, delivery))
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
                        "view_sha256": delivery.payload_sha256,
                        "policy_sha256": self.policy.digest,
                        # the id the recipient knows the message by, for auditors
                        "delivery_mid": delivery.mid,
                    },
                )
            )
            issued += [(route.recipient, p, rid) for p, rid in ctx.issued.items()]
            if referrals_of.is_referral(envelope.kind, message):
                referrals += [(route.recipient, p) for p in ctx.issued]
        outbox.append(self._feed_row(envelope, message, digest, accepted_at))
        return Routing(
            outbox,
            entries,
            issued,
            referrals,
            ended=self._ended(envelope.kind, message),
            served=referrals_of.served(envelope.kind, envelope.sender, message),
        )

    def _ended(self, kind: str, message: Message) -> list[tuple[str, str]]:
        """(partner, pseudonym) of every referral ``message`` ends: each partner
        referrals go to, for each person the message names."""
        if not referrals_of.ends_referrals(kind, message):
            return []
        people = {canonical_resident_id(s.resident_id) for _, s in subjects(message)} - {""}
        partners = {route.recipient for route in self.policy.routes_for(kinds.SERVICE_REFERRAL)}
        return [
            (partner, pseudonyms.pseudonym(self.pseudonym_key(partner), person))
            for partner in sorted(partners)
            for person in sorted(people)
        ]

    def _delivery(
        self,
        envelope: envelope_pb2.Envelope,
        digest: str,
        accepted_at: datetime,
        recipient: str,
        policy_id: str,
        view: bytes,
        *,
        minimized: bool = False,
    ) -> envelope_pb2.Delivery:
        """The signed delivery of ``view`` to ``recipient``; a minimized one
        carries nothing that identifies the message beyond this recipient."""
        view_digest = sha256_hex(view)
        mid, accepted = envelope.mid, accepted_at
        if minimized:
            key = self.pseudonym_key(recipient)
            mid = pseudonyms.delivery_mid(key, envelope.sender, envelope.mid)
            local_day = accepted_at.astimezone(self.zone).date()
            accepted = datetime.combine(local_day, time(), self.zone)
        delivery = envelope_pb2.Delivery(
            mid=mid,
            kind=envelope.kind,
            sender=envelope.sender,
            recipient=recipient,
            payload=view,
            payload_sha256=view_digest,
            policy_id=policy_id,
        )
        claims: dict[str, Any] = {
            "mid": mid,
            "kind": envelope.kind,
            "sub": recipient,
            "snd": envelope.sender,
            "sha256": view_digest,
            "policy": policy_id,
            "iat": int(accepted.timestamp()),
        }
        if not minimized:
            delivery.original_payload_sha256 = digest
            delivery.original_signature = envelope.signature
            claims["orig_sha256"] = digest
        delivery.accepted_at.FromDatetime(accepted)
        delivery.signature = self.signer.sign(claims)
        return delivery

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


def _inbox_row(route: Route, delivery: envelope_pb2.Delivery) -> NewOutboxRow:
    return NewOutboxRow(
        destination="inbox",
        recipient=route.recipient,
        routing_key=route.recipient,
        policy_id=route.id,
        view_sha256=delivery.payload_sha256,
        body=delivery.SerializeToString(deterministic=True),
    )

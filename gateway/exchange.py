"""The exchange handlers: accept a signed message, route it, track delivery.

Plain functions of their dependencies (store, policy, signer …); the gRPC
servicer only translates to and from the wire.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import structlog
from google.protobuf.message import Message
from sqlalchemy.exc import DBAPIError

from gateway import kinds, validation
from gateway.audit import log as audit
from gateway.audit.log import AuditEvent
from gateway.config import Settings
from gateway.errors import (
    Conflict,
    FieldViolation,
    GatewayError,
    InvalidMessage,
    NotFound,
    PermissionDenied,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from gateway.policy import Policy, Route
from gateway.rpc.silian.v1 import envelope_pb2, exchange_pb2
from gateway.security import jws, pseudonyms, tokens
from gateway.signer import GatewaySigner
from gateway.store.models import StoredMessage
from gateway.store.repository import NewMessage, NewOutboxRow, Store
from gateway.units import Units
from gateway.views import CONDITIONS, apply_view

log = structlog.get_logger(__name__)

ANONYMOUS = "anonymous"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class _RecipientContext:
    """ViewContext for one recipient; remembers the pseudonyms it handed out."""

    recipient: str
    key: bytes
    today: date
    referred: Callable[[str, str], bool]
    issued: dict[str, str] = field(default_factory=dict)  # pseudonym -> resident id

    def pseudonym(self, resident_id: str) -> str:
        value = pseudonyms.pseudonym(self.key, resident_id)
        self.issued[value] = resident_id.upper()
        return value

    def is_referred(self, resident_id: str) -> bool:
        return self.referred(self.recipient, pseudonyms.pseudonym(self.key, resident_id))


@dataclass(frozen=True)
class _Routing:
    outbox: list[NewOutboxRow]
    events: list[AuditEvent]
    pseudonyms: list[tuple[str, str, str]]
    referred: list[tuple[str, str]]


class ExchangeService:
    """Accepts messages and answers questions about them."""

    def __init__(
        self,
        *,
        store: Store,
        policy: Policy,
        units: Units,
        signer: GatewaySigner,
        pseudonym_key: Callable[[str], bytes],
        subject_key: Callable[[str], str],
        settings: Settings,
        clock: Callable[[], float] = time.time,
        on_accept: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.units = units
        self.signer = signer
        self.pseudonym_key = pseudonym_key
        self.subject_key = subject_key
        self.settings = settings
        self.clock = clock
        self.on_accept = on_accept

    # --- authentication --------------------------------------------------------

    def authenticate(
        self,
        token: str | None,
        certificate_agency: str | None = None,
        roles: Sequence[str] = ("agency",),
    ) -> str:
        """The calling principal's id, from its bearer token (and mTLS identity)."""
        try:
            claims = tokens.verify_token(
                token,
                self.store,
                audience=self.settings.gateway_id,
                leeway_seconds=self.settings.clock_skew_seconds,
                max_lifetime_seconds=self.settings.max_token_lifetime_seconds,
                now=self.clock(),
            )
            if certificate_agency is not None and certificate_agency != claims.issuer:
                raise Unauthenticated(
                    "CERTIFICATE_MISMATCH",
                    f"client certificate is for {certificate_agency!r}, "
                    f"token for {claims.issuer!r}",
                )
            principal = self.policy.principal(claims.issuer)
            if principal is None or principal.role not in roles:
                raise PermissionDenied(
                    "ROLE_NOT_ALLOWED", f"{claims.issuer!r} may not call this service"
                )
            return claims.issuer
        except DBAPIError as exc:
            raise _unavailable(exc) from None
        except GatewayError as err:
            self._audit_rejection(ANONYMOUS, None, err)
            raise

    # --- submit ---------------------------------------------------------------

    def submit(self, envelope: envelope_pb2.Envelope, caller: str) -> envelope_pb2.Receipt:
        """Accept ``envelope`` from ``caller`` and return the gateway's signed receipt.

        Raises a GatewayError (audited) when the message is refused. The same mid
        with the same payload returns the original receipt; with another payload
        it is refused with Conflict(MID_REUSED).
        """
        try:
            return self._submit(envelope, caller)
        except DBAPIError as exc:
            raise _unavailable(exc) from None
        except GatewayError as err:
            self._audit_rejection(caller, envelope, err)
            raise

    def _submit(self, envelope: envelope_pb2.Envelope, caller: str) -> envelope_pb2.Receipt:
        self._check_envelope(envelope, caller)
        now = self.clock()
        claims = jws.verify_message(
            envelope.signature,
            self.store,
            mid=envelope.mid,
            kind=envelope.kind,
            sender=envelope.sender,
            payload=envelope.payload,
            now=now,
            max_skew_seconds=self.settings.clock_skew_seconds,
        )
        digest = sha256_hex(envelope.payload)
        existing = self.store.message(envelope.sender, envelope.mid)
        if existing is not None:
            return self._duplicate(existing, digest, caller)
        message = kinds.decode(envelope.kind, envelope.payload)
        today = datetime.fromtimestamp(now, UTC).date()
        violations = validation.validate(envelope.kind, message, units=self.units, today=today)
        if violations:
            raise InvalidMessage(
                "PAYLOAD_INVALID",
                f"{envelope.kind} payload failed validation: "
                + "; ".join(f"{v.field}: {v.description}" for v in violations),
                violations,
            )
        accepted_at = datetime.fromtimestamp(now, UTC)
        routing = self._route(envelope, message, digest, accepted_at, today)
        accepted = AuditEvent(
            audit.ACCEPTED,
            caller,
            mid=envelope.mid,
            kind=envelope.kind,
            detail={
                "sha256": digest,
                "kid": claims.kid,
                "recipients": ",".join(
                    r.recipient for r in routing.outbox if r.destination == "inbox"
                ),
            },
        )
        stored = self.store.accept(
            NewMessage(
                sender=envelope.sender,
                mid=envelope.mid,
                kind=envelope.kind,
                payload=envelope.payload,
                payload_sha256=digest,
                signature=envelope.signature,
                unit_code=_unit_code(message),
                accepted_at=accepted_at,
                outbox=routing.outbox,
                pseudonyms=routing.pseudonyms,
                referred=routing.referred,
                subject_keys=[
                    self.subject_key(subject.resident_id)
                    for _, subject in validation.subjects(message)
                    if subject.resident_id
                ],
            ),
            [accepted, *routing.events],
            receipt_for=lambda index: self._receipt(
                envelope,
                digest,
                index,
                accepted_at,
                [r.recipient for r in routing.outbox if r.destination == "inbox"],
            ),
        )
        if stored.payload_sha256 != digest:
            return self._duplicate(stored, digest, caller)
        self.on_accept()
        log.info(
            "message.accepted",
            mid=envelope.mid,
            agency=caller,
            kind=envelope.kind,
            audit_index=stored.audit_index,
            recipients=len(routing.outbox) - 1,
        )
        return envelope_pb2.Receipt.FromString(stored.receipt)

    def _check_envelope(self, envelope: envelope_pb2.Envelope, caller: str) -> None:
        if len(envelope.payload) > self.settings.max_message_bytes:
            raise TooLarge(
                "MESSAGE_TOO_LARGE",
                f"payload is {len(envelope.payload)} bytes; the limit is "
                f"{self.settings.max_message_bytes}",
                [FieldViolation("envelope.payload", "larger than the configured limit")],
            )
        missing = [
            FieldViolation(f"envelope.{name}", "is required")
            for name in ("mid", "kind", "sender", "signature")
            if not getattr(envelope, name)
        ]
        if missing:
            raise InvalidMessage("MISSING_FIELD", "the envelope lacks required fields", missing)
        if not _is_uuid(envelope.mid):
            raise InvalidMessage(
                "BAD_MID", "mid must be a UUID", [FieldViolation("envelope.mid", "is not a UUID")]
            )
        if envelope.sender != caller:
            raise PermissionDenied(
                "SENDER_NOT_CALLER",
                f"the token is for {caller!r} but the envelope's sender is {envelope.sender!r}",
                [FieldViolation("envelope.sender", "must equal the token's issuer")],
            )
        kinds.payload_type(envelope.kind)
        if not self.policy.may_send(caller, envelope.kind):
            raise PermissionDenied(
                "KIND_NOT_ALLOWED",
                f"{caller!r} may not send {envelope.kind!r}",
                [FieldViolation("envelope.kind", "not allowed for this sender by policy")],
            )

    def _duplicate(self, existing: StoredMessage, digest: str, caller: str) -> envelope_pb2.Receipt:
        if existing.payload_sha256 != digest:
            raise Conflict(
                "MID_REUSED",
                f"mid {existing.mid} was already used for a different payload",
                [FieldViolation("envelope.mid", "already used with another payload")],
            )
        self.store.record_audit(
            [
                AuditEvent(
                    audit.DUPLICATE,
                    caller,
                    mid=existing.mid,
                    kind=existing.kind,
                    detail={"sha256": digest},
                )
            ]
        )
        return envelope_pb2.Receipt.FromString(existing.receipt)

    def _route(
        self,
        envelope: envelope_pb2.Envelope,
        message: Message,
        digest: str,
        accepted_at: datetime,
        today: date,
    ) -> _Routing:
        outbox: list[NewOutboxRow] = []
        events: list[AuditEvent] = []
        issued: list[tuple[str, str, str]] = []
        referred: list[tuple[str, str]] = []
        for route in self.policy.routes_for(envelope.kind):
            ctx = _RecipientContext(
                route.recipient, self.pseudonym_key(route.recipient), today, self.store.is_referred
            )
            if route.when and not CONDITIONS[route.when](message, ctx):
                continue
            view = apply_view(route.view, message, ctx)
            row = self._delivery_row(envelope, digest, accepted_at, route, kinds.encode(view))
            outbox.append(row)
            events.append(
                AuditEvent(
                    audit.ROUTED,
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
                referred += [(route.recipient, p) for p in ctx.issued]
        outbox.append(self._feed_row(envelope, message, digest, accepted_at))
        return _Routing(outbox, events, issued, referred)

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
        delivery = self._delivery(envelope, digest, accepted_at, "feed", "feed", envelope.payload)
        unit = _unit_code(message) or "none"
        return NewOutboxRow(
            destination="feed",
            recipient="",
            routing_key=f"{envelope.kind}.{unit}.{envelope.sender}",
            policy_id="feed",
            view_sha256=digest,
            body=delivery.SerializeToString(deterministic=True),
        )

    def _receipt(
        self,
        envelope: envelope_pb2.Envelope,
        digest: str,
        audit_index: int,
        accepted_at: datetime,
        recipients: list[str],
    ) -> bytes:
        receipt = envelope_pb2.Receipt(
            mid=envelope.mid,
            sender=envelope.sender,
            kind=envelope.kind,
            payload_sha256=digest,
            audit_index=audit_index,
            recipients=recipients,
        )
        receipt.accepted_at.FromDatetime(accepted_at)
        receipt.signature = self.signer.sign(
            {
                "mid": envelope.mid,
                "sub": envelope.sender,
                "kind": envelope.kind,
                "sha256": digest,
                "audit_index": audit_index,
                "iat": int(accepted_at.timestamp()),
            }
        )
        return receipt.SerializeToString(deterministic=True)

    def _audit_rejection(
        self, caller: str, envelope: envelope_pb2.Envelope | None, err: GatewayError
    ) -> None:
        detail: dict[str, str | int] = {"reason": err.reason}
        if err.violations:
            detail["fields"] = ",".join(v.field for v in err.violations)
        mid = kind = ""
        if envelope is not None:
            # Only well-formed values go into the entry as they are; anything
            # else a caller sent is recorded by digest (it may be garbage,
            # NUL bytes included, or personal data).
            mid = envelope.mid if _is_uuid(envelope.mid) else ""
            kind = envelope.kind if envelope.kind in kinds.known_kinds() else ""
            sender = envelope.sender
            detail["sender"] = sender if self.policy.principal(sender) else "unknown"
            detail["sha256"] = sha256_hex(envelope.payload)
            if not mid and envelope.mid:
                detail["mid_sha256"] = sha256_hex(envelope.mid.encode())
            if not kind and envelope.kind:
                detail["kind_sha256"] = sha256_hex(envelope.kind.encode())
        log.warning(
            "message.rejected",
            mid=mid,
            agency=caller,
            kind=kind,
            reason=err.reason,
            error=err.message,
        )
        try:
            self.store.record_audit(
                [AuditEvent(audit.REJECTED, caller, mid=mid, kind=kind, detail=detail)]
            )
        except DBAPIError as exc:
            raise _unavailable(exc) from None

    # --- status and delivery --------------------------------------------------

    def status(self, caller: str, mid: str) -> exchange_pb2.GetStatusResponse:
        """Where a message ``caller`` sent stands, per recipient; NotFound otherwise."""
        try:
            message = self.store.message(caller, mid)
            if message is None:
                raise NotFound(
                    "UNKNOWN_MESSAGE",
                    f"{caller!r} sent no message {mid!r}",
                    [FieldViolation("mid", "no such message from this sender")],
                )
            response = exchange_pb2.GetStatusResponse(mid=mid, kind=message.kind)
            response.accepted_at.FromDatetime(message.accepted_at)
            for row in self.store.outbox_of(caller, mid):
                if row.destination != "inbox":
                    continue
                status = response.recipients.add(
                    recipient=row.recipient, state=_delivery_state(row)
                )
                for name in ("published_at", "delivered_at", "acknowledged_at"):
                    value = getattr(row, name)
                    if value is not None:
                        getattr(status, name).FromDatetime(value)
            return response
        except DBAPIError as exc:
            raise _unavailable(exc) from None

    def delivered(self, recipient: str, messages: Sequence[tuple[str, str]]) -> None:
        """Record that ``recipient`` was handed these (sender, mid) deliveries."""
        try:
            self.store.mark_delivered(recipient, messages, audit.DELIVERED)
        except DBAPIError as exc:
            raise _unavailable(exc) from None

    def acknowledged(self, recipient: str, messages: Sequence[tuple[str, str]]) -> None:
        """Record that ``recipient`` acknowledged these (sender, mid) deliveries."""
        try:
            self.store.mark_delivered(recipient, messages, audit.ACKNOWLEDGED)
        except DBAPIError as exc:
            raise _unavailable(exc) from None


def _delivery_state(row: object) -> int:
    if getattr(row, "acknowledged_at", None) is not None:
        return exchange_pb2.DELIVERY_STATE_ACKNOWLEDGED
    if getattr(row, "delivered_at", None) is not None:
        return exchange_pb2.DELIVERY_STATE_DELIVERED
    if getattr(row, "published_at", None) is not None:
        return exchange_pb2.DELIVERY_STATE_PUBLISHED
    return exchange_pb2.DELIVERY_STATE_ROUTED


def _unit_code(message: Message) -> str:
    return str(getattr(message, "unit_code", ""))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _unavailable(exc: DBAPIError) -> Unavailable:
    log.error("database.unavailable", error=str(exc.orig)[:200])
    return Unavailable("DATABASE_UNAVAILABLE", "the gateway's database is unavailable; retry later")

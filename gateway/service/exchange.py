"""The exchange handlers: accept a signed message, route it, track delivery.

Plain functions of their dependencies (store, policy, signer …); the gRPC
servicer only translates to and from the wire.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog
from google.protobuf.message import Message
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gateway.audit import log as audit
from gateway.audit.log import AuditEvent
from gateway.config import Settings
from gateway.domain import kinds, validation
from gateway.domain.errors import (
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
from gateway.domain.linkage import (
    Accepted,
    AlertDraft,
    BatchState,
    Linkage,
    LinkageContext,
    Linkages,
    Staged,
    flush,
)
from gateway.domain.policy import Policy
from gateway.domain.routing import Lookups, ReferralCache, Router, Routing, sha256_hex, unit_code
from gateway.domain.units import Units
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security import jws, tokens
from gateway.security.keys import CachedKeys
from gateway.security.signer import GatewaySigner
from gateway.service.committer import GroupCommitter, Hook, Pending
from gateway.service.deliveries import DeliveryRecorder
from gateway.store.models import OutboxRow, StoredMessage
from gateway.store.repository import NewMessage, Store, database_unavailable

log = structlog.get_logger(__name__)

ANONYMOUS = "anonymous"
#: The principal id alerts are sent as (role "gateway" in the policy).
GATEWAY_PRINCIPAL = "gateway"


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
        linkages: Linkages | None = None,
        clock: Callable[[], float] = time.time,
        on_accept: Callable[[], None] = lambda: None,
        key_cache_seconds: float = 2.0,
        commit_batch: int = 500,
    ) -> None:
        self.store = store
        self.policy = policy
        self.units = units
        self.signer = signer
        self.pseudonym_key = pseudonym_key
        self.router = Router(policy, signer, pseudonym_key)
        self.subject_key = subject_key
        self.settings = settings
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)
        self.linkages = linkages or Linkages()
        #: Keys are cached briefly: a revocation takes effect within this time.
        self.keys = CachedKeys(store, key_cache_seconds)
        self._verified_tokens = tokens.VerifiedTokens()
        self.referrals = ReferralCache(store)

        def committed(messages: Sequence[NewMessage]) -> None:
            if any(message.referred for message in messages):
                self.referrals.invalidate()
            on_accept()

        self.committer = GroupCommitter(store, max_batch=commit_batch, on_commit=committed)
        self.deliveries = DeliveryRecorder(store, self.committer)

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
                self.keys,
                audience=self.settings.gateway_id,
                leeway_seconds=self.settings.clock_skew_seconds,
                max_lifetime_seconds=self.settings.max_token_lifetime_seconds,
                now=self.clock(),
                verified=self._verified_tokens,
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
            raise database_unavailable(exc) from None
        except GatewayError as err:
            self._audit_rejection(ANONYMOUS, None, err)
            raise

    # --- submit ---------------------------------------------------------------

    def submit(self, envelope: envelope_pb2.Envelope, caller: str) -> envelope_pb2.Receipt:
        """Accept ``envelope`` from ``caller`` and return the gateway's signed receipt.

        Raises a GatewayError (audited) when the message is refused. The same mid
        with the same payload returns the original receipt; with another payload
        it is refused with Conflict(MID_REUSED). Blocks until the group commit
        that stores the message is done.
        """
        prepared = self.prepare(envelope, caller)
        try:
            stored = self.commit(prepared).result()
        except GatewayError as err:
            raise self.refused(caller, envelope, err) from None
        return self.finish(prepared, stored, caller)

    def prepare(self, envelope: envelope_pb2.Envelope, caller: str) -> Pending:
        """Check, verify, validate and route ``envelope``: the CPU work before
        the commit. A known mid is recognised by the commit (see ``finish``)."""
        try:
            return self._prepare(envelope, caller)
        except DBAPIError as exc:
            raise database_unavailable(exc) from None
        except GatewayError as err:
            raise self.refused(caller, envelope, err) from None

    def commit(self, pending: Pending) -> Future[StoredMessage]:
        """Queue ``pending`` for the group commit (see GroupCommitter.submit)."""
        return self.committer.submit(pending)

    def finish(self, pending: Pending, stored: StoredMessage, caller: str) -> envelope_pb2.Receipt:
        """The receipt for ``pending`` once committed (or found stored already)."""
        message = pending.message
        try:
            if stored.payload_sha256 != message.payload_sha256 or (
                stored.audit_index != pending.audit_index
            ):
                return self._duplicate(stored, message.payload_sha256, caller)
        except GatewayError as err:
            raise self.refused(caller, None, err, mid=message.mid, kind=message.kind) from None
        log.info(
            "message.accepted",
            mid=message.mid,
            agency=caller,
            kind=message.kind,
            audit_index=stored.audit_index,
            recipients=len(message.outbox) - 1,
        )
        return envelope_pb2.Receipt.FromString(stored.receipt)

    def refused(
        self,
        caller: str,
        envelope: envelope_pb2.Envelope | None,
        err: GatewayError,
        *,
        mid: str = "",
        kind: str = "",
    ) -> GatewayError:
        """Audit a refusal (unless the commit already did) and return the error."""
        if isinstance(err, Unavailable):
            return err
        if err.audited:
            event = self._rejection_event(caller, envelope, err, mid=mid, kind=kind)
            _log_rejection(caller, event, err)
            return err
        self._audit_rejection(caller, envelope, err, mid=mid, kind=kind)
        return err

    def _prepare(self, envelope: envelope_pb2.Envelope, caller: str) -> Pending:
        self._check_envelope(envelope, caller)
        now = self.clock()
        claims = jws.verify_message(
            envelope.signature,
            self.keys,
            mid=envelope.mid,
            kind=envelope.kind,
            sender=envelope.sender,
            payload=envelope.payload,
            now=now,
            max_skew_seconds=self.settings.clock_skew_seconds,
        )
        # A known mid is recognised in the commit's transaction, not here: a
        # read per message before the commit would cost more than the rare
        # retry saves.
        digest = sha256_hex(envelope.payload)
        message = kinds.decode(envelope.kind, envelope.payload)
        # "Today" for validation is the bureau's calendar day, not UTC's: between
        # 00:00 and 08:00 in Baoji, UTC would still be on yesterday and refuse
        # today's dates as "in the future".
        today = datetime.fromtimestamp(now, self.zone).date()
        violations = validation.validate(envelope.kind, message, units=self.units, today=today)
        if violations:
            raise InvalidMessage(
                "PAYLOAD_INVALID",
                f"{envelope.kind} payload failed validation: "
                + "; ".join(f"{v.field}: {v.description}" for v in violations),
                violations,
            )
        accepted_at = datetime.fromtimestamp(now, UTC)
        routing = self.router.route(
            envelope,
            message,
            digest,
            accepted_at,
            today,
            Lookups.of_store(self.store, self.referrals),
        )
        pending = self._pending(envelope, message, digest, accepted_at, routing, claims.kid)
        linkages = self.linkages.for_kind(envelope.kind)
        if linkages:
            accepted = Accepted(envelope.kind, caller, envelope.mid, message, accepted_at)
            for linkage in linkages:
                state_keys = getattr(linkage, "state_keys", None)
                if state_keys is not None:
                    pending.state_keys += [
                        (linkage.name, k) for k in state_keys(accepted, self.subject_key)
                    ]
            pending.hook = self._linkage_hook(linkages, accepted)
        return pending

    def _pending(
        self,
        envelope: envelope_pb2.Envelope,
        message: Message,
        digest: str,
        accepted_at: datetime,
        routing: Routing,
        kid: str,
    ) -> Pending:
        recipients = [r.recipient for r in routing.outbox if r.destination == "inbox"]
        accepted = AuditEvent(
            audit.ACCEPTED,
            envelope.sender,
            mid=envelope.mid,
            kind=envelope.kind,
            detail={"sha256": digest, "kid": kid, "recipients": ",".join(recipients)},
        )
        pending = Pending(
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
                subject_keys=[
                    self.subject_key(subject.resident_id)
                    for _, subject in validation.subjects(message)
                    if subject.resident_id
                ],
            ),
            events=[accepted, *routing.events],
            receipt_for=lambda index: self._receipt(
                envelope, digest, index, accepted_at, recipients
            ),
            rejection=lambda err: self._rejection_event(envelope.sender, envelope, err),
        )
        return pending

    def _linkage_hook(self, linkages: Sequence[Linkage], accepted: Accepted) -> Hook:
        """Runs ``linkages`` in the commit's transaction; the alerts they raise
        become messages stored in the same transaction."""

        def hook(session: Session, batch: BatchState) -> list[Pending]:
            overlay: Staged = {}
            drafts = []
            for linkage in linkages:
                ctx = self._context(session, linkage.name, accepted.accepted_at, batch, overlay)
                drafts += linkage.on_accepted(accepted, ctx)
            alerts = [self._alert(session, draft, accepted.accepted_at) for draft in drafts]
            batch.staged.update(overlay)  # only once every linkage accepted the message
            return alerts

        return hook

    def _context(
        self,
        session: Session,
        linkage: str,
        now: datetime,
        batch: BatchState,
        overlay: Staged | None = None,
    ) -> LinkageContext:
        return LinkageContext(
            session,
            linkage,
            subject_key=self.subject_key,
            units=self.units,
            now=now,
            batch=batch,
            overlay=overlay,
        )

    def sweep(self, now: datetime | None = None) -> int:
        """Run the linkages' time-driven rules once; returns alerts raised."""
        moment = now or datetime.fromtimestamp(self.clock(), UTC)

        def job(session: Session) -> list[Pending]:
            raised = []
            batch = BatchState()
            for linkage in self.linkages.all:
                ctx = self._context(session, linkage.name, moment, batch)
                raised += [self._alert(session, d, moment) for d in linkage.sweep(ctx)]
                batch.staged.update(ctx.overlay)
            flush(session, batch.staged, moment)
            return raised

        return len(self.committer.execute(job).result())

    def _alert(self, session: Session, draft: AlertDraft, raised_at: datetime) -> Pending:
        """A signed alert message from the gateway principal, routed by policy."""
        alert = pb.Alert(
            alert_id=str(uuid.uuid4()),
            alert_type=draft.alert_type,  # type: ignore[arg-type]
            severity=draft.severity,  # type: ignore[arg-type]
            unit_code=draft.unit_code,
            description=draft.description,
            evidence_mids=list(draft.evidence_mids),
        )
        if draft.subject is not None:
            alert.subject.CopyFrom(draft.subject)
        alert.raised_at.FromDatetime(raised_at)
        payload = kinds.encode(alert)
        mid = str(uuid.uuid4())
        envelope = envelope_pb2.Envelope(
            mid=mid,
            kind=kinds.ALERT,
            sender=GATEWAY_PRINCIPAL,
            payload=payload,
            signature=self.signer.sign_message(
                mid=mid, kind=kinds.ALERT, iss=GATEWAY_PRINCIPAL, payload=payload
            ),
        )
        digest = sha256_hex(payload)
        routing = self.router.route(
            envelope,
            alert,
            digest,
            raised_at,
            raised_at.date(),
            Lookups.in_session(session),
        )
        pending = self._pending(envelope, alert, digest, raised_at, routing, self.signer.kid)
        pending.events.append(
            AuditEvent(
                audit.ALERT_RAISED,
                GATEWAY_PRINCIPAL,
                mid=mid,
                kind=kinds.ALERT,
                detail={
                    "type": pb.AlertType.Name(alert.alert_type),
                    "evidence": ",".join(draft.evidence_mids),
                },
            )
        )
        return pending

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

    def _rejection_event(
        self,
        caller: str,
        envelope: envelope_pb2.Envelope | None,
        err: GatewayError,
        *,
        mid: str = "",
        kind: str = "",
    ) -> AuditEvent:
        detail: dict[str, str | int] = {"reason": err.reason}
        if err.violations:
            detail["fields"] = ",".join(v.field for v in err.violations)
        if envelope is not None:
            # Only well-formed values go into the entry as they are; anything
            # else a caller sent is recorded by digest (it may be garbage,
            # NUL bytes included, or personal data).
            mid = envelope.mid if _is_uuid(envelope.mid) else ""
            kind = envelope.kind if envelope.kind in kinds.known_kinds() else ""
            detail["sender"] = (
                envelope.sender if self.policy.principal(envelope.sender) else ("unknown")
            )
            detail["sha256"] = sha256_hex(envelope.payload)
            if not mid and envelope.mid:
                detail["mid_sha256"] = sha256_hex(envelope.mid.encode())
            if not kind and envelope.kind:
                detail["kind_sha256"] = sha256_hex(envelope.kind.encode())
        return AuditEvent(audit.REJECTED, caller, mid=mid, kind=kind, detail=detail)

    def _audit_rejection(
        self,
        caller: str,
        envelope: envelope_pb2.Envelope | None,
        err: GatewayError,
        *,
        mid: str = "",
        kind: str = "",
    ) -> None:
        event = self._rejection_event(caller, envelope, err, mid=mid, kind=kind)
        _log_rejection(caller, event, err)
        try:
            self.store.record_audit([event])
        except DBAPIError as exc:
            raise database_unavailable(exc) from None

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
            raise database_unavailable(exc) from None

    def record(
        self, recipient: str, messages: Sequence[tuple[str, str]], event: str
    ) -> Future[None]:
        """Record deliveries (``audit.DELIVERED``, ``ACKNOWLEDGED`` or
        ``RETURNED``) of these (sender, mid) to ``recipient``; records made
        while the writer is busy share one transaction. The future resolves
        once they are committed."""
        return self.deliveries.record(recipient, messages, event)


def _log_rejection(caller: str, event: AuditEvent, err: GatewayError) -> None:
    """Log a refusal by reason and field names only: the message text (which
    the caller does get) may quote payload values such as ID numbers."""
    log.warning(
        "message.rejected",
        mid=event.mid,
        agency=caller,
        kind=event.kind,
        reason=err.reason,
        fields=[v.field for v in err.violations],
    )


def _delivery_state(row: OutboxRow) -> exchange_pb2.DeliveryState.ValueType:
    if row.acknowledged_at is not None:
        return exchange_pb2.DELIVERY_STATE_ACKNOWLEDGED
    if row.delivered_at is not None:
        return exchange_pb2.DELIVERY_STATE_DELIVERED
    if row.published_at is not None:
        return exchange_pb2.DELIVERY_STATE_PUBLISHED
    return exchange_pb2.DELIVERY_STATE_ROUTED


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True

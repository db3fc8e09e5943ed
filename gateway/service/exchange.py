"""The exchange handlers: accept a signed message, route it, track delivery.

Plain functions of their dependencies (store, policy, signer …); the gRPC
servicer only translates to and from the wire.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.orm import Session

from gateway import metrics
from gateway.audit import log as audit_log
from gateway.config import Settings
from gateway.domain import events, kinds, validation
from gateway.domain.calendar import local_date
from gateway.domain.deadlines import Deadlines
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
    summary,
)
from gateway.domain.events import AuditEvent
from gateway.domain.linkage import Accepted, Linkages, state_keys
from gateway.domain.messages import NewMessage
from gateway.domain.policy import Policy
from gateway.domain.routing import Router, sha256_hex
from gateway.domain.units import Units
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.security import jws, tokens
from gateway.security.keys import CachedKeys
from gateway.security.signer import GatewaySigner
from gateway.service import lookups
from gateway.service.acceptance import Acceptance
from gateway.service.committer import GroupCommitter
from gateway.service.deliveries import DeliveryRecorder
from gateway.service.disposal import KINDS as DISPOSAL_KINDS
from gateway.service.disposal import Disposal
from gateway.service.handover import Handover
from gateway.service.lookups import ReferralCache
from gateway.service.pending import Pending, pending_for, pending_retry
from gateway.service.refusals import is_uuid, log_rejection, rejection_event
from gateway.service.unauthenticated import UnauthenticatedCalls, peer_address
from gateway.store.models import OutboxRow, StoredMessage
from gateway.store.repository import Store

log = structlog.get_logger(__name__)

ANONYMOUS = "anonymous"
#: A compact JWS of the message claims is a few hundred characters.
MAX_SIGNATURE_CHARS = 4096


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
        deadlines: Deadlines | None = None,
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
        self.zone = ZoneInfo(settings.timezone)
        self.router = Router(policy, signer, pseudonym_key, self.zone)
        self.subject_key = subject_key
        self.settings = settings
        self.clock = clock
        self.linkages = linkages or Linkages()
        #: Keys are cached briefly: a revocation takes effect within this time.
        self.keys = CachedKeys(store, key_cache_seconds)
        self._verified_tokens = tokens.VerifiedTokens()
        self.unauthenticated = UnauthenticatedCalls(settings.max_auth_failures_per_minute)
        self.referrals = ReferralCache(store, idle_days=settings.referral_idle_days)

        def committed(messages: Sequence[NewMessage]) -> None:
            if any(m.referred or m.ended or m.served for m in messages):
                self.referrals.invalidate()
            on_accept()

        self.disposal = Disposal(deadlines or Deadlines(), subject_key)
        self.acceptance = Acceptance(
            policy=policy,
            units=units,
            signer=signer,
            router=self.router,
            subject_key=subject_key,
            linkages=self.linkages,
            on_commit=committed,
            disposal=self.disposal,
            zone=self.zone,
            referral_idle_days=settings.referral_idle_days,
        )
        self.committer = GroupCommitter(store, self.acceptance, max_batch=commit_batch)
        self.deliveries = DeliveryRecorder(store, self.committer)
        self.handover = Handover(store, signer.public, pseudonym_key)

    # --- authentication --------------------------------------------------------

    def authenticate(
        self,
        token: str | None,
        certificate_agency: str | None = None,
        roles: Sequence[str] = ("agency",),
        peer: str = "",
    ) -> str:
        """The calling principal's id, from its bearer token (and mTLS identity).

        Failures are counted per ``peer`` (``gateway.service.unauthenticated``):
        audited singly the first time per reason and minute, else summarized;
        a peer failing too often is refused Overloaded before its token is read.
        """
        address = peer_address(peer)
        if not token or self._verified_tokens.get(token) is None:
            self.unauthenticated.admit(address)
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
        except Unavailable:
            raise
        except GatewayError as err:
            singly, summaries = self.unauthenticated.failed(address, err.reason)
            entries = list(summaries)
            if singly:
                event = rejection_event(self.policy, ANONYMOUS, None, err)
                log_rejection(ANONYMOUS, event, err)
                entries.append(event)
            if entries:
                audit_log.record(self.store, entries)
            raise

    def summarize_unauthenticated(self, *, everything: bool = False) -> int:
        """Record the summaries of failed authentications whose minute is over
        (all, if ``everything``: at shutdown); returns how many were recorded."""
        entries = self.unauthenticated.summaries(everything=everything)
        if entries:
            audit_log.record(self.store, entries)
        return len(entries)

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
        except GatewayError as err:
            raise self.refused(caller, envelope, err) from None

    def commit(self, pending: Pending) -> Future[StoredMessage]:
        """Queue ``pending`` for the group commit (see GroupCommitter.submit);
        a late retry of a stored message is answered without one."""
        if pending.known is not None:
            pending.future.set_result(pending.known)
            return pending.future
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
        metrics.ACCEPTED.labels(caller, metrics.kind_label(message.kind)).inc()
        metrics.ACCEPT_SECONDS.observe(metrics.since(message.accepted_at) or 0.0)
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
            event = rejection_event(self.policy, caller, envelope, err, mid=mid, kind=kind)
            log_rejection(caller, event, err)
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
            require_fresh=False,
        )
        # A known mid is recognised in the commit's transaction, not here: a
        # read per message before the commit would cost more than the rare
        # retry saves. A signature too old (or too new) to be accepted as a
        # new message is the exception: its retry is still answered.
        digest = sha256_hex(envelope.payload)
        if not jws.is_fresh(claims, now, self.settings.clock_skew_seconds):
            known = self.store.message(caller, envelope.mid)
            if known is not None:
                return pending_retry(envelope, digest, known)
            jws.check_fresh(claims, now, self.settings.clock_skew_seconds)
        message = kinds.decode(envelope.kind, envelope.payload)
        today = local_date(datetime.fromtimestamp(now, UTC), self.zone)
        violations = validation.validate(envelope.kind, message, units=self.units, today=today)
        if violations:
            raise InvalidMessage(
                "PAYLOAD_INVALID",
                f"{envelope.kind} payload failed validation: {summary(violations)}",
                violations,
            )
        accepted_at = datetime.fromtimestamp(now, UTC)
        routing = self.router.route(
            envelope,
            message,
            digest,
            accepted_at,
            today,
            lookups.of_store(self.store, self.referrals),
        )
        pending = pending_for(
            envelope, message, digest, accepted_at, routing, claims.kid, self.subject_key
        )
        linkages = self.linkages.for_kind(envelope.kind)
        if linkages or envelope.kind in DISPOSAL_KINDS:
            accepted = Accepted(envelope.kind, caller, envelope.mid, message, accepted_at)
            pending.accepted = accepted
            pending.linkages = linkages
            pending.state_keys = [
                (linkage.name, key)
                for linkage in linkages
                for key in state_keys(linkage, accepted, self.subject_key)
            ]
        return pending

    def sweep(
        self, now: datetime | None = None, fence: Callable[[Session], bool] | None = None
    ) -> int:
        """Run the linkages' time-driven rules once; returns alerts raised.

        ``fence`` is asked inside the sweep's transaction first (among replicas:
        whether this one still holds the sweep lease); False skips the sweep."""
        moment = now or datetime.fromtimestamp(self.clock(), UTC)

        def job(session: Session) -> list[Pending]:
            if fence is not None and not fence(session):
                return []
            audit_log.lock_head(session)  # linkage state is read: see GroupCommitter
            return self.acceptance.sweep(session, moment)

        return len(self.committer.execute(job).result())

    def _check_envelope(self, envelope: envelope_pb2.Envelope, caller: str) -> None:
        if len(envelope.payload) > self.settings.max_message_bytes:
            raise TooLarge(
                "MESSAGE_TOO_LARGE",
                f"payload is {len(envelope.payload)} bytes; the limit is "
                f"{self.settings.max_message_bytes}",
                [FieldViolation("envelope.payload", "larger than the configured limit")],
            )
        if len(envelope.signature) > MAX_SIGNATURE_CHARS:
            raise InvalidMessage(
                "BAD_SIGNATURE",
                f"the signature is longer than {MAX_SIGNATURE_CHARS} characters",
                [FieldViolation("envelope.signature", "longer than a message signature can be")],
            )
        missing = [
            FieldViolation(f"envelope.{name}", "is required")
            for name in ("mid", "kind", "sender", "signature")
            if not getattr(envelope, name)
        ]
        if missing:
            raise InvalidMessage("MISSING_FIELD", "the envelope lacks required fields", missing)
        if not is_uuid(envelope.mid):
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
        audit_log.record(
            self.store,
            [
                AuditEvent(
                    events.DUPLICATE,
                    caller,
                    mid=existing.mid,
                    kind=existing.kind,
                    detail={"sha256": digest},
                )
            ],
        )
        return envelope_pb2.Receipt.FromString(existing.receipt)

    def _audit_rejection(
        self,
        caller: str,
        envelope: envelope_pb2.Envelope | None,
        err: GatewayError,
        *,
        mid: str = "",
        kind: str = "",
    ) -> None:
        event = rejection_event(self.policy, caller, envelope, err, mid=mid, kind=kind)
        log_rejection(caller, event, err)
        audit_log.record(self.store, [event])

    # --- status and delivery --------------------------------------------------

    def status(self, caller: str, mid: str) -> exchange_pb2.GetStatusResponse:
        """Where a message ``caller`` sent stands, per recipient; NotFound otherwise."""
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
            status = response.recipients.add(recipient=row.recipient, state=_delivery_state(row))
            for name in ("published_at", "delivered_at", "acknowledged_at"):
                value = getattr(row, name)
                if value is not None:
                    getattr(status, name).FromDatetime(value)
        return response

    def record(
        self, recipient: str, messages: Sequence[tuple[str, str]], event: str
    ) -> Future[None]:
        """Record deliveries (``audit.DELIVERED``, ``ACKNOWLEDGED`` or
        ``RETURNED``) of these (sender, mid) to ``recipient``; records made
        while the writer is busy share one transaction. The future resolves
        once they are committed."""
        return self.deliveries.record(recipient, messages, event)


def _delivery_state(row: OutboxRow) -> exchange_pb2.DeliveryState.ValueType:
    if row.acknowledged_at is not None:
        return exchange_pb2.DELIVERY_STATE_ACKNOWLEDGED
    if row.delivered_at is not None:
        return exchange_pb2.DELIVERY_STATE_DELIVERED
    if row.published_at is not None:
        return exchange_pb2.DELIVERY_STATE_PUBLISHED
    return exchange_pb2.DELIVERY_STATE_ROUTED

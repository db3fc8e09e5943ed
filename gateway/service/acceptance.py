"""What accepting a message means inside the group commit's transaction: its
linkages' rules and the alerts they raise, the cases and campaigns of alert
disposal (``gateway.service.disposal``), its receipt, the audit entry of a
refusal — the service's side of the ``CommitHandler`` seam — and the sweep of
the linkages' and disposal's time-driven rules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from gateway.domain.calendar import BUREAU_TIME, local_date
from gateway.domain.errors import GatewayError
from gateway.domain.events import AuditEvent
from gateway.domain.linkage import AlertDraft, Linkages
from gateway.domain.messages import NewMessage
from gateway.domain.policy import Policy
from gateway.domain.routing import Router
from gateway.domain.units import Units
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security.signer import GatewaySigner
from gateway.service import lookups
from gateway.service.alerts import raise_alert
from gateway.service.disposal import KINDS as DISPOSAL_KINDS
from gateway.service.disposal import Disposal
from gateway.service.pending import Pending
from gateway.service.receipts import sign_receipt
from gateway.service.refusals import rejection_event
from gateway.store.linkage_state import BatchState, Staged, StoredLinkageContext, flush


class Acceptance:
    """The ``CommitHandler`` of the exchange service."""

    def __init__(
        self,
        *,
        policy: Policy,
        units: Units,
        signer: GatewaySigner,
        router: Router,
        subject_key: Callable[[str], str],
        linkages: Linkages,
        on_commit: Callable[[Sequence[NewMessage]], None],
        disposal: Disposal,
        zone: tzinfo = BUREAU_TIME,
        referral_idle_days: int = 0,
    ) -> None:
        self._disposal = disposal
        self._zone = zone
        self._referral_idle_days = referral_idle_days
        self._policy = policy
        self._units = units
        self._signer = signer
        self._router = router
        self._subject_key = subject_key
        self._linkages = linkages
        self._on_commit = on_commit

    def stage(self, session: Session, pending: Pending, state: BatchState) -> list[Pending]:
        """Run the message's linkages; their state is staged only once every
        one of them accepted the message."""
        accepted = pending.accepted
        if accepted is None:
            return []
        overlay: Staged = {}
        drafts: list[AlertDraft] = []
        for linkage in pending.linkages:
            ctx = self._context(session, linkage.name, accepted.accepted_at, state, overlay)
            drafts += linkage.on_accepted(accepted, ctx)
        if accepted.kind in DISPOSAL_KINDS:
            self._disposal.on_accepted(session, accepted)
        alerts = [self._alert(session, draft, accepted.accepted_at) for draft in drafts]
        state.staged.update(overlay)
        return alerts

    def receipt(self, pending: Pending, audit_index: int) -> bytes:
        return sign_receipt(self._signer, pending.message, audit_index, pending.recipients)

    def rejection(self, pending: Pending, error: GatewayError) -> AuditEvent:
        message = pending.message
        sent = envelope_pb2.Envelope(
            mid=message.mid, kind=message.kind, sender=message.sender, payload=message.payload
        )
        return rejection_event(self._policy, message.sender, sent, error)

    def committed(self, messages: Sequence[NewMessage]) -> None:
        self._on_commit(messages)

    def sweep(self, session: Session, moment: datetime) -> list[Pending]:
        """Run every linkage's time-driven rules in ``session``; returns the alerts raised."""
        raised: list[Pending] = []
        batch = BatchState()
        for linkage in self._linkages.all:
            ctx = self._context(session, linkage.name, moment, batch)
            raised += [self._alert(session, draft, moment) for draft in linkage.sweep(ctx)]
            batch.staged.update(ctx.overlay)
        flush(session, batch.staged, moment)
        raised += [self._alert(session, d, moment) for d in self._disposal.sweep(session, moment)]
        return raised

    def _context(
        self,
        session: Session,
        linkage: str,
        now: datetime,
        batch: BatchState,
        overlay: Staged | None = None,
    ) -> StoredLinkageContext:
        return StoredLinkageContext(
            session,
            linkage,
            subject_key=self._subject_key,
            units=self._units,
            now=now,
            batch=batch,
            overlay=overlay,
            zone=self._zone,
        )

    def _alert(self, session: Session, draft: AlertDraft, raised_at: datetime) -> Pending:
        """The alert of ``draft``, routed, with its case opened."""
        pending = raise_alert(
            draft,
            raised_at,
            signer=self._signer,
            router=self._router,
            lookups=lookups.in_session(session, self._referral_idle_days),
            subject_key=self._subject_key,
            today=local_date(raised_at, self._zone),
        )
        assert pending.accepted is not None
        alert = pending.accepted.message
        assert isinstance(alert, pb.Alert)
        self._disposal.on_raised(session, alert, pending.message.mid, raised_at)
        return pending

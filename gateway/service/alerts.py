"""Alerts: the gateway turns a linkage's ``AlertDraft`` into a message of its
own — signed by the gateway principal, routed by policy and stored in the
transaction of the message (or sweep) that raised it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime

from gateway.domain import events, kinds
from gateway.domain.events import AuditEvent
from gateway.domain.linkage import Accepted, AlertDraft
from gateway.domain.routing import Lookups, Router, sha256_hex
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security.signer import GatewaySigner
from gateway.service.pending import Pending, pending_for

#: The principal id alerts are sent as (role "gateway" in the policy).
GATEWAY_PRINCIPAL = "gateway"


def alert_payload(draft: AlertDraft, raised_at: datetime) -> pb.Alert:
    """The ``Alert`` payload of ``draft``, with a new alert id."""
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
    return alert


def raise_alert(
    draft: AlertDraft,
    raised_at: datetime,
    *,
    signer: GatewaySigner,
    router: Router,
    lookups: Lookups,
    subject_key: Callable[[str], str],
    today: date,
) -> Pending:
    """A signed alert message from the gateway principal, routed by policy,
    with an ``alert.raised`` entry naming its type and evidence."""
    alert = alert_payload(draft, raised_at)
    payload = kinds.encode(alert)
    mid = str(uuid.uuid4())
    envelope = envelope_pb2.Envelope(
        mid=mid,
        kind=kinds.ALERT,
        sender=GATEWAY_PRINCIPAL,
        payload=payload,
        signature=signer.sign_message(
            mid=mid, kind=kinds.ALERT, iss=GATEWAY_PRINCIPAL, payload=payload
        ),
    )
    digest = sha256_hex(payload)
    routing = router.route(envelope, alert, digest, raised_at, today, lookups)
    pending = pending_for(envelope, alert, digest, raised_at, routing, signer.kid, subject_key)
    pending.accepted = Accepted(kinds.ALERT, GATEWAY_PRINCIPAL, mid, alert, raised_at)
    pending.events.append(
        AuditEvent(
            events.ALERT_RAISED,
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

"""Refusals: the audit entry and the log line of a message the gateway refused."""

from __future__ import annotations

import uuid

import structlog

from gateway import metrics
from gateway.domain import events, kinds
from gateway.domain.errors import MAX_LISTED_VIOLATIONS, GatewayError
from gateway.domain.events import AuditEvent
from gateway.domain.policy import Policy
from gateway.domain.routing import sha256_hex
from gateway.proto.silian.v1 import envelope_pb2

log = structlog.get_logger(__name__)

#: Field paths are recorded up to this length (a path is the caller's only where
#: a nested map key is in it).
FIELD_CHARS = 120


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def rejection_event(
    policy: Policy,
    caller: str,
    envelope: envelope_pb2.Envelope | None,
    err: GatewayError,
    *,
    mid: str = "",
    kind: str = "",
) -> AuditEvent:
    """The audit entry of a refusal: reason and field names; what the caller
    sent only where it is well-formed, anything else by digest (it may be
    garbage, NUL bytes included, or personal data)."""
    detail: dict[str, str | int] = {"reason": err.reason}
    if err.violations:
        listed = err.violations[:MAX_LISTED_VIOLATIONS]
        detail["fields"] = ",".join(v.field[:FIELD_CHARS] for v in listed)
        if len(err.violations) > len(listed):
            detail["more_fields"] = len(err.violations) - len(listed)
    if envelope is not None:
        mid = envelope.mid if is_uuid(envelope.mid) else ""
        kind = envelope.kind if envelope.kind in kinds.known_kinds() else ""
        detail["sender"] = envelope.sender if policy.principal(envelope.sender) else "unknown"
        detail["sha256"] = sha256_hex(envelope.payload)
        if not mid and envelope.mid:
            detail["mid_sha256"] = sha256_hex(envelope.mid.encode())
        if not kind and envelope.kind:
            detail["kind_sha256"] = sha256_hex(envelope.kind.encode())
    return AuditEvent(events.REJECTED, caller, mid=mid, kind=kind, detail=detail)


def log_rejection(caller: str, event: AuditEvent, err: GatewayError) -> None:
    """Log a refusal by reason and field names only: the message text (which
    the caller does get) may quote payload values such as ID numbers."""
    metrics.REFUSED.labels(caller, metrics.kind_label(event.kind), err.reason).inc()
    log.warning(
        "message.rejected",
        mid=event.mid,
        agency=caller,
        kind=event.kind,
        reason=err.reason,
        fields=[v.field[:FIELD_CHARS] for v in err.violations[:MAX_LISTED_VIOLATIONS]],
        violations=len(err.violations),
    )

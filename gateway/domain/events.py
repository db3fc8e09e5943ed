"""What happened to a message, a key or a query: the events the audit log records.

An ``AuditEvent`` is what the domain and the service decide to record; the
audit log (``gateway.audit.log``) gives it an index, a time and its canonical
bytes. Events hold digests and metadata, never payload contents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Detail = Mapping[str, str | int]

ACCEPTED = "accepted"
REJECTED = "rejected"
DUPLICATE = "duplicate"
ROUTED = "routed"
PUBLISHED = "published"
UNROUTABLE = "unroutable"
DELIVERED = "delivered"
ACKNOWLEDGED = "acknowledged"
RETURNED = "returned"
#: A message in an agency's inbox the gateway did not sign for that agency,
#: dead-lettered instead of handed over (the broker is not trusted).
QUARANTINED = "quarantined"
ALERT_RAISED = "alert.raised"
AGENCY_ADDED = "agency.added"
KEY_ADDED = "key.added"
KEY_REVOKED = "key.revoked"
SUBJECT_QUERIED = "subject.queried"  # an auditor looked up who received a person's data
PAYLOAD_PURGED = "payload.purged"  # retention emptied a message's payload (digests stay)
UNAUTHENTICATED = "unauthenticated"  # one peer's failed authentications in one minute, counted


@dataclass(frozen=True)
class AuditEvent:
    """One thing to record: ``event`` (a name above) by ``actor`` about ``mid``/``kind``."""

    event: str
    actor: str
    mid: str = ""
    kind: str = ""
    detail: Detail = field(default_factory=dict)

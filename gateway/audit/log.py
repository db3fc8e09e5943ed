"""Appending audit entries in the caller's transaction.

Entry encoding (stable; auditors recompute leaf hashes from it): UTF-8 JSON of
one object with the keys ``v`` (1), ``index``, ``time`` (RFC 3339, UTC,
microseconds, ``Z``), ``event``, ``actor``, ``mid``, ``kind`` and ``detail``
(an object of strings and numbers), keys sorted, no insignificant whitespace,
non-ASCII kept as UTF-8. The leaf hash is SHA-256(0x00 ‖ entry) as RFC 9162
§2.1.1. Entries hold digests and metadata, never payload contents.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.store.models import AuditEntry, AuditHead

Detail = Mapping[str, str | int]

ACCEPTED = "accepted"
REJECTED = "rejected"
DUPLICATE = "duplicate"
ROUTED = "routed"
PUBLISHED = "published"
UNROUTABLE = "unroutable"
DELIVERED = "delivered"
ACKNOWLEDGED = "acknowledged"
AGENCY_ADDED = "agency.added"
KEY_ADDED = "key.added"
KEY_REVOKED = "key.revoked"


@dataclass(frozen=True)
class AuditEvent:
    event: str
    actor: str
    mid: str = ""
    kind: str = ""
    detail: Detail = field(default_factory=dict)


def encode_entry(index: int, time: datetime, event: AuditEvent) -> bytes:
    """The canonical bytes of one entry (see the module docstring)."""
    document = {
        "v": 1,
        "index": index,
        "time": time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": event.event,
        "actor": event.actor,
        "mid": event.mid,
        "kind": event.kind,
        "detail": dict(event.detail),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def append(
    session: Session, events: Sequence[AuditEvent], now: datetime | None = None
) -> list[int]:
    """Append ``events`` in the session's transaction; returns their indexes.

    The head row update takes a row lock (PostgreSQL) or the write lock
    (SQLite), so concurrent appenders — even in several gateway processes —
    get consecutive, gap-free indexes in commit order.
    """
    if not events:
        return []
    time = now or datetime.now(UTC)
    size = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(size=AuditHead.size + len(events))
        .returning(AuditHead.size)
    ).scalar_one()
    first = size - len(events)
    rows = []
    for offset, event in enumerate(events):
        entry = encode_entry(first + offset, time, event)
        rows.append(
            AuditEntry(
                idx=first + offset,
                created_at=time,
                event=event.event,
                actor=event.actor,
                mid=event.mid,
                kind=event.kind,
                entry=entry,
                leaf_hash=leaf_hash(entry),
            )
        )
    session.add_all(rows)
    return [row.idx for row in rows]

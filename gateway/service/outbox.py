"""The database's outbox as the relay's ``OutboxSource``: each mark commits
with the audit entries that say which row went where."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from gateway import metrics
from gateway.audit import log as audit_log
from gateway.domain import events
from gateway.domain.events import AuditEvent
from gateway.domain.outbox import OutboxItem
from gateway.store.repository import MarkedRow, Store


class Outbox:
    """OutboxSource over ``store``. Like every OutboxSource method, each raises
    Unavailable when the database is down, so the relay backs off and retries
    instead of dying."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def pending(self, limit: int) -> list[OutboxItem]:
        return self._store.pending(limit)

    def mark_published(self, ids: Sequence[int]) -> None:
        for row in self._mark(ids, events.PUBLISHED, published_at=datetime.now(UTC)):
            metrics.PUBLISHED_SECONDS.observe(metrics.since(row.created_at) or 0.0)

    def mark_unroutable(self, ids: Sequence[int]) -> None:
        self._mark(ids, events.UNROUTABLE, unroutable_at=datetime.now(UTC))

    def _mark(self, ids: Sequence[int], event: str, **values: datetime) -> list[MarkedRow]:
        if not ids:
            return []
        with self._store.transaction() as session:
            rows = self._store.mark_outbox(session, ids, **values)
            audit_log.append(
                session,
                [
                    AuditEvent(
                        event,
                        "gateway",
                        mid=row.mid,
                        kind=row.kind,
                        detail={
                            "sender": row.sender,
                            "recipient": row.recipient or "feed",
                            "routing_key": row.routing_key,
                            "outbox_id": row.id,
                            **_attempts(row),
                        },
                    )
                    for row in rows
                ],
            )
        return rows


def _attempts(row: MarkedRow) -> dict[str, int]:
    """Above one publish attempt, the row may have been published before (a
    crash after the broker's confirm): the audit entry says how many."""
    return {"attempts": row.publish_attempts} if row.publish_attempts > 1 else {}

"""Delivery records (handed over, acknowledged, given back), coalesced into
transactions of the group committer so a busy Receive stream costs no
commit per message."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from gateway import metrics
from gateway.audit import log as audit_log
from gateway.domain import events
from gateway.domain.events import AuditEvent
from gateway.service.committer import GroupCommitter, settle
from gateway.service.pending import Pending
from gateway.store.models import StoredMessage
from gateway.store.repository import Store

#: The outbox timestamp each delivery event sets (``returned`` sets none).
_COLUMNS = {events.DELIVERED: "delivered_at", events.ACKNOWLEDGED: "acknowledged_at"}
_LATENCIES = {
    events.DELIVERED: metrics.DELIVERED_SECONDS,
    events.ACKNOWLEDGED: metrics.ACKNOWLEDGED_SECONDS,
}


def record_deliveries(
    store: Store, session: Session, records: Sequence[tuple[str, str, Sequence[tuple[str, str]]]]
) -> int:
    """Record many (recipient, event, [(sender, mid)]) in ``session`` with an
    audit entry each; returns how many outbox rows changed state."""
    now = datetime.now(UTC)
    changed, recorded = store.record_deliveries(session, records, _COLUMNS, now)
    for recipient, event, row in recorded:
        if row.first and event in _LATENCIES:
            _LATENCIES[event].labels(recipient).observe(metrics.since(row.created_at) or 0.0)
    audit_log.append(
        session,
        [
            AuditEvent(
                event,
                recipient,
                mid=row.mid,
                kind=row.kind,
                detail={"sender": row.sender, "outbox_id": row.id},
            )
            for recipient, event, row in recorded
        ],
        now=now,
    )
    return changed


class DeliveryRecorder:
    """Coalesces delivery records into jobs of the group committer."""

    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self._store = store
        self._committer = committer
        self._lock = threading.Lock()
        self._buffer: list[tuple[str, list[tuple[str, str]], str, Future[None]]] = []
        self._scheduled = False

    def record(
        self, recipient: str, messages: Sequence[tuple[str, str]], event: str
    ) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            self._buffer.append((recipient, list(messages), event, future))
            schedule, self._scheduled = not self._scheduled, True
        if schedule:
            self._schedule()
        return future

    def _schedule(self) -> None:
        drained: list[Future[None]] = []

        def job(session: Session) -> list[Pending]:
            with self._lock:
                items, self._buffer, self._scheduled = self._buffer, [], False
            # Taken from the buffer means owned here: settle them whatever the
            # write below does, or their callers would wait forever.
            drained.extend(future for *_, future in items)
            record_deliveries(
                self._store,
                session,
                [(recipient, event, messages) for recipient, messages, event, _ in items],
            )
            return []

        def answer(done: Future[list[StoredMessage]]) -> None:
            error = done.exception()
            for future in drained:  # a caller that gave up is skipped; the others still wait
                settle(future, None, error)

        self._committer.execute(job).add_done_callback(answer)

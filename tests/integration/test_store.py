"""The store on SQLite and PostgreSQL: one transaction per accepted message,
gap-free audit indexes, an outbox the relay can drain."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from gateway.audit.log import AuditEvent, leaf_hash
from gateway.domain.errors import Conflict
from gateway.store import db
from gateway.store.models import AuditEntry, OutboxRow, StoredMessage
from gateway.store.repository import NewMessage, NewOutboxRow, Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield Store(engine)
    engine.dispose()


def _message(
    mid: str | None = None,
    recipients: tuple[str, ...] = ("police", "procuratorate"),
    payload: bytes = b"payload",
) -> NewMessage:
    return NewMessage(
        sender="judicial",
        mid=mid or str(uuid.uuid4()),
        kind="roster.change",
        payload=payload,
        payload_sha256="00" * 32,
        signature="jws",
        unit_code="610302",
        accepted_at=datetime.now(UTC),
        outbox=[NewOutboxRow("inbox", r, r, f"roster.{r}", "11" * 32, b"body") for r in recipients],
        pseudonyms=[],
        referred=[],
    )


def _accept(store: Store, message: NewMessage) -> StoredMessage:
    events = [AuditEvent("accepted", message.sender, mid=message.mid, kind=message.kind)]
    return store.accept(message, events, receipt_for=lambda index: f"receipt {index}".encode())


def test_upgrade_is_idempotent(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    db.upgrade(engine)
    assert db.current_revision(engine) == "0002"
    engine.dispose()


def test_accept_stores_message_outbox_and_audit_together(store: Store) -> None:
    message = _message()
    stored = _accept(store, message)
    assert stored.receipt == f"receipt {stored.audit_index}".encode()
    assert [row.recipient for row in store.outbox_of("judicial", message.mid)] == [
        "police",
        "procuratorate",
    ]
    with store.transaction() as session:
        entry = session.get(AuditEntry, stored.audit_index)
        assert entry is not None and entry.mid == message.mid
        assert entry.leaf_hash == leaf_hash(entry.entry)


def test_accept_of_a_known_mid_writes_nothing_and_returns_the_original(store: Store) -> None:
    message = _message()
    first = _accept(store, message)
    again = _accept(store, _message(mid=message.mid, payload=b"other"))
    assert again.payload == first.payload and again.audit_index == first.audit_index
    assert len(store.outbox_of("judicial", message.mid)) == 2


def test_a_failed_transaction_leaves_no_trace(store: Store) -> None:
    message = _message()

    def failing_receipt(index: int) -> bytes:
        raise RuntimeError("signer broke")

    with store.transaction() as session:
        before = session.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(RuntimeError):
        store.accept(
            message,
            [AuditEvent("accepted", "judicial", mid=message.mid)],
            receipt_for=failing_receipt,
        )
    assert store.message("judicial", message.mid) is None
    assert store.outbox_of("judicial", message.mid) == []
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_concurrent_appends_get_consecutive_indexes(store: Store) -> None:
    threads = [
        threading.Thread(target=lambda: [_accept(store, _message()) for _ in range(10)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.transaction() as session:
        indexes = list(session.scalars(select(AuditEntry.idx).order_by(AuditEntry.idx)))
    assert indexes == list(range(len(indexes)))


def test_outbox_drains_in_order_and_published_rows_are_audited(store: Store) -> None:
    for item in store.pending(10_000):
        store.mark_published([item.id])
    message = _message()
    _accept(store, message)
    pending = store.pending(100)
    assert [(p.mid, p.routing_key) for p in pending] == [
        (message.mid, "police"),
        (message.mid, "procuratorate"),
    ]
    store.mark_published([pending[0].id])
    store.mark_unroutable([pending[1].id])
    assert store.pending(100) == []
    with store.transaction() as session:
        events = list(
            session.scalars(
                select(AuditEntry.event)
                .where(AuditEntry.mid == message.mid)
                .order_by(AuditEntry.idx)
            )
        )
    assert events == ["accepted", "published", "unroutable"]


def test_delivery_and_acknowledgement_are_recorded_once(store: Store) -> None:
    message = _message()
    _accept(store, message)
    assert store.mark_delivered("police", [("judicial", message.mid)]) == 1
    assert store.mark_delivered("police", [("judicial", message.mid)]) == 0
    assert store.mark_delivered("police", [("judicial", message.mid)], "acknowledged") == 1
    with store.transaction() as session:
        row = session.scalars(
            select(OutboxRow).where(OutboxRow.mid == message.mid, OutboxRow.recipient == "police")
        ).one()
        assert row.delivered_at is not None and row.acknowledged_at is not None


def test_agency_ids_are_unique(store: Store) -> None:
    agency = f"a{uuid.uuid4().hex[:6]}"
    store.add_agency(agency, "A", "agency", actor="operator")
    with pytest.raises(Conflict):
        store.add_agency(agency, "A", "agency", actor="operator")


def test_revoked_key_is_reported_revoked(store: Store) -> None:
    agency = f"a{uuid.uuid4().hex[:6]}"
    store.add_agency(agency, "A", "agency", actor="operator")
    store.add_key(agency, "kid1", b"\x01" * 32, actor="operator")
    store.revoke_key(agency, "kid1", actor="operator")
    record = store.key(agency, "kid1")
    assert record is not None and record.revoked
    assert store.key(agency, "nope") is None

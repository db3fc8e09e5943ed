"""The store on SQLite and PostgreSQL, through the group commit that uses it:
one transaction per accepted message, gap-free audit indexes, an outbox the
relay can drain."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, select

from gateway.audit.log import leaf_hash
from gateway.domain import events
from gateway.domain.errors import Conflict, Internal
from gateway.domain.events import AuditEvent
from gateway.domain.messages import NewMessage, NewOutboxRow
from gateway.security.atrest import DataKeys
from gateway.service import provision
from gateway.service.committer import GroupCommitter
from gateway.service.deliveries import record_deliveries
from gateway.service.outbox import Outbox
from gateway.service.pending import Pending
from gateway.store import db, sealed
from gateway.store.models import AuditEntry, OutboxRow, StoredMessage, SubjectPseudonym
from gateway.store.repository import Store
from tests.helpers import JobsOnly

#: One data key for the module's database, which outlives each test's store.
DATA_KEYS = DataKeys.ephemeral()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield Store(engine, DATA_KEYS)
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


class Receipts(JobsOnly):
    def receipt(self, pending: object, audit_index: int) -> bytes:
        return f"receipt {audit_index}".encode()


class BrokenSigner(JobsOnly):
    def receipt(self, pending: object, audit_index: int) -> bytes:
        raise RuntimeError("signer broke")


class BrokenFor(Receipts):
    """Fails (a bug) on the receipt of one message."""

    def __init__(self, mid: str) -> None:
        self.mid = mid

    def receipt(self, pending: Pending, audit_index: int) -> bytes:  # type: ignore[override]
        if pending.message.mid == self.mid:
            raise RuntimeError("signer broke on this one")
        return super().receipt(pending, audit_index)


def _one_batch(committer: GroupCommitter, messages: list[NewMessage]) -> list[Future[Any]]:
    """Submit ``messages`` while the writer is held, so they form one batch."""
    gate = threading.Event()

    def hold(session: object) -> list[Pending]:
        assert gate.wait(10), "the gate never opened"
        return []

    held = committer.execute(hold)
    futures: list[Future[Any]] = []
    for message in messages:
        accepted = AuditEvent(events.ACCEPTED, message.sender, mid=message.mid, kind=message.kind)
        futures.append(committer.submit(Pending(message, [accepted])))
    gate.set()
    held.result(timeout=30)
    return futures


@pytest.fixture
def committer(store: Store) -> Iterator[GroupCommitter]:
    committer = GroupCommitter(store, Receipts())  # type: ignore[arg-type]
    yield committer
    committer.close()


def _accept(committer: GroupCommitter, message: NewMessage) -> StoredMessage:
    accepted = AuditEvent(events.ACCEPTED, message.sender, mid=message.mid, kind=message.kind)
    return committer.submit(Pending(message, [accepted])).result(timeout=30)


def _delivered(store: Store, recipient: str, message: NewMessage, event: str) -> int:
    with store.transaction() as session:
        return record_deliveries(store, session, [(recipient, event, [("judicial", message.mid)])])


def test_upgrade_is_idempotent(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    db.upgrade(engine)
    heads = ScriptDirectory.from_config(db.alembic_config(engine)).get_heads()
    assert [db.current_revision(engine)] == heads
    engine.dispose()


def test_accept_stores_message_outbox_and_audit_together(
    store: Store, committer: GroupCommitter
) -> None:
    message = _message()
    stored = _accept(committer, message)
    assert stored.receipt == f"receipt {stored.audit_index}".encode()
    assert [row.recipient for row in store.outbox_of("judicial", message.mid)] == [
        "police",
        "procuratorate",
    ]
    with store.transaction() as session:
        entry = session.get(AuditEntry, stored.audit_index)
        assert entry is not None and entry.mid == message.mid
        assert entry.leaf_hash == leaf_hash(entry.entry)


def test_accept_of_a_known_mid_writes_nothing_and_returns_the_original(
    store: Store, committer: GroupCommitter
) -> None:
    message = _message()
    first = _accept(committer, message)
    again = _accept(committer, _message(mid=message.mid, payload=b"other"))
    assert store.payload_of(again) == first.payload == message.payload
    assert again.audit_index == first.audit_index
    assert len(store.outbox_of("judicial", message.mid)) == 2


def test_a_failed_transaction_leaves_no_trace(store: Store) -> None:
    message = _message()
    with store.transaction() as session:
        before = session.scalar(select(func.count()).select_from(AuditEntry))
    broken = GroupCommitter(store, BrokenSigner())  # type: ignore[arg-type]
    try:
        with pytest.raises(Internal, match=r"correlation id [0-9a-f]{32}"):
            _accept(broken, message)
    finally:
        broken.close()
    assert store.message("judicial", message.mid) is None
    assert store.outbox_of("judicial", message.mid) == []
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_concurrent_appends_get_consecutive_indexes(store: Store) -> None:
    committers = [GroupCommitter(store, Receipts()) for _ in range(4)]  # type: ignore[arg-type]
    threads = [
        threading.Thread(target=lambda c=c: [_accept(c, _message()) for _ in range(10)])
        for c in committers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for committer in committers:
        committer.close()
    with store.transaction() as session:
        indexes = list(session.scalars(select(AuditEntry.idx).order_by(AuditEntry.idx)))
    assert indexes == list(range(len(indexes)))


def test_outbox_drains_in_order_and_published_rows_are_audited(
    store: Store, committer: GroupCommitter
) -> None:
    outbox = Outbox(store)
    for item in outbox.pending(10_000):
        outbox.mark_published([item.id])
    message = _message()
    _accept(committer, message)
    pending = outbox.pending(100)
    assert [(p.mid, p.routing_key) for p in pending] == [
        (message.mid, "police"),
        (message.mid, "procuratorate"),
    ]
    outbox.mark_published([pending[0].id])
    outbox.mark_unroutable([pending[1].id])
    assert outbox.pending(100) == []
    with store.transaction() as session:
        recorded = list(
            session.scalars(
                select(AuditEntry.event)
                .where(AuditEntry.mid == message.mid)
                .order_by(AuditEntry.idx)
            )
        )
    assert recorded == ["accepted", "published", "unroutable"]


def test_delivery_and_acknowledgement_are_recorded_once(
    store: Store, committer: GroupCommitter
) -> None:
    message = _message()
    _accept(committer, message)
    assert _delivered(store, "police", message, events.DELIVERED) == 1
    assert _delivered(store, "police", message, events.DELIVERED) == 0
    assert _delivered(store, "police", message, events.ACKNOWLEDGED) == 1
    with store.transaction() as session:
        row = session.scalars(
            select(OutboxRow).where(OutboxRow.mid == message.mid, OutboxRow.recipient == "police")
        ).one()
        assert row.delivered_at is not None and row.acknowledged_at is not None


def test_agency_ids_are_unique(store: Store) -> None:
    agency = f"a{uuid.uuid4().hex[:6]}"
    provision.add_agency(store, agency, "A", "agency", "operator")
    with pytest.raises(Conflict):
        provision.add_agency(store, agency, "A", "agency", "operator")


def test_revoked_key_is_reported_revoked(store: Store) -> None:
    agency = f"a{uuid.uuid4().hex[:6]}"
    provision.add_agency(store, agency, "A", "agency", "operator")
    provision.add_key(store, agency, "kid1", b"\x01" * 32, "operator")
    provision.revoke_key(store, agency, "kid1", "operator")
    record = store.key(agency, "kid1")
    assert record is not None and record.revoked
    assert store.key(agency, "nope") is None


def test_a_message_that_breaks_its_group_commit_fails_alone(store: Store) -> None:
    messages = [_message() for _ in range(40)]
    poisoned = messages[17]
    committer = GroupCommitter(store, BrokenFor(poisoned.mid))  # type: ignore[arg-type]
    try:
        futures = _one_batch(committer, messages)
        with pytest.raises(Internal, match="correlation id"):
            futures[17].result(timeout=30)
        stored = [f.result(timeout=30) for i, f in enumerate(futures) if i != 17]
    finally:
        committer.close()
    assert [s.mid for s in stored] == [m.mid for m in messages if m is not poisoned]
    assert store.message("judicial", poisoned.mid) is None


def test_a_value_the_database_refuses_fails_its_message_alone_not_unavailable(
    store: Store, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite does not enforce column lengths")
    messages = [_message() for _ in range(30)]
    too_long = messages[3]
    too_long.outbox[0] = NewOutboxRow("inbox", "police", "police", "k" * 300, "11" * 32, b"b")
    committer = GroupCommitter(store, Receipts())  # type: ignore[arg-type]
    try:
        futures = _one_batch(committer, messages)
        with pytest.raises(Internal, match="correlation id"):
            futures[3].result(timeout=30)
        assert all(f.result(timeout=30) for i, f in enumerate(futures) if i != 3)
    finally:
        committer.close()
    assert store.message("judicial", too_long.mid) is None


def test_many_pseudonyms_are_looked_up_in_one_query(store: Store) -> None:
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add_all(
            SubjectPseudonym(
                recipient="ngo",
                pseudonym=f"P-{n:04d}",
                sealed_resident_id=store.data_keys.seal_text(
                    f"{n:018d}", sealed.pseudonym_row("ngo", f"P-{n:04d}")
                ),
                referred_at=now if n % 2 else None,
            )
            for n in range(500)
        )
    asked = [f"P-{n:04d}" for n in range(0, 1000, 2)] + ["P-0001", "P-0003"]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        with store.transaction() as session:
            referred = Store.referred_among_in(session, "ngo", asked)
            resolved = Store.resident_ids_of_pseudonyms_in(session, asked)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert referred == {"P-0001", "P-0003"}
    assert resolved == {p: f"{int(p[2:]):018d}" for p in asked if int(p[2:]) < 500}
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2

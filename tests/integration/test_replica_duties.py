"""Duties that run once among replicas: leases taken, renewed, fenced and
taken over; and a row the relay publishes again goes out marked redelivered."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.broker import InboxConsumer, Names, OutboxRelay
from gateway.domain import events
from gateway.domain.events import AuditEvent
from gateway.domain.messages import NewMessage, NewOutboxRow
from gateway.security.atrest import DataKeys
from gateway.service.committer import GroupCommitter
from gateway.service.leases import LeaseKeeper
from gateway.service.outbox import Outbox
from gateway.service.pending import Pending
from gateway.store import db, leases
from gateway.store.linkage_state import BatchState, StoredLinkageContext
from gateway.store.models import AuditEntry, Lease, Replica
from gateway.store.notify import OutboxListener
from gateway.store.repository import Store
from tests.helpers import JobsOnly
from tests.integration.broker_fixtures import Received, amqp_url, broker_names

__all__ = ["amqp_url", "broker_names"]  # the pytest fixtures used here

TTL = 2.0
DATA_KEYS = DataKeys.ephemeral()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    store = Store(engine, DATA_KEYS)
    with store.transaction() as session:  # the database is the module's: no one holds a lease
        session.execute(delete(Lease))
        session.execute(delete(Replica))
    yield store
    engine.dispose()


def _until(condition: object, timeout: float) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - began < timeout, "the condition never held"
        time.sleep(0.02)
    return time.monotonic() - began


def test_one_replica_holds_each_duty_and_another_takes_over_when_it_dies(store: Store) -> None:
    first = LeaseKeeper(store, replica="a", ttl_seconds=TTL)
    second = LeaseKeeper(store, replica="b", ttl_seconds=TTL)
    first.tick()
    second.tick()
    assert first.held() == list(leases.DUTIES)
    assert second.held() == []
    with store.transaction() as session:
        before = {row.name: row.epoch for row in leases.leases(session)}

    # "a" dies: it renews no more. "b" keeps trying, as its thread would.
    waited = _until(lambda: second.tick() or second.held() == list(leases.DUTIES), 5.0)

    assert waited < 5.0  # the lease's end, and at most one renewal round after it
    assert not first.holds(leases.RELAY)  # its own clock tells "a" to stop, too
    with store.transaction() as session:
        after = {row.name: (row.holder, row.epoch) for row in leases.leases(session)}
        assert not first.fenced(session, leases.SWEEP)
    assert after == {name: ("b", epoch + 1) for name, epoch in before.items()}


def test_the_holder_renews_at_the_same_epoch_and_its_work_is_fenced(store: Store) -> None:
    keeper = LeaseKeeper(store, replica="a", ttl_seconds=60)
    keeper.tick()
    with store.transaction() as session:
        epoch = {row.name: row.epoch for row in leases.leases(session)}
    keeper.tick()
    with store.transaction() as session:
        assert {row.name: row.epoch for row in leases.leases(session)} == epoch
        assert keeper.fenced(session, leases.SWEEP)
    rival = LeaseKeeper(store, replica="b", ttl_seconds=60)
    rival.tick()
    assert rival.held() == []


def test_a_clean_stop_hands_the_duties_over_at_once(store: Store) -> None:
    first = LeaseKeeper(store, replica="a", ttl_seconds=60)
    second = LeaseKeeper(store, replica="b", ttl_seconds=60)
    first.tick()
    first.stop()
    second.tick()
    assert second.held() == list(leases.DUTIES)
    with store.transaction() as session:
        assert [row.id for row in leases.replicas(session, 60)] == ["b"]


class _DiesAfterConfirm(Outbox):
    """The process dies between the broker's confirm and marking the rows."""

    def mark_published(self, ids: Sequence[int]) -> None:
        raise RuntimeError("killed")


def _message() -> NewMessage:
    return NewMessage(
        sender="judicial",
        mid=str(uuid.uuid4()),
        kind="roster.change",
        payload=b"payload",
        payload_sha256="00" * 32,
        signature="jws",
        unit_code="610302",
        accepted_at=datetime.now(UTC),
        outbox=[NewOutboxRow("inbox", "police", "police", "roster", "11" * 32, b"body")],
        pseudonyms=[],
        referred=[],
    )


@pytest.mark.broker
def test_a_row_published_again_after_a_crash_is_handed_over_as_redelivered(
    store: Store, amqp_url: str, broker_names: Names
) -> None:
    committer = GroupCommitter(store, JobsOnly())  # type: ignore[arg-type]
    message = _message()
    accepted = AuditEvent(events.ACCEPTED, "judicial", mid=message.mid, kind=message.kind)
    committer.submit(Pending(message, [accepted])).result(timeout=30)
    committer.close()

    crashed = OutboxRelay(amqp_url, broker_names, _DiesAfterConfirm(store))
    with pytest.raises(RuntimeError):
        crashed.run_once()
    crashed.close()
    restarted = OutboxRelay(amqp_url, broker_names, Outbox(store))
    assert restarted.run_once() == 1
    restarted.close()

    consumer = InboxConsumer(amqp_url, broker_names, "police")
    received = Received()
    consumer.start(received.on_message, received.on_closed)
    try:
        copies = received.wait_for(2)
        consumer.ack([copy.delivery_tag for copy in copies])
    finally:
        consumer.stop()
    assert [(copy.mid, copy.redelivered) for copy in copies] == [
        (message.mid, False),
        (message.mid, True),
    ]
    assert Outbox(store).pending(10) == []
    with store.transaction() as session:
        published = list(
            session.scalars(
                select(AuditEntry.entry).where(
                    AuditEntry.mid == message.mid, AuditEntry.event == events.PUBLISHED
                )
            )
        )
    assert len(published) == 1 and b'"attempts":2' in published[0]


class _Counter(JobsOnly):
    """A linkage that counts the messages about one person in its state."""

    def stage(self, session: Session, pending: Pending, state: BatchState) -> list[Pending]:
        ctx = StoredLinkageContext(
            session, "count", subject_key=str, units=None, now=datetime.now(UTC), batch=state
        )  # type: ignore[arg-type]
        seen = (ctx.get("person") or {"messages": 0})["messages"]
        ctx.put("person", {"messages": seen + 1})
        state.staged.update(ctx.overlay)
        return []


def test_two_replicas_updating_one_persons_state_lose_no_update_and_audit_gapless(
    database_url: str,
) -> None:
    engines = [db.make_engine(database_url) for _ in range(2)]
    db.upgrade(engines[0])
    committers = [GroupCommitter(Store(e, DATA_KEYS), _Counter(), max_batch=7) for e in engines]  # type: ignore[arg-type]
    futures = []
    for number in range(300):
        message = _message()
        accepted = AuditEvent(events.ACCEPTED, "judicial", mid=message.mid, kind=message.kind)
        pending = Pending(
            message,
            [accepted],
            linkages=[object()],
            state_keys=[("count", "person")],  # type: ignore[list-item]
        )
        futures.append(committers[number % 2].submit(pending))
    stored = [future.result(timeout=60) for future in futures]
    for committer in committers:
        committer.close()
    with Store(engines[0], DATA_KEYS).transaction() as session:
        indexes = list(session.scalars(select(AuditEntry.idx).order_by(AuditEntry.idx)))
        value = StoredLinkageContext(
            session, "count", subject_key=str, units=None, now=datetime.now(UTC)
        ).get("person")  # type: ignore[arg-type]
    for engine in engines:
        engine.dispose()
    assert value == {"messages": 300}
    assert indexes == list(range(len(indexes)))  # one log, many writers: no gap
    assert {m.audit_index for m in stored} <= set(indexes)


def test_a_commit_on_one_replica_wakes_the_relay_of_another(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("one process serves SQLite: its relay is woken directly")
    engines = [db.make_engine(database_url) for _ in range(2)]
    db.upgrade(engines[0])
    wake = threading.Event()
    listener = OutboxListener(engines[1], wake)  # the replica holding the relay lease
    listener.start()
    try:
        assert listener.listening.wait(10)
        committer = GroupCommitter(Store(engines[0], DATA_KEYS), JobsOnly())  # type: ignore[arg-type]
        message = _message()
        accepted = AuditEvent(events.ACCEPTED, "judicial", mid=message.mid, kind=message.kind)
        committer.submit(Pending(message, [accepted])).result(timeout=30)
        committer.close()
        assert wake.wait(10)
    finally:
        listener.stop()
        for engine in engines:
            engine.dispose()

"""The stored audit tree on SQLite and PostgreSQL: appends keep every subtree,
proofs come from O(log n) stored hashes, checkpoints are made as the log
grows, and a database from before the tree gets one when it is migrated."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text

from gateway.audit import log, merkle, tree
from gateway.audit.checkpoints import Checkpointer, audit_signer, make_checkpoint
from gateway.audit.note import open_checkpoint
from gateway.audit.service import AuditService, EntryFilter
from gateway.config import Settings
from gateway.domain.errors import InvalidMessage, PermissionDenied
from gateway.domain.events import AuditEvent
from gateway.domain.policy import Policy
from gateway.security.atrest import DataKeys
from gateway.store import db
from gateway.store.models import AuditEntry
from gateway.store.repository import Store
from tests.integration.audit_fixtures import fresh_database_url  # noqa: F401  (a fixture)


@pytest.fixture
def store(fresh_database_url: str) -> Iterator[Store]:  # noqa: F811
    engine = db.make_engine(fresh_database_url)
    db.upgrade(engine)
    yield Store(engine, DataKeys.ephemeral())
    engine.dispose()


def _append(store: Store, count: int, actor: str = "police") -> list[int]:
    with store.transaction() as session:
        return log.append(
            session, [AuditEvent("accepted", actor, mid=f"m-{i}") for i in range(count)]
        )


def _leaves(store: Store) -> list[bytes]:
    with store.transaction() as session:
        return list(session.scalars(select(AuditEntry.leaf_hash).order_by(AuditEntry.idx)))


def test_appends_store_the_tree_so_proofs_equal_the_recomputed_ones(store: Store) -> None:
    for count in (1, 2, 5, 1, 8, 13, 3):
        _append(store, count)
    leaves = _leaves(store)
    with store.transaction() as session:
        assert tree.head(session).root() == merkle.root(leaves)
        for size in range(1, len(leaves) + 1):
            assert tree.root_at(session, size) == merkle.root(leaves[:size])
            for index in range(0, size, 3):
                assert tree.inclusion_proof(session, index, size) == merkle.inclusion_proof(
                    index, leaves[:size]
                )
            for first in range(1, size + 1, 4):
                assert tree.consistency_proof(session, first, size) == merkle.consistency_proof(
                    first, leaves[:size]
                )


def test_a_proof_costs_a_few_queries_not_a_scan(store: Store) -> None:
    for _ in range(4):
        _append(store, 250)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        with store.transaction() as session:
            tree.inclusion_proof(session, 517, 1000)
            tree.consistency_proof(session, 333, 1000)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 6


def test_concurrent_appenders_build_one_consistent_tree(store: Store) -> None:
    threads = [threading.Thread(target=_append, args=(store, 7)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    leaves = _leaves(store)
    assert len(leaves) == 42
    with store.transaction() as session:
        assert tree.head(session).root() == merkle.root(leaves)


def test_checkpoints_are_signed_notes_of_the_current_tree(store: Store, tmp_path: Path) -> None:
    signer = audit_signer(Settings(data_dir=tmp_path))
    first = make_checkpoint(store, signer)
    assert first.size == 0 and first.root_hash == merkle.EMPTY_ROOT
    _append(store, 5)
    second = make_checkpoint(store, signer)
    assert make_checkpoint(store, signer).size == second.size == 5
    checkpoint = open_checkpoint(second.note, signer.verifier)
    assert (checkpoint.size, checkpoint.root_hash) == (5, merkle.root(_leaves(store)))


def test_checkpointer_signs_every_n_entries_or_after_the_interval(
    store: Store, tmp_path: Path
) -> None:
    now = [1000.0]
    checkpointer = Checkpointer(
        store,
        audit_signer(Settings(data_dir=tmp_path)),
        every_entries=5,
        interval_seconds=60,
        clock=lambda: now[0],
    )
    assert checkpointer.tick() is not None  # the first one, of the empty log
    _append(store, 3)
    assert checkpointer.tick() is None
    _append(store, 2)
    made = checkpointer.tick()
    assert made is not None and made.size == 5
    _append(store, 1)
    assert checkpointer.tick() is None
    now[0] += 60
    made = checkpointer.tick()
    assert made is not None and made.size == 6
    now[0] += 600
    assert checkpointer.tick() is None  # nothing new to sign
    assert checkpointer.wait_for(6, timeout=0)


def test_migrating_a_log_from_before_the_tree_builds_its_tree(fresh_database_url: str) -> None:  # noqa: F811
    engine = db.make_engine(fresh_database_url)
    db.upgrade(engine, "0001")
    time = datetime(2026, 1, 2, tzinfo=UTC)
    entries = [log.encode_entry(i, time, AuditEvent("accepted", "police")) for i in range(37)]
    with engine.begin() as connection:
        connection.execute(
            AuditEntry.__table__.insert(),
            [
                {
                    "idx": i,
                    "created_at": time,
                    "event": "accepted",
                    "actor": "police",
                    "mid": "",
                    "kind": "",
                    "entry": entry,
                    "leaf_hash": merkle.leaf_hash(entry),
                }
                for i, entry in enumerate(entries)
            ],
        )
        connection.execute(text("UPDATE audit_head SET size = 37"))
    db.upgrade(engine)
    store = Store(engine, DataKeys.ephemeral())
    _append(store, 3)
    leaves = _leaves(store)
    with store.transaction() as session:
        assert tree.head(session).root() == merkle.root(leaves)
        assert tree.inclusion_proof(session, 5, 40) == merkle.inclusion_proof(5, leaves)
    engine.dispose()


def _service(store: Store) -> AuditService:
    return AuditService(store, Policy.default(), lambda resident_id: resident_id)


@pytest.mark.parametrize(
    ("index", "size", "field"),
    [(3, 0, "tree_size"), (5, 5, "leaf_index"), (0, 99, "tree_size")],
)
def test_impossible_inclusion_requests_name_the_field(
    store: Store, index: int, size: int, field: str
) -> None:
    _append(store, 10)
    with pytest.raises(InvalidMessage) as raised:
        _service(store).inclusion_proof(index, size)
    assert [v.field for v in raised.value.violations] == [field]


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [(0, 5, "first_tree_size"), (6, 5, "first_tree_size"), (1, 99, "second_tree_size")],
)
def test_impossible_consistency_requests_name_the_field(
    store: Store, first: int, second: int, field: str
) -> None:
    _append(store, 10)
    with pytest.raises(InvalidMessage) as raised:
        _service(store).consistency_proof(first, second)
    assert [v.field for v in raised.value.violations] == [field]


def test_an_agency_gets_inclusion_proofs_of_its_own_entries_only(store: Store) -> None:
    _append(store, 3, actor="police")
    _append(store, 3, actor="ngo")
    entry, proof = _service(store).inclusion_proof(1, 6, actor="police")
    merkle.verify_inclusion(1, 6, merkle.leaf_hash(entry), proof, merkle.root(_leaves(store)))
    with pytest.raises(PermissionDenied):
        _service(store).inclusion_proof(4, 6, actor="police")


def test_entries_are_listed_by_filter_a_page_at_a_time(store: Store) -> None:
    _append(store, 5, actor="police")
    _append(store, 4, actor="ngo")
    _append(store, 3, actor="police")
    service = _service(store)
    page, token = service.entries(EntryFilter(actor="police"), page_size=5)
    assert [e.index for e in page] == [0, 1, 2, 3, 4] and token
    page, token = service.entries(EntryFilter(actor="police"), page_size=5, page_token=token)
    assert [e.index for e in page] == [9, 10, 11] and token == ""
    page, _ = service.entries(EntryFilter(mid="m-2"))
    assert [(e.index, e.actor) for e in page] == [(2, "police"), (7, "ngo"), (11, "police")]
    assert all(merkle.leaf_hash(e.entry) == _leaves(store)[e.index] for e in page)

"""Delivery records share transactions, and a failed write still answers
every caller that was waiting on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gateway.audit import log as audit
from gateway.committer import GroupCommitter
from gateway.deliveries import DeliveryRecorder
from gateway.errors import Unavailable
from gateway.store import db
from gateway.store.repository import Store


class FailingStore(Store):
    def record_delivery_batch(  # type: ignore[override]
        self, session: Session, records: Sequence[object]
    ) -> int:
        raise OperationalError("UPDATE outbox", {}, Exception("server closed the connection"))


@pytest.fixture
def store(database_url: str) -> Iterator[FailingStore]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield FailingStore(engine)
    engine.dispose()


def test_a_failed_delivery_write_answers_its_callers_unavailable(store: FailingStore) -> None:
    committer = GroupCommitter(store)
    recorder = DeliveryRecorder(store, committer)
    try:
        futures = [
            recorder.record("police", [("judicial", f"m{i}")], audit.ACKNOWLEDGED) for i in range(3)
        ]
        for future in futures:
            assert isinstance(future.exception(timeout=30), Unavailable)
    finally:
        committer.close()

"""Delivery records share transactions, and a failed write still answers
every caller that was waiting on it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gateway.domain import events
from gateway.domain.errors import Unavailable
from gateway.security.atrest import DataKeys
from gateway.service.committer import GroupCommitter
from gateway.service.deliveries import DeliveryRecorder
from gateway.store import db
from gateway.store.repository import DeliveryRow, Store
from tests.helpers import JobsOnly


class FailingStore(Store):
    @staticmethod
    def record_deliveries(
        session: Session, records: Sequence[object], column: object, now: object
    ) -> tuple[int, list[tuple[str, str, DeliveryRow]]]:
        raise OperationalError("UPDATE outbox", {}, Exception("server closed the connection"))


@pytest.fixture
def store(database_url: str) -> Iterator[FailingStore]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield FailingStore(engine, DataKeys.ephemeral())
    engine.dispose()


def test_a_failed_delivery_write_answers_its_callers_unavailable(store: FailingStore) -> None:
    committer = GroupCommitter(store, JobsOnly())  # type: ignore[arg-type]
    recorder = DeliveryRecorder(store, committer)
    try:
        futures = [
            recorder.record("police", [("judicial", f"m{i}")], events.ACKNOWLEDGED)
            for i in range(3)
        ]
        for future in futures:
            assert isinstance(future.exception(timeout=30), Unavailable)
    finally:
        committer.close()


class GatedStore(Store):
    """Each delivery write (of the first two) waits for its own gate."""

    def __init__(self, engine: object) -> None:
        super().__init__(engine, DataKeys.ephemeral())  # type: ignore[arg-type]
        self.entered = [threading.Event(), threading.Event()]
        self.gates = [threading.Event(), threading.Event()]
        self.calls = 0

    def record_deliveries(  # type: ignore[override]
        self,
        session: Session,
        records: Sequence[tuple[str, str, Sequence[tuple[str, str]]]],
        column: dict[str, str],
        now: datetime,
    ) -> tuple[int, list[tuple[str, str, DeliveryRow]]]:
        call, self.calls = self.calls, self.calls + 1
        if call < len(self.gates):
            self.entered[call].set()
            assert self.gates[call].wait(30)
        return Store.record_deliveries(session, records, column, now)


def test_a_caller_that_gave_up_does_not_keep_the_others_waiting(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    store = GatedStore(engine)
    committer = GroupCommitter(store, JobsOnly())  # type: ignore[arg-type]
    recorder = DeliveryRecorder(store, committer)
    try:
        first = recorder.record("police", [("judicial", "m0")], events.ACKNOWLEDGED)
        assert store.entered[0].wait(30)
        later = [
            recorder.record("police", [("judicial", f"m{i}")], events.ACKNOWLEDGED)
            for i in range(1, 4)
        ]
        store.gates[0].set()
        assert store.entered[1].wait(30)  # the second write holds the later three
        assert later[1].cancel()  # an Acknowledge whose deadline passed
        store.gates[1].set()
        assert first.result(timeout=30) is None
        assert later[0].result(timeout=30) is None
        assert later[2].result(timeout=30) is None
    finally:
        for gate in store.gates:
            gate.set()
        committer.close()
        engine.dispose()

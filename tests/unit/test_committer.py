"""The writer thread's order: a job (the delivery records behind an
Acknowledge, a sweep) waits at most for the batch being committed, never for
the submissions queued behind it; and a caller that gave up stops nothing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from gateway.service.committer import GroupCommitter, _Outcome
from gateway.service.pending import Pending
from tests.helpers import JobsOnly


class FakeStore:
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield None


class Offline(GroupCommitter):
    """A committer on a fake store: jobs store nothing."""

    def __init__(self) -> None:
        super().__init__(FakeStore(), JobsOnly(), max_batch=500)  # type: ignore[arg-type]

    def _store_all(self, session: Any, pendings: Sequence[Pending], extra: Sequence[Any]) -> Any:
        return {}


class Recording(Offline):
    """Records what the writer does; its first batch waits for ``gate``."""

    def __init__(self) -> None:
        self.order: list[object] = []
        self.gate = threading.Event()
        self.committing = threading.Event()
        super().__init__()

    def _commit(self, batch: list[Pending]) -> None:
        self.order.append(("batch", [p.message for p in batch]))
        self.committing.set()
        assert self.gate.wait(10), "the gate never opened"
        for pending in batch:
            pending.future.set_result(None)  # type: ignore[arg-type]


def pending(name: str) -> Pending:
    return Pending(message=name, events=[])  # type: ignore[arg-type]


def test_a_job_waits_for_the_batch_being_committed_not_for_the_queue_behind_it() -> None:
    committer = Recording()

    def job(session: Any) -> list[Pending]:
        committer.order.append("job")
        return []

    try:
        futures: list[Future[Any]] = [committer.submit(pending("a"))]
        assert committer.committing.wait(10)
        futures += [committer.submit(pending(f"b{i}")) for i in range(3)]
        futures.append(committer.execute(job))
        futures += [committer.submit(pending(f"c{i}")) for i in range(2)]
        committer.gate.set()
        for future in futures:
            future.result(timeout=10)
    finally:
        committer.gate.set()
        committer.close()
    assert committer.order == [
        ("batch", ["a"]),
        "job",
        ("batch", ["b0", "b1", "b2", "c0", "c1"]),
    ]


class Storing(Offline):
    """Each pending message is 'stored' as its name."""

    def _commit_once(self, batch: Sequence[Pending]) -> list[_Outcome]:
        return [_Outcome(p, stored=p.message) for p in batch]  # type: ignore[arg-type]


def test_a_caller_that_gave_up_does_not_stop_the_writer() -> None:
    committer = Storing()
    gate = threading.Event()

    def hold(session: Any) -> list[Pending]:
        assert gate.wait(10), "the gate never opened"
        return []

    try:
        committer.execute(hold)
        abandoned = committer.submit(pending("a"))
        kept = committer.submit(pending("b"))
        assert abandoned.cancel()  # a Submit whose deadline passed while it waited
        abandoned_job = committer.execute(lambda session: [])
        assert abandoned_job.cancel()
        gate.set()
        assert kept.result(timeout=10) == "b"
        assert committer.submit(pending("c")).result(timeout=10) == "c"
        assert committer.execute(lambda session: []).result(timeout=10) == []
    finally:
        gate.set()
        committer.close()

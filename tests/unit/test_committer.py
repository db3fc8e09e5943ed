"""The writer thread's order: a job (delivery records behind an Acknowledge, a
sweep) runs right after the submissions queued before it, never behind the
ones that keep arriving."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from gateway.committer import GroupCommitter, Pending, _Outcome


class FakeStore:
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield None


class Recording(GroupCommitter):
    def __init__(self) -> None:
        self.order: list[object] = []
        super().__init__(FakeStore(), max_batch=500)  # type: ignore[arg-type]

    def _commit(self, batch: list[Pending]) -> None:
        self.order.append(("batch", [p.message for p in batch]))
        for pending in batch:
            pending.future.set_result(None)  # type: ignore[arg-type]

    def _store_all(self, session: Any, pendings: Sequence[Pending], extra: Sequence[Any]) -> Any:
        return {}


def pending(name: str) -> Pending:
    return Pending(message=name, events=[], receipt_for=None)  # type: ignore[arg-type]


def test_a_job_runs_after_what_was_queued_before_it_and_before_what_came_after() -> None:
    committer = Recording()
    gate = threading.Event()
    try:

        def hold(session: Any) -> list[Pending]:
            assert gate.wait(10), "the gate never opened"
            return []

        def job(session: Any) -> list[Pending]:
            committer.order.append("job")
            return []

        futures: list[Future[Any]] = [committer.execute(hold)]
        futures += [committer.submit(pending(f"a{i}")) for i in range(3)]
        futures.append(committer.execute(job))
        futures += [committer.submit(pending(f"b{i}")) for i in range(3)]
        gate.set()
        for future in futures:
            future.result(timeout=10)
    finally:
        committer.close()
    assert committer.order == [
        ("batch", ["a0", "a1", "a2"]),
        "job",
        ("batch", ["b0", "b1", "b2"]),
    ]


class Storing(GroupCommitter):
    """Commits nothing anywhere; each pending message is 'stored' as its name."""

    def __init__(self) -> None:
        super().__init__(FakeStore(), max_batch=500)  # type: ignore[arg-type]

    def _commit_once(self, batch: Sequence[Pending]) -> list[_Outcome]:
        return [_Outcome(p, stored=p.message) for p in batch]  # type: ignore[arg-type]

    def _store_all(self, session: Any, pendings: Sequence[Pending], extra: Sequence[Any]) -> Any:
        return {}


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

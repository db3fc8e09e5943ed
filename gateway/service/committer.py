"""Group commit: messages that arrive together are stored in one transaction.

Every accepted message still gets its own audit entries, outbox rows and
receipt; only the transaction (and its fsync) is shared. One writer thread
owns the database writes of accepted messages, which also keeps SQLite's
single writer busy instead of contended.

One message fails alone: a batch whose transaction fails for any reason but
the database being down is split in halves and committed again, down to the
offending message, which is refused (Internal, with a correlation id in the
answer and the log line) while the others are stored.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar, cast

import structlog
from sqlalchemy.orm import Session

from gateway import metrics
from gateway.audit import log as audit_log
from gateway.domain.errors import GatewayError, Internal, Unavailable
from gateway.domain.events import AuditEvent
from gateway.domain.messages import NewMessage
from gateway.service.pending import Pending
from gateway.store import notify
from gateway.store.linkage_state import BatchState, flush
from gateway.store.models import StoredMessage
from gateway.store.repository import DuplicateRow, Store

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: Put on the message queue when a job is queued, to wake the writer.
_WAKE = object()


class CommitHandler(Protocol):
    """What the group commit asks of the service. Every method but
    ``committed`` runs on the writer thread inside the batch's transaction."""

    def stage(self, session: Session, pending: Pending, state: BatchState) -> list[Pending]:
        """Run ``pending``'s linkages; return the messages they raise (alerts), to
        be stored with it. MAY raise GatewayError to refuse this message alone;
        MUST stage linkage state into ``state`` only once the message is
        accepted, so a refusal leaves nothing behind (no savepoint is needed)."""
        ...

    def receipt(self, pending: Pending, audit_index: int) -> bytes:
        """The serialized, signed receipt of ``pending`` naming its acceptance's index."""
        ...

    def rejection(self, pending: Pending, error: GatewayError) -> AuditEvent:
        """The audit entry of ``pending`` refused by ``stage``."""
        ...

    def committed(self, messages: Sequence[NewMessage]) -> None:
        """Called (outside the transaction) after a commit stored new messages."""
        ...


@dataclass
class _Job:
    """Work that produces messages inside a transaction of its own (a sweep)."""

    run: Callable[[Session], list[Pending]]
    future: Future[list[StoredMessage]] = field(default_factory=Future)


@dataclass
class _Outcome:
    pending: Pending
    stored: StoredMessage | None = None
    error: BaseException | None = None
    accepted: list[Pending] = field(default_factory=list)


class GroupCommitter:
    """Collects pending messages and commits them in batches on its own thread."""

    def __init__(self, store: Store, handler: CommitHandler, *, max_batch: int = 500) -> None:
        self._store = store
        self._handler = handler
        self._max_batch = max_batch
        #: Pending messages in arrival order; _WAKE says a job was queued, None stops.
        self._queue: queue.SimpleQueue[Pending | object | None] = queue.SimpleQueue()
        #: Jobs (delivery records behind Acknowledge calls, sweeps) go ahead of
        #: the queued messages: each waits at most for the batch being committed.
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, pending: Pending) -> Future[StoredMessage]:
        """Queue ``pending``; the future holds the stored message (or the
        existing one for a known (sender, mid)), or the error that refused it."""
        self._queue.put(pending)
        return pending.future

    def execute(self, job: Callable[[Session], list[Pending]]) -> Future[list[StoredMessage]]:
        """Run ``job`` in a transaction on the writer thread and store the
        messages it returns, with their audit entries, in that transaction.

        Jobs run before messages queued for commit (after the batch being
        committed), in the order they came: under a backlog of thousands of
        submissions an Acknowledge waits for one commit, not for all of them.
        """
        item = _Job(job)
        self._jobs.put(item)
        self._queue.put(_WAKE)
        return item.future

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            self._run_jobs()
            if first is None:
                return
            if first is _WAKE:
                continue
            batch = [cast(Pending, first)]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                if item is not _WAKE:  # a job's wake-up: it runs after this batch
                    batch.append(cast(Pending, item))
            self._commit(batch)
            self._run_jobs()
            if stop:
                return

    def _run_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            self._execute(job)

    def _execute(self, job: _Job) -> None:
        try:
            with self._store.transaction() as session:
                produced = job.run(session)
                stored = list(self._store_all(session, produced, []).values())
        except Exception as exc:
            log.exception("job.failed")
            settle(job.future, error=exc)
            return
        if produced:
            self._handler.committed([p.message for p in produced])
        settle(job.future, stored)

    def _commit(self, batch: list[Pending]) -> None:
        metrics.BATCH_SIZE.observe(len(batch))
        outcomes = self._commit_isolating(batch)
        new = [p.message for o in outcomes for p in o.accepted if p.audit_index >= 0]
        if new:
            self._handler.committed(new)
        for outcome in outcomes:
            if outcome.error is not None:
                settle(outcome.pending.future, error=outcome.error)
            else:
                assert outcome.stored is not None
                settle(outcome.pending.future, outcome.stored)

    def _commit_isolating(self, batch: Sequence[Pending]) -> list[_Outcome]:
        """Commit ``batch``; if that fails for a reason other than the database
        being down (another process stored one of these mids first, a value the
        database refused, a bug), commit each half again, so that only the
        offending message fails: about 2·log2(n) extra transactions for one."""
        try:
            return self._commit_once(batch)
        except Unavailable as error:
            return [_Outcome(p, error=error) for p in batch]
        except Exception as exc:  # keep the writer alive, whatever happened
            if len(batch) > 1:
                middle = len(batch) // 2
                return self._commit_isolating(batch[:middle]) + self._commit_isolating(
                    batch[middle:]
                )
            return [_Outcome(batch[0], error=_alone(batch[0], exc))]

    def _commit_once(self, batch: Sequence[Pending]) -> list[_Outcome]:
        with self._store.transaction() as session:
            if any(p.linkages for p in batch):
                # Linkages read and write linkage state: serialize with every
                # other replica's group commit before reading it (no lost update).
                audit_log.lock_head(session)
            staged: dict[tuple[str, str], _Outcome] = {}
            state = BatchState()
            state.prefetch(session, [name for p in batch for name in p.state_keys])
            known = self._store.find_messages(session, [_key(p) for p in batch])
            outcomes = [self._stage(session, pending, staged, known, state) for pending in batch]
            flush(session, state.staged, datetime.now(UTC))
            rejections = []
            for outcome in outcomes:
                if isinstance(outcome.error, GatewayError):
                    rejections.append(self._handler.rejection(outcome.pending, outcome.error))
                    outcome.error.audited = True
            to_store = [p for o in outcomes for p in o.accepted]
            stored = self._store_all(session, to_store, rejections)
            for outcome in outcomes:
                if outcome.error is None and outcome.stored is None:
                    outcome.stored = stored[_key(outcome.pending)]
        return outcomes

    def _store_all(
        self, session: Session, pendings: Sequence[Pending], extra: Sequence[AuditEvent]
    ) -> dict[tuple[str, str], StoredMessage]:
        """Append every pending message's audit entries (then ``extra``) and
        store the messages with receipts naming their acceptance's index."""
        indexes = audit_log.append(session, [e for p in pendings for e in p.events] + list(extra))
        accepted = []
        position = 0
        for pending in pendings:
            index = indexes[position]
            position += len(pending.events)
            pending.audit_index = index
            accepted.append((pending.message, index, self._handler.receipt(pending, index)))
        rows = self._store.add_messages(session, accepted)
        if accepted:
            notify.outbox_changed(session)  # the relay may run on another replica
        return {_key(pending): row for pending, row in zip(pendings, rows, strict=True)}

    def _stage(
        self,
        session: Session,
        pending: Pending,
        staged: dict[tuple[str, str], _Outcome],
        known: dict[tuple[str, str], StoredMessage],
        state: BatchState,
    ) -> _Outcome:
        """Decide one message's fate in the batch: a known mid returns the stored
        message (a mid twice in one batch is stored once), a refusing linkage an
        error; otherwise it and any alerts its linkages raised are to be stored."""
        existing = known.get(_key(pending))
        if existing is not None:
            return _Outcome(pending, stored=existing)
        if _key(pending) in staged:
            return _Outcome(pending)  # filled from its twin after the inserts
        outcome = _Outcome(pending, accepted=[pending])
        if pending.linkages or pending.accepted is not None:
            try:
                outcome.accepted += self._handler.stage(session, pending, state)
            except GatewayError as err:
                return _Outcome(pending, error=err)
        staged[_key(pending)] = outcome
        return outcome


def settle(future: Future[T], result: T | None = None, error: BaseException | None = None) -> None:
    """Complete ``future`` with ``error`` or ``result``, unless its caller
    cancelled it: a gRPC call whose deadline passed cancels the future it
    awaited, and completing a cancelled future raises — in the writer thread,
    which must outlive every caller."""
    if not future.set_running_or_notify_cancel():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


def _alone(pending: Pending, exc: Exception) -> Exception:
    """The error of one message that could not be stored even alone."""
    if isinstance(exc, DuplicateRow):
        return exc
    correlation = uuid.uuid4().hex
    log.error(
        "commit.message_failed",
        mid=pending.message.mid,
        agency=pending.message.sender,
        kind=pending.message.kind,
        correlation_id=correlation,
        exc_info=exc,
    )
    return Internal(
        "STORE_FAILED",
        f"the gateway could not store this message; correlation id {correlation}",
    )


def _key(pending: Pending) -> tuple[str, str]:
    return (pending.message.sender, pending.message.mid)

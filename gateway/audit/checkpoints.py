"""Signed checkpoints of the audit log, and the checkpointer that makes them.

A checkpoint is made by ``make_checkpoint`` (``silian audit checkpoint``) or by
the ``Checkpointer`` running inside ``silian serve``: whenever the log has
grown by ``checkpoint_every_entries`` since the last checkpoint, or has grown at
all and ``checkpoint_interval_seconds`` passed. Every checkpoint is kept in
``audit_checkpoints``, one per tree size; they are signed with the gateway's
audit key (``keys/audit.pem``, separate from the receipt key).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit import tree
from gateway.audit.note import Checkpoint, Signer
from gateway.config import Settings
from gateway.security.signer import load_or_create_key
from gateway.store.models import AuditCheckpoint
from gateway.store.repository import DuplicateRow, Store

log = structlog.get_logger(__name__)

AUDIT_KEY_FILE = "audit.pem"


def audit_signer(settings: Settings) -> Signer:
    """The note signer of the audit log: key name = origin, key in ``keys/audit.pem``."""
    return Signer(settings.audit_log_origin, load_or_create_key(settings.keys_dir / AUDIT_KEY_FILE))


def latest(session: Session) -> AuditCheckpoint | None:
    """The checkpoint of the largest tree, if any."""
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
    ).first()


def make_checkpoint(store: Store, signer: Signer, now: datetime | None = None) -> AuditCheckpoint:
    """Sign and keep a checkpoint of the log as it is now; returns it, or the
    existing checkpoint if the log has not grown since (also when another
    gateway process checkpointed the same size first)."""
    try:
        with store.transaction() as session:
            frontier = tree.head(session)
            existing = latest(session)
            if existing is not None and existing.size >= frontier.size:
                return existing
            made_at = now or datetime.now(UTC)
            checkpoint = Checkpoint.at(signer.name, frontier.size, frontier.root(), made_at)
            row = AuditCheckpoint(
                size=checkpoint.size,
                root_hash=checkpoint.root_hash,
                created_at=made_at,
                note=signer.sign(checkpoint.text()),
            )
            session.add(row)
        log.info("audit.checkpoint", size=row.size, root=row.root_hash.hex())
        return row
    except DuplicateRow:  # another replica signed this size first
        with store.transaction() as session:
            found = latest(session)
            assert found is not None
            return found


def _sizes(store: Store) -> tuple[int, int]:
    """(log size, size of the latest checkpoint or -1)."""
    with store.transaction() as session:
        logged = tree.head(session).size
        checkpointed = session.scalar(select(func.max(AuditCheckpoint.size)))
        return logged, -1 if checkpointed is None else checkpointed


class Checkpointer:
    """Makes checkpoints as the log grows; ``start()`` runs it on a thread of its own.

    ``tick()`` checks once; the thread ticks every ``poll_seconds`` (at most one
    second, so a burst of ``every_entries`` is checkpointed within a second).
    ``wait_for(size)`` blocks until a checkpoint covers ``size`` entries.
    """

    def __init__(
        self,
        store: Store,
        signer: Signer,
        *,
        every_entries: int,
        interval_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._signer = signer
        self._every = max(every_entries, 1)
        self._interval = interval_seconds
        self._clock = clock
        self._last_made = clock() - interval_seconds
        self._covered = threading.Condition()
        self._size = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._may_sign: Callable[[], bool] = lambda: True
        self.poll_seconds = min(max(interval_seconds, 0.05), 1.0)

    @classmethod
    def for_settings(cls, store: Store, settings: Settings) -> Checkpointer:
        return cls(
            store,
            audit_signer(settings),
            every_entries=settings.checkpoint_every_entries,
            interval_seconds=settings.checkpoint_interval_seconds,
        )

    def tick(self) -> AuditCheckpoint | None:
        """Make a checkpoint if one is due (and this replica may sign); returns it, or None."""
        logged, checkpointed = _sizes(self._store)
        self._covers(checkpointed)
        if not self._may_sign():  # another replica holds the checkpoint lease
            return None
        grown = logged - max(checkpointed, 0)
        due = checkpointed < 0 or grown >= self._every
        due = due or (grown > 0 and self._clock() - self._last_made >= self._interval)
        if not due:
            return None
        made = make_checkpoint(self._store, self._signer)
        self._last_made = self._clock()
        self._covers(made.size)
        return made

    def _covers(self, size: int) -> None:
        with self._covered:
            if size > self._size:
                self._size = size
                self._covered.notify_all()

    def wait_for(self, size: int, timeout: float) -> bool:
        """Whether a checkpoint covering ``size`` entries was seen within ``timeout`` seconds."""
        with self._covered:
            return self._covered.wait_for(lambda: self._size >= size, timeout)

    def start(self, may_sign: Callable[[], bool] | None = None) -> None:
        """Tick on a thread of its own; sign only while ``may_sign()`` (the
        checkpoint lease, among replicas) says so."""
        if may_sign is not None:
            self._may_sign = may_sign
        self._thread = threading.Thread(target=self._run, name="audit-checkpointer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        log.info("checkpointer.started", every_entries=self._every, interval=self._interval)
        while True:
            try:
                self.tick()
            except Exception:  # the database may be down: try again next time
                log.exception("checkpointer.failed")
            if self._stop.wait(self.poll_seconds):
                return

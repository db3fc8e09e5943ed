"""Delivery records (handed over, acknowledged, given back), coalesced into
transactions of the group committer so a busy Receive stream costs no
commit per message."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gateway.service.committer import GroupCommitter, Pending, settle
from gateway.store.models import StoredMessage
from gateway.store.repository import Store, database_unavailable


class DeliveryRecorder:
    """Coalesces delivery records into jobs of the group committer."""

    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self._store = store
        self._committer = committer
        self._lock = threading.Lock()
        self._buffer: list[tuple[str, list[tuple[str, str]], str, Future[None]]] = []
        self._scheduled = False

    def record(
        self, recipient: str, messages: Sequence[tuple[str, str]], event: str
    ) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            self._buffer.append((recipient, list(messages), event, future))
            schedule, self._scheduled = not self._scheduled, True
        if schedule:
            self._schedule()
        return future

    def _schedule(self) -> None:
        drained: list[Future[None]] = []

        def job(session: Session) -> list[Pending]:
            with self._lock:
                items, self._buffer, self._scheduled = self._buffer, [], False
            # Taken from the buffer means owned here: settle them whatever the
            # write below does, or their callers would wait forever.
            drained.extend(future for *_, future in items)
            self._store.record_delivery_batch(
                session, [(recipient, event, messages) for recipient, messages, event, _ in items]
            )
            return []

        def answer(done: Future[list[StoredMessage]]) -> None:
            error = done.exception()
            if isinstance(error, DBAPIError):
                error = database_unavailable(error)
            for future in drained:  # a caller that gave up is skipped; the others still wait
                settle(future, None, error)

        self._committer.execute(job).add_done_callback(answer)

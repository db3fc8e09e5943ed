"""Delivery records (handed over, acknowledged, given back), coalesced into
transactions of the group committer so a busy Receive stream costs no
commit per message."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gateway.committer import GroupCommitter, Pending
from gateway.errors import Unavailable
from gateway.store.models import StoredMessage
from gateway.store.repository import Store

log = structlog.get_logger(__name__)


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
            self._store.record_delivery_batch(
                session, [(recipient, event, messages) for recipient, messages, event, _ in items]
            )
            drained.extend(future for *_, future in items)
            return []

        def settle(done: Future[list[StoredMessage]]) -> None:
            error = done.exception()
            for future in drained:
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(_as_gateway_error(error))

        self._committer.execute(job).add_done_callback(settle)


def _as_gateway_error(error: BaseException) -> BaseException:
    if isinstance(error, DBAPIError):
        log.error("database.unavailable", error=str(error.orig)[:200])
        return Unavailable(
            "DATABASE_UNAVAILABLE", "the gateway's database is unavailable; retry later"
        )
    return error

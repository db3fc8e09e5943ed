"""Waking the relay of another replica: a group commit that stores outbox rows
sends PostgreSQL ``NOTIFY``; the replica running the relay ``LISTEN``s and
sets its wake event, so a message accepted by any replica is published at
once rather than at the relay's next idle poll. (SQLite has one process; its
relay is woken directly.)"""

from __future__ import annotations

import threading

import structlog
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

log = structlog.get_logger(__name__)

CHANNEL = "silian_outbox"
#: Seconds a listener waits for a notification before checking whether to stop.
POLL_SECONDS = 1.0


def outbox_changed(session: Session) -> None:
    """In a transaction that stores outbox rows: tell listening replicas at commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


class OutboxListener:
    """Sets ``wake`` whenever a replica committed outbox rows; a thread of its own
    on a connection of its own (PostgreSQL only: ``start`` does nothing otherwise)."""

    def __init__(self, engine: Engine, wake: threading.Event) -> None:
        self._engine = engine
        self._wake = wake
        self._stop = threading.Event()
        #: Set while a connection is LISTENing.
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-listener", daemon=True)

    def start(self) -> None:
        if self._engine.dialect.name == "postgresql":
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(POLL_SECONDS * 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            raw = None
            try:
                raw = self._engine.raw_connection()
                connection = raw.driver_connection
                assert connection is not None  # a fresh pool connection is open
                connection.autocommit = True
                connection.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                while not self._stop.is_set():
                    for _ in connection.notifies(timeout=POLL_SECONDS):
                        self._wake.set()
            except Exception as exc:  # the database went away: listen again shortly
                self.listening.clear()
                log.warning("outbox_listener.failed", error=repr(exc)[:200])
                self._wake.set()  # a missed notification costs at most one idle poll
                self._stop.wait(POLL_SECONDS)
            finally:
                if raw is not None:
                    raw.invalidate()  # a LISTENing autocommit connection never goes back

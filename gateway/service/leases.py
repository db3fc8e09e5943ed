"""Duties that run once among replicas, under leases this replica keeps renewed.

Every replica runs a ``LeaseKeeper``: each ``renew_seconds`` it records its
heartbeat and tries to take or renew every duty's lease (``gateway.store.leases``)
for ``ttl_seconds``. A duty runs only while ``holds(duty)``: the lease was
renewed less than ``ttl_seconds - margin`` ago by this process's clock, so a
replica cut off from the database stops before its lease can pass to another.
When a holder dies, its leases expire within ``ttl_seconds`` and the next
renewal round of a live replica takes them: with the defaults (3 s, renewed
every second) another replica runs the duty within 4 s.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog
from sqlalchemy.orm import Session

from gateway.domain.errors import GatewayError
from gateway.store import leases
from gateway.store.repository import Store

log = structlog.get_logger(__name__)

#: Seconds before the lease's end at which its holder stops the duty.
MARGIN_SECONDS = 0.5


def replica_id() -> str:
    """A name for this process, unique among replicas: host, pid and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseKeeper:
    """Keeps this replica's heartbeat and its duties' leases; ``start()`` runs
    it on a thread of its own, ``tick()`` is one round."""

    def __init__(
        self,
        store: Store,
        *,
        replica: str | None = None,
        listen: str = "",
        duties: Sequence[str] = leases.DUTIES,
        ttl_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.replica = replica or replica_id()
        self._listen = listen
        self._duties = tuple(duties)
        self._ttl = ttl_seconds
        self.renew_seconds = ttl_seconds / 3
        self._clock = clock
        self._started_at = datetime.now(UTC)
        self._lock = threading.Lock()
        #: duty -> (epoch, local time until which this replica may run it)
        self._held: dict[str, tuple[int, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holds(self, duty: str) -> bool:
        """Whether this replica may run ``duty`` now."""
        with self._lock:
            held = self._held.get(duty)
        return held is not None and self._clock() < held[1]

    def held(self) -> list[str]:
        """The duties this replica may run now."""
        return [duty for duty in self._duties if self.holds(duty)]

    def fenced(self, session: Session, duty: str) -> bool:
        """Inside a duty's transaction: whether the lease is still this replica's
        at the epoch it took (and locked so until the transaction ends)."""
        with self._lock:
            held = self._held.get(duty)
        return held is not None and leases.fenced(session, duty, self.replica, held[0])

    def tick(self) -> None:
        """Record the heartbeat, then take or renew each duty's lease."""
        with self._store.transaction() as session:
            leases.heartbeat(session, self.replica, self._listen, self._started_at)
        for duty in self._duties:
            began = self._clock()
            # One transaction per lease: a duty's transaction that holds its
            # lease row locked (``fenced``) delays only that lease's renewal.
            with self._store.transaction() as session:
                epoch = leases.hold(session, duty, self.replica, self._ttl)
            with self._lock:
                before = self._held.get(duty)
                if epoch is None:
                    self._held.pop(duty, None)
                else:
                    self._held[duty] = (epoch, began + self._ttl - MARGIN_SECONDS)
            if epoch is not None and (before is None or before[0] != epoch):
                log.info("lease.taken", duty=duty, epoch=epoch, replica=self.replica)
            elif epoch is None and before is not None:
                log.warning("lease.lost", duty=duty, replica=self.replica)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop renewing and give the leases up, so another replica takes them at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            self._held.clear()
        try:
            with self._store.transaction() as session:
                leases.release(session, list(self._duties), self.replica)
                leases.forget(session, self.replica)
        except GatewayError:
            log.warning("lease.release_failed", replica=self.replica)

    def _run(self) -> None:
        log.info("lease_keeper.started", replica=self.replica, ttl=self._ttl)
        while True:
            try:
                self.tick()
            except Exception:  # the database may be down: duties pause, next round retries
                with self._lock:
                    self._held.clear()
                log.exception("lease_keeper.failed")
            if self._stop.wait(self.renew_seconds):
                return

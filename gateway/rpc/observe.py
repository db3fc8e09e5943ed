"""What operators see: a snapshot of the exchange (outbox lag, dead letters,
leases, replicas, audit log) for ``silian status``, and the Prometheus endpoint
of ``metrics_listen`` with a sampler that refreshes the gauges from it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from prometheus_client import start_http_server
from sqlalchemy import func, select

from gateway import metrics
from gateway.audit import tree
from gateway.audit.checkpoints import latest
from gateway.broker.topology import Names, dead_letter_depths
from gateway.domain.errors import GatewayError
from gateway.service.leases import LeaseKeeper
from gateway.store import leases
from gateway.store.models import OutboxRow
from gateway.store.repository import Store

log = structlog.get_logger(__name__)

#: A replica whose heartbeat is older than this is not counted as seen.
REPLICA_SEEN_SECONDS = 10.0
#: Seconds between two samples of the database and broker figures.
SAMPLE_SECONDS = 5.0


@dataclass
class Snapshot:
    """The exchange at a glance, as the database and the broker tell it."""

    replicas: list[leases.ReplicaRow] = field(default_factory=list)
    leases: list[leases.LeaseRow] = field(default_factory=list)
    outbox_pending: int = 0
    outbox_oldest_seconds: float = 0.0
    audit_size: int = 0
    checkpoint_size: int | None = None
    checkpoint_made: datetime | None = None
    dead_letters: dict[str, int] = field(default_factory=dict)
    #: What could not be read ("database", "broker"), with why.
    errors: dict[str, str] = field(default_factory=dict)


def database_figures(store: Store, snapshot: Snapshot) -> None:
    with store.transaction() as session:
        snapshot.replicas = leases.replicas(session, REPLICA_SEEN_SECONDS)
        snapshot.leases = leases.leases(session)
        count, oldest = session.execute(
            select(func.count(), func.min(OutboxRow.created_at)).where(
                OutboxRow.published_at.is_(None), OutboxRow.unroutable_at.is_(None)
            )
        ).one()
        snapshot.outbox_pending = int(count)
        snapshot.outbox_oldest_seconds = metrics.since(oldest) or 0.0
        snapshot.audit_size = tree.head(session).size
        checkpoint = latest(session)
        if checkpoint is not None:
            snapshot.checkpoint_size = checkpoint.size
            snapshot.checkpoint_made = checkpoint.created_at


def take_snapshot(store: Store, amqp_url: str, names: Names, agencies: list[str]) -> Snapshot:
    """Read every figure; what cannot be read is named in ``errors``."""
    snapshot = Snapshot()
    try:
        database_figures(store, snapshot)
    except GatewayError as err:
        snapshot.errors["database"] = err.message
    try:
        snapshot.dead_letters = dead_letter_depths(amqp_url, names, agencies)
    except GatewayError as err:
        snapshot.errors["broker"] = err.message
    return snapshot


class MetricsSampler:
    """Serves the registry on ``listen`` (host:port) and refreshes the sampled
    gauges every ``SAMPLE_SECONDS`` on a thread of its own."""

    def __init__(
        self,
        listen: str,
        store: Store,
        amqp_url: str,
        names: Names,
        agencies: list[str],
        keeper: LeaseKeeper,
    ) -> None:
        self._listen = listen
        self._store, self._amqp_url, self._names, self._agencies = store, amqp_url, names, agencies
        self._keeper = keeper
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self.port = 0

    def start(self) -> None:
        host, _, port = self._listen.rpartition(":")
        server, _thread = start_http_server(
            int(port), addr=host or "0.0.0.0", registry=metrics.REGISTRY
        )
        self._server = server
        self.port = server.server_port
        log.info("metrics.serving", listen=f"{host}:{self.port}", path="/metrics")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._server.shutdown()
        self._server.server_close()

    def sample(self) -> None:
        """Refresh the gauges read from the database and the broker once."""
        held = set(self._keeper.held())
        for duty in leases.DUTIES:
            metrics.LEASE_HELD.labels(duty).set(1 if duty in held else 0)
        snapshot = take_snapshot(self._store, self._amqp_url, self._names, self._agencies)
        for source in snapshot.errors:
            metrics.SAMPLE_ERRORS.labels(source).inc()
        if "database" not in snapshot.errors:
            metrics.OUTBOX_PENDING.set(snapshot.outbox_pending)
            metrics.OUTBOX_OLDEST_SECONDS.set(snapshot.outbox_oldest_seconds)
            metrics.REPLICAS.set(len(snapshot.replicas))
            metrics.AUDIT_SIZE.set(snapshot.audit_size)
            if snapshot.checkpoint_size is not None:
                metrics.CHECKPOINT_SIZE.set(snapshot.checkpoint_size)
                metrics.CHECKPOINT_AGE.set(metrics.since(snapshot.checkpoint_made) or 0.0)
        for agency, depth in snapshot.dead_letters.items():
            metrics.DEAD_LETTERS.labels(agency).set(depth)

    def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:  # a sample must never end the gateway; the next one tries again
                log.exception("metrics.sample_failed")
            if self._stop.wait(SAMPLE_SECONDS):
                return

"""The grpc.aio server: Exchange, Audit, health, reflection, TLS (``gateway.rpc.tls``:
re-read on change or SIGHUP), graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import grpc
import pika
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from sqlalchemy import text

from gateway.audit.checkpoints import Checkpointer
from gateway.bootstrap import Gateway, recipients
from gateway.broker import topology
from gateway.domain.calendar import local_date
from gateway.proto.silian.v1 import audit_pb2, exchange_pb2
from gateway.rpc import audit_servicer
from gateway.rpc.boundary import Boundary
from gateway.rpc.exchange_servicer import ExchangeServicer, add_to_server
from gateway.rpc.observe import MetricsSampler
from gateway.rpc.tls import ServerTls, check_listen
from gateway.service import retention
from gateway.service.admission import Admission, StreamSlots, parse_rate_limits
from gateway.store import db
from gateway.store.leases import CHECKPOINT, RETENTION, SWEEP
from gateway.store.notify import OutboxListener

log = structlog.get_logger(__name__)

HEALTH_INTERVAL_SECONDS = 2.0
#: How often the minute-by-minute counts of failed authentications are recorded.
SUMMARY_INTERVAL_SECONDS = 15.0
EXCHANGE = exchange_pb2.DESCRIPTOR.services_by_name["Exchange"].full_name
AUDIT = audit_pb2.DESCRIPTOR.services_by_name["Audit"].full_name


class _BrokerWorker:
    """Declares the topology (retrying until the broker is there), then runs
    the outbox relay until stopped. Runs in its own thread."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def _declare(self) -> None:
        settings = self._gateway.settings
        connection = topology.connect(settings.amqp_url)
        try:
            topology.declare(
                connection.channel(),
                self._gateway.names,
                recipients(self._gateway.policy),
                delivery_limit=settings.delivery_limit,
            )
        finally:
            connection.close()

    def _run(self) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                self._declare()
                break
            except pika.exceptions.AMQPError as exc:
                log.warning("broker.unavailable", error=repr(exc), retry_in=delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 5.0)
        if self.stop.is_set():
            return
        self.ready.set()
        log.info("relay.started")
        while not self.stop.is_set():
            try:
                self._gateway.relay.run(self.stop)
            except Exception:  # a bug must not silently end publishing
                log.exception("relay.crashed")
                self._gateway.relay.healthy = False
                self.stop.wait(1.0)


def _database_ok(gateway: Gateway) -> bool:
    try:
        with gateway.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means not ready
        return False


async def _watch_health(
    gateway: Gateway, worker: _BrokerWorker, health: HealthServicer, stopping: asyncio.Event
) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    while not stopping.is_set():
        ok = (
            worker.ready.is_set()
            and gateway.relay.healthy
            and await asyncio.to_thread(_database_ok, gateway)
        )
        for service in ("", EXCHANGE):
            await health.set(service, serving if ok else not_serving)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), HEALTH_INTERVAL_SECONDS)


async def _summarize(gateway: Gateway, stopping: asyncio.Event) -> None:
    """Record each minute's count of failed authentications per caller address."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), SUMMARY_INTERVAL_SECONDS)
        try:
            await asyncio.to_thread(
                gateway.service.summarize_unauthenticated, everything=stopping.is_set()
            )
        except Exception:  # logged; the next round tries again
            log.exception("unauthenticated.summary_failed")


async def _sweep(gateway: Gateway, stopping: asyncio.Event) -> None:
    """Run the linkages' time-driven rules (deadlines, days without a check) on
    the replica holding the sweep lease, fenced by it."""
    interval = gateway.settings.sweep_interval_seconds
    leases = gateway.leases
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
        if stopping.is_set() or not gateway.service.linkages.all or not leases.holds(SWEEP):
            continue
        try:
            raised = await asyncio.to_thread(
                gateway.service.sweep, fence=lambda session: leases.fenced(session, SWEEP)
            )
        except Exception:  # logged; the next round tries again
            log.exception("sweep.failed")
            continue
        if raised:
            log.info("sweep.alerts", raised=raised)


async def _retention(gateway: Gateway, stopping: asyncio.Event) -> None:
    """Purge expired payloads on the replica holding the retention lease: when
    it takes the lease, then every ``retention_interval_seconds``."""
    leases = gateway.leases
    while not stopping.is_set() and gateway.settings.retention_years > 0:
        if not leases.holds(RETENTION):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), leases.renew_seconds)
            continue
        try:
            await asyncio.to_thread(purge_expired, gateway)
        except Exception:  # logged; the next round tries again
            log.exception("retention.failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), gateway.settings.retention_interval_seconds)


def purge_expired(gateway: Gateway) -> retention.Purged:
    """One retention run of ``gateway`` (its clock, calendar and settings)."""
    service = gateway.service
    now = datetime.fromtimestamp(service.clock(), UTC)
    return retention.run(
        gateway.store,
        subject_key=service.subject_key,
        years=gateway.settings.retention_years,
        today=local_date(now, service.zone),
        now=now,
    )


def _metrics(gateway: Gateway) -> MetricsSampler | None:
    """The Prometheus endpoint of ``metrics_listen``, started; None when unset."""
    settings = gateway.settings
    if not settings.metrics_listen:
        return None
    sampler = MetricsSampler(
        settings.metrics_listen,
        gateway.store,
        settings.amqp_url,
        gateway.names,
        recipients(gateway.policy),
        gateway.leases,
    )
    sampler.start()
    return sampler


async def serve(
    gateway: Gateway,
    *,
    on_ready: Callable[[int], None] | None = None,
    stopping: asyncio.Event | None = None,
    checkpointer: Checkpointer | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stopping`` is set), then drain and stop.

    ``checkpointer`` signs audit checkpoints while the server runs (default:
    one made from the settings)."""
    settings = gateway.settings
    check_listen(settings)
    tls = ServerTls.for_settings(settings)
    stopping = stopping or asyncio.Event()
    claim = db.claim_sqlite(settings.effective_database_url)  # one process per SQLite file
    # Separate pools, so that the checks of an Acknowledge (or of an auditor's
    # query) never wait behind the thousands of messages SubmitStream queues
    # for checking when the gateway is busy: that made acknowledgements take
    # seconds and deliveries fall far behind acceptance under sustained load.
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="exchange")
    control = ThreadPoolExecutor(max_workers=2, thread_name_prefix="control")
    auditing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="audit")
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes * 2 + 65536),
            ("grpc.max_send_message_length", settings.max_message_bytes * 2 + 65536),
            ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ]
    )
    boundary = Boundary(gateway.service.authenticate, control)
    add_to_server(
        ExchangeServicer(
            gateway.service,
            executor,
            settings.amqp_url,
            gateway.names,
            Admission(settings.max_in_progress, parse_rate_limits(settings.rate_limits)),
            StreamSlots(settings.max_receive_streams),
        ),
        server,
        boundary,
    )
    audit_servicer.add_to_server(
        audit_servicer.AuditServicer.for_gateway(gateway, auditing), server, boundary
    )
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if settings.reflection:
        reflection.enable_server_reflection(
            (
                EXCHANGE,
                AUDIT,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
    port = (
        server.add_secure_port(settings.listen, tls.credentials())
        if tls
        else server.add_insecure_port(settings.listen)
    )
    gateway.leases.start()
    listener = OutboxListener(gateway.store.engine, gateway.relay_wake)
    listener.start()
    sampler = _metrics(gateway)
    worker = _BrokerWorker(gateway)
    worker.thread.start()
    checkpointer = checkpointer or Checkpointer.for_settings(gateway.store, settings)
    checkpointer.start(may_sign=lambda: gateway.leases.holds(CHECKPOINT))
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stopping.set)
    if tls:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, tls.reload)
    watcher = asyncio.create_task(_watch_health(gateway, worker, health, stopping))
    sweeper = asyncio.create_task(_sweep(gateway, stopping))
    retainer = asyncio.create_task(_retention(gateway, stopping))
    summarizer = asyncio.create_task(_summarize(gateway, stopping))
    log.info(
        "gateway.serving",
        listen=settings.listen,
        port=port,
        tls="mtls" if tls and tls.client_ca else "tls" if tls else "off",
        database=gateway.store.engine.url.get_backend_name(),
        replica=gateway.leases.replica,
    )
    if db.autovacuum_off(gateway.store.engine):
        log.warning("postgres.autovacuum_off", advice=db.AUTOVACUUM_OFF)
    if on_ready:
        on_ready(port)
    await stopping.wait()
    log.info("gateway.stopping", grace_seconds=settings.shutdown_grace_seconds)
    await health.enter_graceful_shutdown()
    await server.stop(settings.shutdown_grace_seconds)
    watcher.cancel()
    sweeper.cancel()
    retainer.cancel()
    with contextlib.suppress(TimeoutError):  # records what the last minute counted
        await asyncio.wait_for(summarizer, settings.shutdown_grace_seconds + 5)
    worker.stop.set()
    await asyncio.to_thread(worker.thread.join, 10)
    await asyncio.to_thread(checkpointer.stop)
    await asyncio.to_thread(gateway.leases.stop)
    await asyncio.to_thread(listener.stop)
    if sampler is not None:
        await asyncio.to_thread(sampler.stop)
    for pool in (executor, control, auditing):
        pool.shutdown(wait=True)
    gateway.service.committer.close()
    gateway.store.engine.dispose()
    if claim is not None:
        claim.close()
    log.info("gateway.stopped")

"""Several gateways on one PostgreSQL database (real ``silian serve`` processes):
a message sent to two replicas at once is stored once, the replica holding the
leases can die under load without a receipted message lost, and SQLite
refuses a second gateway."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymerkle import InmemoryTree
from sqlalchemy import func, select

from gateway import bootstrap
from gateway.audit import bundle
from gateway.audit.checkpoints import audit_signer
from gateway.client import AgencyClient, build_envelope
from gateway.config import Settings
from gateway.domain import events, kinds
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.store import leases
from gateway.store.models import AuditEntry, StoredMessage
from gateway.store.repository import Store
from gateway.testing import (
    GatewayExited,
    GatewayProcess,
    delete_broker_names,
    enrolment,
    postgres_schema,
    register_principals,
)
from tests.conftest import AMQP_URL, POSTGRES_URL, PRINCIPALS

MESSAGES = 600


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Settings]:
    """Settings every replica of a test shares: a fresh PostgreSQL schema, a
    broker prefix and one data directory (one keys/)."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    with postgres_schema(POSTGRES_URL) as url:
        yield Settings(
            data_dir=tmp_path / "data",
            database_url=url,
            amqp_url=AMQP_URL,
            broker_prefix=prefix,
            log_format="json",
            shutdown_grace_seconds=1.0,
        )
    delete_broker_names(AMQP_URL, prefix, PRINCIPALS)


def _replica(settings: Settings, name: str) -> GatewayProcess:
    return GatewayProcess(settings, log_path=settings.data_dir.parent / f"{name}.log")


@pytest.fixture
def replicas(shared: Settings) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    first, second = _replica(shared, "a"), _replica(shared, "b")
    first.start()  # first: it takes the leases
    second.start()
    yield first, second
    for process in (first, second):
        process.stop()


def _store(settings: Settings) -> Store:
    return bootstrap.open_store(settings, migrate=False)


def _holders(store: Store) -> dict[str, str]:
    with store.transaction() as session:
        return {row.name: row.holder for row in leases.leases(session) if not row.expired}


def _pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


def test_the_same_mid_sent_to_two_replicas_at_once_is_stored_once(
    shared: Settings, replicas: tuple[GatewayProcess, GatewayProcess]
) -> None:
    keys = register_principals(shared)
    clients = [p.client("judicial", keys["judicial"]) for p in replicas]
    envelopes = [
        build_envelope("judicial", keys["judicial"], kinds.ROSTER_CHANGE, enrolment())
        for _ in range(40)
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for envelope in envelopes:
            both = threading.Barrier(2)

            def submit(
                client: AgencyClient,
                envelope: envelope_pb2.Envelope = envelope,
                both: threading.Barrier = both,
            ) -> object:
                both.wait()
                return client.submit_envelope(envelope)

            first, second = pool.map(submit, clients)
            assert first == second  # the same signed receipt, whichever replica stored it
    store = _store(shared)
    with store.transaction() as session:
        mids = [e.mid for e in envelopes]
        stored = session.scalar(
            select(func.count()).select_from(StoredMessage).where(StoredMessage.mid.in_(mids))
        )
        accepted = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.mid.in_(mids), AuditEntry.event == events.ACCEPTED)
        )
    store.engine.dispose()
    assert (stored, accepted) == (len(envelopes), len(envelopes))
    for client in clients:
        client.close()


class Load:
    """Submits envelopes to one replica on SubmitStream calls in a thread,
    keeping receipts; a failed call is retried with what has no receipt yet."""

    def __init__(self, client: AgencyClient, envelopes: list[envelope_pb2.Envelope]) -> None:
        self.receipts: dict[str, envelope_pb2.Receipt] = {}
        self.halfway = threading.Event()
        self._client, self._envelopes = client, envelopes
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while len(self.receipts) < len(self._envelopes):
            missing = [e for e in self._envelopes if e.mid not in self.receipts]
            requests = (exchange_pb2.SubmitStreamRequest(envelope=e) for e in missing[:100])
            try:
                client = self._client
                for result in client.stub.SubmitStream(requests, metadata=client.metadata()):
                    if result.HasField("receipt"):
                        self.receipts[result.mid] = result.receipt
                    if len(self.receipts) >= len(self._envelopes) // 3:
                        self.halfway.set()
            except grpc.RpcError:
                time.sleep(0.2)  # pacing a retry after a failed call, not synchronisation


def _read_inbox(client: AgencyClient, wanted: set[str], timeout: float) -> list[tuple[str, bool]]:
    """Every copy handed over until each wanted mid came: (mid, redelivered)."""
    copies: list[tuple[str, bool]] = []
    with client.inbox(timeout=timeout) as inbox:
        for delivery in inbox:
            inbox.acknowledge(delivery)
            copies.append((delivery.mid, delivery.redelivered))
            if wanted <= {mid for mid, _ in copies}:
                break
        inbox.flush()
    return copies


def _verify_audit(settings: Settings, store: Store, out: Path) -> bundle.Summary:
    """Export the log; check the bundle with the gateway's verifier and the newest
    checkpoint's root with an independent RFC 9162 implementation (pymerkle)."""
    bundle.export(store, audit_signer(settings), out)
    summary = bundle.verify(out, bundle.bundled_verifier(out))
    _origin, size, root = (out / bundle.LATEST).read_text().splitlines()[:3]
    lines = (out / bundle.ENTRIES).read_text().splitlines()
    independent = InmemoryTree(algorithm="sha256")
    for position, line in enumerate(lines[: int(size)]):
        entry = json.loads(line)
        assert entry["index"] == position  # gapless, in order
        independent.append_entry(base64.b64decode(entry["leaf"]))
    assert independent.get_root(int(size)) == base64.b64decode(root)
    return summary


def test_killing_the_replica_holding_the_leases_under_load_loses_nothing(
    shared: Settings, replicas: tuple[GatewayProcess, GatewayProcess], tmp_path: Path
) -> None:
    first, second = replicas
    keys: dict[str, Ed25519PrivateKey] = register_principals(shared)
    store = _store(shared)
    assert {_pid_of(h) for h in _holders(store).values()} == {first.pid}
    envelopes = [
        build_envelope("judicial", keys["judicial"], kinds.ROSTER_CHANGE, enrolment())
        for _ in range(MESSAGES)
    ]
    judicial = second.client("judicial", keys["judicial"])
    load = Load(judicial, envelopes)
    load.thread.start()
    assert load.halfway.wait(120)
    time.sleep(random.uniform(0, 0.5))  # somewhere in the middle of the run
    first.kill()
    killed_at = time.monotonic()
    deadline = killed_at + 10
    while set(_holders(store)) != set(leases.DUTIES) or {
        _pid_of(h) for h in _holders(store).values()
    } != {second.pid}:
        assert time.monotonic() < deadline, f"no takeover: {_holders(store)}"
        time.sleep(0.05)
    taken_over = time.monotonic() - killed_at
    load.thread.join(180)
    assert len(load.receipts) == MESSAGES

    police = second.client("police", keys["police"])
    copies = _read_inbox(police, set(load.receipts), timeout=120)
    police.close()
    judicial.close()

    delivered = {mid for mid, _ in copies}
    assert set(load.receipts) <= delivered  # 0 receipted messages lost
    seen: set[str] = set()
    for mid, redelivered in copies:
        assert mid not in seen or redelivered, f"{mid} came twice, the copy not redelivered"
        seen.add(mid)
    assert taken_over < 5.0
    with store.transaction() as session:
        entries = dict(
            session.execute(
                select(AuditEntry.idx, AuditEntry.mid).where(AuditEntry.event == events.ACCEPTED)
            ).all()
        )
    for mid, receipt in load.receipts.items():  # every receipt's index is final
        assert entries[receipt.audit_index] == mid
    summary = _verify_audit(shared, store, tmp_path / "bundle")
    assert summary.size >= 3 * MESSAGES
    store.engine.dispose()


def test_a_second_gateway_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        amqp_url=AMQP_URL,
        broker_prefix=f"test-{uuid.uuid4().hex[:8]}",
        shutdown_grace_seconds=1.0,
    )
    first, second = _replica(settings, "a"), _replica(settings, "b")
    try:
        first.start()
        with pytest.raises(GatewayExited) as exited:
            second.start()
        assert "SQLITE_IN_USE" in str(exited.value)
        assert "Traceback" not in second.log()
        assert first.running()
    finally:
        first.stop()
        second.stop()
        delete_broker_names(AMQP_URL, settings.broker_prefix, PRINCIPALS)


def test_workers_share_one_port_and_each_is_a_replica(shared: Settings) -> None:
    keys = register_principals(shared)
    gateway = GatewayProcess(
        replace(shared, log_format="json"),
        log_path=shared.data_dir.parent / "workers.log",
        args=["--workers", "2"],
    )
    store = _store(shared)
    try:
        gateway.start()
        deadline = time.monotonic() + 30
        while True:
            with store.transaction() as session:
                seen = leases.replicas(session, 5.0)
            if len(seen) == 2:
                break
            assert time.monotonic() < deadline, f"replicas seen: {seen}"
            time.sleep(0.1)
        judicial = gateway.client("judicial", keys["judicial"])
        police = gateway.client("police", keys["police"])
        mids = {judicial.submit(kinds.ROSTER_CHANGE, enrolment()).mid for _ in range(20)}
        assert mids <= {mid for mid, _ in _read_inbox(police, mids, timeout=60)}
        judicial.close()
        police.close()
    finally:
        code = gateway.stop()
        store.engine.dispose()
    assert code == 0, gateway.log_tail()
    assert {_pid_of(row.id) for row in seen} != {gateway.pid}  # two processes of its own


def test_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", amqp_url=AMQP_URL)
    gateway = GatewayProcess(settings, args=["--workers", "2"])
    with pytest.raises(GatewayExited) as exited:
        gateway.start()
    assert "WORKERS_NEED_POSTGRESQL" in str(exited.value)
    assert "Traceback" not in gateway.log()


def test_a_worker_that_dies_is_started_again(shared: Settings) -> None:
    keys = register_principals(shared)
    gateway = GatewayProcess(
        shared, log_path=shared.data_dir.parent / "workers.log", args=["--workers", "2"]
    )
    store = _store(shared)

    def workers() -> set[int]:
        with store.transaction() as session:
            return {_pid_of(row.id) for row in leases.replicas(session, 2.0)}

    try:
        gateway.start()
        deadline = time.monotonic() + 30
        while len(first := workers()) != 2:
            assert time.monotonic() < deadline, f"workers seen: {first}"
            time.sleep(0.1)
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len((now := workers()) - first) != 1 or victim in now:
            assert time.monotonic() < deadline, f"workers seen: {now}"
            time.sleep(0.1)
        judicial = gateway.client("judicial", keys["judicial"])
        assert judicial.submit(kinds.ROSTER_CHANGE, enrolment()).mid
        judicial.close()
    finally:
        code = gateway.stop()
        store.engine.dispose()
    assert code == 0, gateway.log_tail()
    assert '"worker.exited"' in gateway.log()

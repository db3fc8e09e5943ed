"""Outages of the broker and of the database under a real `silian serve`: nothing
receipted is lost, the gateway says UNAVAILABLE while it cannot work, and it
recovers by itself. Each test stops a server of its own (``tests.services``),
never the machine's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway.client import AgencyClient, build_envelope
from gateway.config import Settings
from gateway.domain import kinds
from gateway.testing import (
    NOT_SERVING,
    GatewayProcess,
    delete_broker_names,
    enrolment,
    register_principals,
    wait_health,
)
from tests.conftest import AMQP_URL, PRINCIPALS
from tests.e2e.test_crash import MESSAGES, Load, _resubmit_until_receipted
from tests.helpers import receive_mids
from tests.services import PostgresServer, RabbitNode, own_postgres, own_rabbitmq


@pytest.fixture(scope="module")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


def _settings(base: Path, database_url: str, amqp_url: str) -> Settings:
    data_dir = base / f"data-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir()
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        amqp_url=amqp_url,
        broker_prefix=f"test-{uuid.uuid4().hex[:8]}",
        log_format="console",
    )


def _started(settings: Settings) -> tuple[GatewayProcess, dict]:
    keys = register_principals(settings)
    process = GatewayProcess(settings)
    process.start()
    return process, keys


def _police(gateway: GatewayProcess, keys: dict) -> AgencyClient:
    return gateway.client("police", keys["police"])


@pytest.fixture(scope="module")
def rabbit(services_dir: Path) -> Iterator[RabbitNode]:
    with own_rabbitmq(services_dir) as node:
        yield node


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with own_postgres() as server:
        yield server


def test_broker_restart_under_load_loses_nothing(services_dir: Path, rabbit: RabbitNode) -> None:
    settings = _settings(services_dir, f"sqlite:///{services_dir}/broker.db", rabbit.url)
    gateway, keys = _started(settings)
    envelopes = [
        build_envelope("judicial", keys["judicial"], kinds.ROSTER_CHANGE, enrolment())
        for _ in range(MESSAGES)
    ]
    judicial = AgencyClient.connect(gateway.target, agency="judicial", key=keys["judicial"])
    try:
        load = Load(judicial, envelopes, signal_after=MESSAGES // 4)
        load.thread.start()
        assert load.reached.wait(60)
        try:
            rabbit.stop_app()
        finally:
            rabbit.start_app()
        load.thread.join(120)
        _resubmit_until_receipted(judicial, envelopes, load.receipts)
        police = _police(gateway, keys)
        delivered = receive_mids(police, {e.mid for e in envelopes}, timeout=120)
        assert {e.mid for e in envelopes} <= set(delivered)
        police.close()
    finally:
        judicial.close()
        gateway.stop()


def test_database_outage_is_unavailable_then_recovers_by_itself(
    services_dir: Path, postgres: PostgresServer
) -> None:
    settings = _settings(services_dir, postgres.url, AMQP_URL)
    gateway, keys = _started(settings)
    judicial = AgencyClient.connect(gateway.target, agency="judicial", key=keys["judicial"])
    try:
        before = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
        try:
            postgres.stop()
            with pytest.raises(grpc.RpcError) as caught:
                judicial.submit(kinds.ROSTER_CHANGE, enrolment(), max_attempts=1)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
            wait_health(gateway.target, 30, want=NOT_SERVING)
        finally:
            postgres.start()
        wait_health(gateway.target, 60)
        after = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
        police = _police(gateway, keys)
        assert {before.mid, after.mid} <= set(receive_mids(police, [before.mid, after.mid]))
        police.close()
    finally:
        judicial.close()
        gateway.stop()
        delete_broker_names(AMQP_URL, settings.broker_prefix, PRINCIPALS)

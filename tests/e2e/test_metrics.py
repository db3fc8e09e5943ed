"""What operators see of a real running gateway: its /metrics after traffic, and
`silian status`."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from gateway.config import Settings
from gateway.domain import kinds
from gateway.store import db
from gateway.testing import (
    GatewayProcess,
    enrolment,
    free_port,
    register_principals,
    resident_id,
    verification_result,
)
from tests.helpers import receive_mids

MESSAGES = 30


@pytest.fixture(scope="module")
def gateway(settings: Settings) -> Iterator[tuple[GatewayProcess, str]]:
    port = free_port()
    process = GatewayProcess(
        replace(settings, log_format="json"), env={"SILIAN_METRICS_LISTEN": f"127.0.0.1:{port}"}
    )
    process.start()
    yield process, f"http://127.0.0.1:{port}/metrics"
    process.stop()


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_count_the_traffic_of_a_running_gateway(
    settings: Settings, gateway: tuple[GatewayProcess, str]
) -> None:
    process, url = gateway
    keys = register_principals(settings)
    judicial = process.client("judicial", keys["judicial"])
    police = process.client("police", keys["police"])
    mids = {judicial.submit(kinds.ROSTER_CHANGE, enrolment()).mid for _ in range(MESSAGES)}
    with pytest.raises(grpc.RpcError):
        judicial.submit(kinds.VERIFICATION_RESULT, verification_result(resident_id()))
    receive_mids(police, mids)
    judicial.close()
    police.close()

    deadline = time.monotonic() + 30
    while True:  # acknowledgements are recorded, and the gauges sampled, shortly after
        samples = _scrape(url)
        acknowledged = _value(
            samples, "silian_accepted_to_acknowledged_seconds_count", agency="police"
        )
        if (acknowledged or 0) >= MESSAGES and _value(samples, "silian_audit_tree_size"):
            break
        assert time.monotonic() < deadline, f"acknowledged {acknowledged}"
        time.sleep(0.2)

    accepted = _value(
        samples, "silian_messages_accepted_total", agency="judicial", kind=kinds.ROSTER_CHANGE
    )
    assert accepted == MESSAGES
    refused = [
        value
        for (name, labels), value in samples.items()
        if name == "silian_messages_refused_total" and ("agency", "judicial") in labels
    ]
    assert sum(refused) == 1
    assert _value(samples, "silian_accept_seconds_count") == MESSAGES
    assert (_value(samples, "silian_accepted_to_published_seconds_count") or 0) >= MESSAGES
    assert _value(samples, "silian_accepted_to_delivered_seconds_count", agency="police") == (
        MESSAGES
    )
    assert (_value(samples, "silian_group_commit_batch_size_count") or 0) >= 1
    assert _value(samples, "silian_open_streams", agency="police") == 0
    assert _value(samples, "silian_lease_held", duty="relay") == 1
    assert _value(samples, "silian_dead_letters", agency="police") == 0
    assert _value(samples, "silian_replicas") == 1
    assert (_value(samples, "silian_audit_tree_size") or 0) >= 3 * MESSAGES
    assert _value(samples, "silian_outbox_pending") is not None
    assert _value(samples, "silian_audit_checkpoint_age_seconds") is not None


def test_status_prints_replicas_leases_lags_and_the_last_checkpoint(
    settings: Settings, gateway: tuple[GatewayProcess, str]
) -> None:
    process, _ = gateway
    silian = Path(sys.executable).with_name("silian")
    done = subprocess.run(
        [str(silian), "--data-dir", str(settings.data_dir), "status"],
        env=process.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Replicas seen (1)" in out
    assert f":{process.pid}:" in out
    for duty in ("relay", "sweep", "checkpoint"):
        assert duty in out
    assert "outbox rows not yet published" in out
    assert "dead letters of police" in out
    assert "last checkpoint" in out
    # this machine's PostgreSQL runs without autovacuum: the operator is told
    engine = db.make_engine(settings.database_url)
    try:
        off = engine.dialect.name == "postgresql" and _show_autovacuum(engine) == "off"
    finally:
        engine.dispose()
    assert ("autovacuum off" in " ".join(out.split())) == off


def _show_autovacuum(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.exec_driver_sql("SHOW autovacuum").scalar())

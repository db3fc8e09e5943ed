"""`silian serve` as its own process: it becomes healthy, serves, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import bootstrap
from gateway.client import AgencyClient
from gateway.client.keys import gateway_keys
from gateway.config import Settings
from gateway.domain import kinds
from gateway.service.provision import ensure_principals
from tests.helpers import enrolment, receive_mids


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_serving(target: str, timeout: float) -> None:
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        for response in health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), timeout=timeout
        ):
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                return


def test_serve_delivers_and_stops_cleanly_on_sigterm(settings: Settings) -> None:
    store = bootstrap.open_store(settings)
    keys = ensure_principals(settings, store, bootstrap.load_policy(settings))
    store.engine.dispose()
    target = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "SILIAN_DATABASE_URL": settings.database_url,
        "SILIAN_BROKER_PREFIX": settings.broker_prefix,
        "SILIAN_AMQP_URL": settings.amqp_url,
    }
    silian = Path(sys.executable).with_name("silian")
    process = subprocess.Popen(
        [str(silian), "--data-dir", str(settings.data_dir), "serve", "--listen", target],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_serving(target, timeout=60)
        judicial = AgencyClient.connect(target, agency="judicial", key=keys["judicial"])
        police = AgencyClient.connect(
            target, agency="police", key=keys["police"], gateway_keys=gateway_keys(settings)
        )
        receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
        assert receipt.mid in receive_mids(police, [receipt.mid])
        judicial.close()
        police.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-2000:]
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert events.index("gateway.stopping") < events.index("gateway.stopped")
    accepted = [
        json.loads(line)
        for line in stderr.splitlines()
        if line.startswith("{") and '"message.accepted"' in line
    ]
    assert accepted[0]["mid"] == receipt.mid and accepted[0]["agency"] == "judicial"
    assert accepted[0]["kind"] == kinds.ROSTER_CHANGE

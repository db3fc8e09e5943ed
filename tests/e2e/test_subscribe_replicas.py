"""Acknowledgements reach the replica that holds the stream: two gateways (one
in this process, one a `silian serve` process) on one PostgreSQL database, one
broker and one key set, behind a per-call round-robin load balancer. Subscribe
carries the acks on its stream, so every delivery is acknowledged; an
Acknowledge that reaches the other replica is refused FAILED_PRECONDITION and
the delivery comes back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_status import rpc_status

from gateway.client import AgencyClient
from gateway.client.keys import gateway_keys
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import exchange_pb2
from gateway.testing import (
    BackgroundGateway,
    GatewayProcess,
    delete_broker_names,
    enrolment,
    postgres_schema,
    register_principals,
)
from tests.conftest import AMQP_URL, POSTGRES_URL, PRINCIPALS

MESSAGES = 30
ACKNOWLEDGED = exchange_pb2.DELIVERY_STATE_ACKNOWLEDGED


@dataclass
class Replicas:
    settings: Settings
    keys: dict[str, Ed25519PrivateKey]
    a: BackgroundGateway
    b: GatewayProcess

    def client(self, agency: str, target: str, **options: object) -> AgencyClient:
        channel = grpc.insecure_channel(target, options=list(options.items()))
        return AgencyClient(
            channel,
            agency,
            self.keys[agency],
            self.settings.gateway_id,
            gateway_keys(self.settings),
        )

    def balanced(self, agency: str) -> AgencyClient:
        """A client whose every call goes to the next replica in turn."""
        hosts = ",".join(gw.target for gw in (self.a, self.b))
        return self.client(agency, f"ipv4:{hosts}", **{"grpc.lb_policy_name": "round_robin"})


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    with postgres_schema(POSTGRES_URL) as database_url, ExitStack() as stack:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("data"),
            database_url=database_url,
            amqp_url=AMQP_URL,
            broker_prefix=prefix,
            listen="127.0.0.1:0",
            log_format="console",
            shutdown_grace_seconds=1.0,
        )
        keys = register_principals(settings)
        a = stack.enter_context(BackgroundGateway(settings))
        b = GatewayProcess(settings)
        b.start()
        stack.callback(b.stop)
        stack.callback(delete_broker_names, AMQP_URL, prefix, PRINCIPALS)
        yield Replicas(settings, keys, a, b)


def test_subscribe_behind_a_per_call_balancer_acknowledges_every_delivery(
    replicas: Replicas,
) -> None:
    judicial, police = replicas.balanced("judicial"), replicas.balanced("police")
    mids = {judicial.submit(kinds.ROSTER_CHANGE, enrolment()).mid for _ in range(MESSAGES)}

    seen: set[str] = set()
    with police.inbox(timeout=60) as inbox:
        for delivery in inbox:
            inbox.acknowledge(delivery)
            seen.add(delivery.mid)
            if mids <= seen:
                break
        inbox.flush()

    assert mids <= seen
    assert inbox.unknown == 0 and inbox.acknowledged >= MESSAGES
    for mid in mids:
        states = {r.recipient: r.state for r in judicial.status(mid).recipients}
        assert states["police"] == ACKNOWLEDGED, mid
    judicial.close()
    police.close()


def test_an_acknowledge_on_the_replica_without_the_stream_is_refused_and_comes_back(
    replicas: Replicas,
) -> None:
    judicial = replicas.client("judicial", replicas.a.target)
    receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    on_a = replicas.client("police", replicas.a.target)
    on_b = replicas.client("police", replicas.b.target)
    stream = on_a.stub.Receive(exchange_pb2.ReceiveRequest(), metadata=on_a.metadata(), timeout=60)
    delivery = next(d for d in (next(stream).delivery for _ in range(100)) if d.mid == receipt.mid)

    with pytest.raises(grpc.RpcError) as refused:
        on_b.stub.Acknowledge(
            exchange_pb2.AcknowledgeRequest(delivery_ids=[delivery.delivery_id]),
            metadata=on_b.metadata(),
            timeout=30,
        )
    stream.cancel()

    status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
    assert status is not None and status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "DELIVERY_HELD_ELSEWHERE" in str(status.details)
    states = {r.recipient: r.state for r in judicial.status(receipt.mid).recipients}
    assert states["police"] != ACKNOWLEDGED
    with replicas.balanced("police").inbox(timeout=30) as inbox:
        again = next(d for d in inbox if d.mid == receipt.mid)
        inbox.acknowledge(again)
        inbox.flush()
    assert again.redelivered
    states = {r.recipient: r.state for r in judicial.status(receipt.mid).recipients}
    assert states["police"] == ACKNOWLEDGED
    for client in (judicial, on_a, on_b):
        client.close()

"""Acknowledge answers success, and the audit log says acknowledged, only once
RabbitMQ took the ack: when the inbox stream's broker connection is gone the
call says so (ABORTED, INBOX_CONNECTION_LOST), nothing claims acknowledged, and
the deliveries come back. Against a RabbitMQ node of the test's own, whose
connections it closes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from grpc_status import rpc_status

from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import audit_pb2, audit_pb2_grpc, exchange_pb2
from gateway.rpc.errors import DOMAIN
from gateway.testing import BackgroundGateway, enrolment, register_principals
from tests.e2e.conftest import Running
from tests.integration.broker_fixtures import TcpProxy
from tests.services import RabbitNode, own_rabbitmq

DELIVERED = exchange_pb2.DELIVERY_STATE_DELIVERED
ACKNOWLEDGED = exchange_pb2.DELIVERY_STATE_ACKNOWLEDGED


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    with own_rabbitmq(tmp_path_factory.mktemp("services")) as node:
        yield node


@pytest.fixture(scope="module")
def proxy(rabbit: RabbitNode) -> Iterator[TcpProxy]:
    """The gateway's way to the broker, which a test can silence or cut."""
    forwarder = TcpProxy(rabbit.url)
    yield forwarder
    forwarder.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, proxy: TcpProxy) -> Iterator[Running]:
    data_dir = tmp_path_factory.mktemp("data")
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'silian.db'}",
        amqp_url=proxy.url,
        broker_prefix=f"test-{uuid.uuid4().hex[:8]}",
        listen="127.0.0.1:0",
        log_format="console",
        shutdown_grace_seconds=1.0,
    )
    keys = register_principals(settings)
    with BackgroundGateway(settings) as background:
        yield Running(background, keys)


def _receive(police: AgencyClient, count: int) -> tuple[grpc.Future, list]:
    """A Receive stream of the police, and its first ``count`` deliveries."""
    stream = police.stub.Receive(exchange_pb2.ReceiveRequest(), metadata=police.metadata())
    return stream, [next(stream).delivery for _ in range(count)]


def _acknowledge(police: AgencyClient, ids: list[str]) -> exchange_pb2.AcknowledgeResponse:
    return police.stub.Acknowledge(
        exchange_pb2.AcknowledgeRequest(delivery_ids=ids), metadata=police.metadata(), timeout=30
    )


def _audited(running: Running, mid: str) -> set[tuple[str, str]]:
    auditor = running.client("auditor")
    try:
        entries = audit_pb2_grpc.AuditStub(auditor.channel).ListEntries(
            audit_pb2.ListEntriesRequest(mid=mid), metadata=auditor.metadata(), timeout=15
        )
    finally:
        auditor.close()
    return {(e.event, e.detail.get("recipient") or e.actor) for e in entries.entries}


def test_an_ack_after_the_inbox_connection_is_gone_is_aborted_and_comes_back(
    running: Running, rabbit: RabbitNode
) -> None:
    judicial, police = running.client("judicial"), running.client("police")
    receipts = [judicial.submit(kinds.ROSTER_CHANGE, enrolment()) for _ in range(2)]
    stream, deliveries = _receive(police, 2)

    assert rabbit.close_connections(".inbox.police consumer") == 1
    with pytest.raises(grpc.RpcError) as ended:
        next(stream)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as refused:
        _acknowledge(police, [d.delivery_id for d in deliveries])

    status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
    assert status is not None and status.code == grpc.StatusCode.ABORTED.value[0]
    assert "INBOX_CONNECTION_LOST" in str(status.details) and DOMAIN in str(status.details)
    for receipt in receipts:
        states = {r.recipient: r.state for r in judicial.status(receipt.mid).recipients}
        assert states["police"] == DELIVERED
        assert ("acknowledged", "police") not in _audited(running, receipt.mid)

    again, redelivered = _receive(police, 2)
    assert {d.mid for d in redelivered} == {r.mid for r in receipts}
    assert all(d.redelivered for d in redelivered)
    answer = _acknowledge(police, [d.delivery_id for d in redelivered])
    again.cancel()
    assert (answer.acknowledged, list(answer.unknown_delivery_ids)) == (2, [])
    for receipt in receipts:
        states = {r.recipient: r.state for r in judicial.status(receipt.mid).recipients}
        assert states["police"] == ACKNOWLEDGED
        assert ("acknowledged", "police") in _audited(running, receipt.mid)
    judicial.close()
    police.close()


def test_an_ack_the_broker_never_answers_is_aborted_not_recorded(
    running: Running, proxy: TcpProxy
) -> None:
    judicial, police = running.client("judicial"), running.client("police")
    receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    stream, [delivery] = _receive(police, 1)

    proxy.freeze()  # the path to the broker goes silent: the ack is written into the void
    try:
        with pytest.raises(grpc.RpcError) as refused:
            _acknowledge(police, [delivery.delivery_id])
    finally:
        proxy.cut()

    status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
    assert status is not None and status.code == grpc.StatusCode.ABORTED.value[0]
    assert "INBOX_CONNECTION_LOST" in str(status.details)
    states = {r.recipient: r.state for r in judicial.status(receipt.mid).recipients}
    assert states["police"] == DELIVERED
    assert ("acknowledged", "police") not in _audited(running, receipt.mid)
    stream.cancel()
    again, [redelivered] = _receive(police, 1)
    assert (redelivered.mid, redelivered.redelivered) == (receipt.mid, True)
    _acknowledge(police, [redelivered.delivery_id])
    again.cancel()
    judicial.close()
    police.close()


def test_an_ack_for_a_stream_of_another_gateway_process_is_refused(running: Running) -> None:
    police = running.client("police")
    with pytest.raises(grpc.RpcError) as refused:
        _acknowledge(police, ["0badc0de.0123456789abcdef.1"])
    police.close()

    status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
    assert status is not None and status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "DELIVERY_HELD_ELSEWHERE" in str(status.details)

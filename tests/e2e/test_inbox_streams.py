"""An inbox stream whose client leaves while the gateway is still connecting to
the broker (slow when the first node listed is down) leaves no consumer behind
holding deliveries for nobody: the next stream gets them."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import exchange_pb2
from gateway.testing import (
    BackgroundGateway,
    delete_broker_names,
    enrolment,
    register_principals,
)
from tests.conftest import AMQP_URL, PRINCIPALS
from tests.e2e.conftest import Running
from tests.helpers import receive_mids

PUBLISHED = exchange_pb2.DELIVERY_STATE_PUBLISHED
#: How long the gateway waits for the silent first node before trying the next.
STACK_TIMEOUT = 3


class SilentNode:
    """A port that takes AMQP connections and never answers, as a hung node would."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.url = f"amqp://guest:guest@127.0.0.1:{port}/%2F?stack_timeout={STACK_TIMEOUT}"
        self._held: list[socket.socket] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self) -> int:
        with self._changed:
            return len(self._held)

    def wait_for(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self._held) >= count, 30)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self._listener.accept()
                with self._changed:
                    self._held.append(connection)
                    self._changed.notify_all()

    def close(self) -> None:
        self._listener.close()
        for connection in self._held:
            connection.close()


@pytest.fixture(scope="module")
def silent_node() -> Iterator[SilentNode]:
    node = SilentNode()
    yield node
    node.close()


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, silent_node: SilentNode, broker_prefix: str
) -> Iterator[Running]:
    data_dir = tmp_path_factory.mktemp("data")
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'silian.db'}",
        amqp_url=f"{silent_node.url}, {AMQP_URL}",
        broker_prefix=broker_prefix,
        listen="127.0.0.1:0",
        log_format="console",
        shutdown_grace_seconds=1.0,
    )
    keys = register_principals(settings)
    with BackgroundGateway(settings, ready_timeout=60) as background:
        yield Running(background, keys)


@pytest.fixture(scope="module")
def broker_prefix() -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_broker_names(AMQP_URL, prefix, PRINCIPALS)


def wait_published(client: AgencyClient, mid: str) -> None:
    deadline = time.monotonic() + 30
    while not all(r.state == PUBLISHED for r in client.status(mid).recipients):
        assert time.monotonic() < deadline, f"{mid} was not published"
        time.sleep(0.05)  # polling the gateway's status: no event to wait on


def test_a_stream_left_while_connecting_leaves_no_consumer_behind(
    running: Running, silent_node: SilentNode
) -> None:
    judicial, police = running.client("judicial"), running.client("police")
    receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    wait_published(judicial, receipt.mid)  # the relay is past the silent node now
    before = silent_node.connections
    leaving = threading.Event()

    def requests() -> Iterator[exchange_pb2.SubscribeRequest]:
        yield exchange_pb2.SubscribeRequest(max_in_flight=10)
        leaving.wait(30)  # the stream stays open until the client leaves

    left = police.stub.Subscribe(requests(), metadata=police.metadata())
    silent_node.wait_for(before + 1)  # the gateway is connecting: the silent node first
    left.cancel()
    leaving.set()

    delivered = receive_mids(police, [receipt.mid], timeout=4 * STACK_TIMEOUT + 10)

    assert receipt.mid in delivered
    judicial.close()
    police.close()

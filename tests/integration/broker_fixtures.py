"""Fixtures and helpers for the broker tests, against the real RabbitMQ.

Test modules import what they use (``from tests.integration.broker_fixtures``), so
these fixtures never collide with a conftest. Every test gets a prefix of its
own and deletes what it declared.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from gateway.broker import (
    InboxMessage,
    Names,
    OutboxItem,
    blocking_channel,
    connection_parameters,
    declare,
    delete,
)
from gateway.domain.errors import Unavailable

AMQP_URL = os.environ.get("SILIAN_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
AGENCIES = ("police", "ngo")
DELIVERY_LIMIT = 2
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05

T = TypeVar("T")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The test broker; the test is skipped when RabbitMQ cannot be reached."""
    try:
        pika.BlockingConnection(connection_parameters(AMQP_URL)).close()
    except pika.exceptions.AMQPConnectionError as error:
        pytest.skip(
            f"RabbitMQ is not reachable at {AMQP_URL} ({error!r}); "
            "start it (scripts/services.sh) or set SILIAN_TEST_AMQP_URL"
        )
    return AMQP_URL


@pytest.fixture
def broker_names(amqp_url: str) -> Iterator[Names]:
    """A prefix of this test's own with the topology declared for ``AGENCIES``; deleted after."""
    names = Names(f"test-{uuid.uuid4().hex[:8]}")
    with blocking_channel(amqp_url) as channel:
        declare(channel, names, AGENCIES, delivery_limit=DELIVERY_LIMIT)
    yield names
    with blocking_channel(amqp_url) as channel:
        delete(channel, names, AGENCIES)


@pytest.fixture
def channel(amqp_url: str) -> Iterator[BlockingChannel]:
    """A channel for the test's own checks."""
    with blocking_channel(amqp_url) as opened:
        yield opened


@pytest.fixture
def proxy(amqp_url: str) -> Iterator[TcpProxy]:
    """A TCP forwarder to the broker whose connections the test can cut."""
    forwarder = TcpProxy(amqp_url)
    yield forwarder
    forwarder.close()


class FakeOutbox:
    """An in-memory ``OutboxSource``, shared safely by the relay thread and the test."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._rows: dict[int, OutboxItem] = {}
        self._ids = itertools.count(1)
        self.published: list[int] = []
        self.unroutable: list[int] = []
        self.mark_published_calls = 0
        self.polls = 0
        #: The next this many mark_published calls fail as a database outage would.
        self.failing_marks = 0

    def add(self, destination: str, routing_key: str, *, kind: str = "roster.change") -> OutboxItem:
        item = OutboxItem(
            id=next(self._ids),
            destination=destination,
            routing_key=routing_key,
            mid=str(uuid.uuid4()),
            kind=kind,
            body=os.urandom(700),
            headers={"sender": "judicial", "unit": "610302"},
        )
        with self._changed:
            self._rows[item.id] = item
        return item

    def pending(self, limit: int) -> list[OutboxItem]:
        with self._changed:
            self.polls += 1
            self._changed.notify_all()
            return list(itertools.islice(self._rows.values(), limit))

    def mark_published(self, ids: Sequence[int]) -> None:
        if self.failing_marks:
            self.failing_marks -= 1
            raise Unavailable("DATABASE_UNAVAILABLE", "the database is unavailable")
        self._settle(ids, self.published)
        self.mark_published_calls += 1

    def mark_unroutable(self, ids: Sequence[int]) -> None:
        self._settle(ids, self.unroutable)

    def wait_until_polled(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait until the relay asked for pending rows at least once."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.polls > 0, timeout), "never polled"

    def wait_until_settled(self, timeout: float = WAIT_SECONDS) -> bool:
        """Wait until no row is pending."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._rows, timeout)

    def _settle(self, ids: Sequence[int], into: list[int]) -> None:
        with self._changed:
            for row_id in ids:
                del self._rows[row_id]  # a row settled twice is a relay bug: fail loudly
            into.extend(ids)
            self._changed.notify_all()


class Received:
    """Collects what an ``InboxConsumer`` hands over; the test waits on it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.messages: list[InboxMessage] = []
        self.closed: list[Exception | None] = []
        self.then: Callable[[InboxMessage], None] | None = None

    def on_message(self, message: InboxMessage) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        if self.then is not None:
            self.then(message)

    def on_closed(self, error: Exception | None) -> None:
        with self._changed:
            self.closed.append(error)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[InboxMessage]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"{len(self.messages)} of {count} messages arrived"
            )
            return list(self.messages)

    def wait_closed(self, timeout: float = WAIT_SECONDS) -> Exception | None:
        with self._changed:
            assert self._changed.wait_for(lambda: bool(self.closed), timeout), "never closed"
            return self.closed[0]


def take(
    channel: BlockingChannel, queue: str, count: int, *, arguments: dict[str, object] | None = None
) -> list[tuple[pika.spec.Basic.Deliver, pika.spec.BasicProperties, bytes]]:
    """Consume ``count`` messages from ``queue`` (acking them); fail if they do not come."""
    channel.basic_qos(prefetch_count=max(count, 1))
    taken = []
    for method, properties, body in channel.consume(
        queue, arguments=arguments, inactivity_timeout=WAIT_SECONDS
    ):
        assert method is not None, f"only {len(taken)} of {count} messages in {queue}"
        taken.append((method, properties, body))
        if len(taken) == count:
            break
    channel.basic_ack(taken[-1][0].delivery_tag, multiple=True)
    channel.cancel()
    return taken


def take_until_marker(url: str, names: Names, agency: str) -> list[str]:
    """Mids in the agency's inbox ahead of a marker published now; all are consumed.

    Shows that nothing (more) is waiting in the inbox without sleeping: the
    quorum queue delivers returned messages before the newer marker.
    """
    marker = f"marker-{uuid.uuid4()}"
    mids = []
    with blocking_channel(url) as channel:
        channel.confirm_delivery()
        channel.basic_publish(
            names.inbox_exchange,
            agency,
            b"",
            pika.BasicProperties(message_id=marker),
            mandatory=True,
        )
        for method, properties, _body in channel.consume(
            names.inbox(agency), inactivity_timeout=WAIT_SECONDS
        ):
            assert method is not None, "the marker never arrived"
            channel.basic_ack(method.delivery_tag)
            if properties.message_id == marker:
                break
            mids.append(properties.message_id)
        channel.cancel()
    return mids


def eventually(probe: Callable[[], T], timeout: float = WAIT_SECONDS) -> T:
    """Poll ``probe`` until it returns something truthy.

    Only for broker work that announces itself to nobody (a quorum queue
    dead-letters asynchronously); everything else waits on an event.
    """
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        assert time.monotonic() < deadline, f"{probe} did not hold within {timeout} s"
        time.sleep(POLL_SECONDS)
    return result


class TcpProxy:
    """Forwards TCP to the broker so a test can cut its own client's connections.

    ``cut()`` cuts every open connection now; ``cut_after(n)`` arms a cut of the
    connection that carries the n-th byte from client to broker from now on;
    ``freeze()`` makes the open connections go silent (what either side sends is
    dropped) without closing them, as a dead network path would, until ``cut()``.
    ``cuts`` and ``connections`` count what happened.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}"
        self.url = urlunsplit(parts._replace(netloc=netloc))
        self._lock = threading.Lock()
        self._open: list[tuple[socket.socket, socket.socket]] = []
        self._cut_at: int | None = None
        self._frozen: set[tuple[socket.socket, socket.socket]] = set()
        self._forwarded = 0
        self.connections = 0
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, byte_count: int) -> None:
        with self._lock:
            self._cut_at = self._forwarded + byte_count

    def freeze(self) -> None:
        """Silence every connection open now (new ones work)."""
        with self._lock:
            self._frozen.update(self._open)

    def cut(self) -> None:
        """Cut every connection open now, as a network failure would."""
        with self._lock:
            pairs, self._open = self._open, []
            self._frozen.clear()
            self.cuts += len(pairs)
        for pair in pairs:
            _shut(pair)

    def close(self) -> None:
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                broker = socket.create_connection(self._upstream)
                pair = (client, broker)
                with self._lock:
                    self._open.append(pair)
                    self.connections += 1
                threading.Thread(
                    target=self._pump, args=(client, broker, pair), daemon=True
                ).start()
                threading.Thread(
                    target=self._pump, args=(broker, client, pair), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, pair: tuple[socket.socket, socket.socket]
    ) -> None:
        upstream = source is pair[0]
        with suppress(OSError):
            while data := source.recv(65536):
                if upstream and self._count(len(data)):
                    break
                if pair not in self._frozen:
                    sink.sendall(data)
        with self._lock:
            if pair in self._open:
                self._open.remove(pair)
        _shut(pair)

    def _count(self, byte_count: int) -> bool:
        """Count bytes sent to the broker; True when the armed cut is reached."""
        with self._lock:
            self._forwarded += byte_count
            if self._cut_at is None or self._forwarded < self._cut_at:
                return False
            self._cut_at = None
            self.cuts += 1
            return True


def _shut(pair: tuple[socket.socket, socket.socket]) -> None:
    for sock in pair:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

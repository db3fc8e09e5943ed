"""Inbox consumers: delivery, acknowledgement, redelivery, failures reported once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.broker import (
    InboxConsumer,
    Names,
    OutboxItem,
    blocking_channel,
    blocking_publish_one,
)
from gateway.broker.consumer import ack_frames
from gateway.domain.errors import NotFound, Unavailable
from gateway.testing import free_port
from tests.integration.broker_fixtures import (
    FakeOutbox,
    Received,
    TcpProxy,
    amqp_url,
    broker_names,
    proxy,
    take_until_marker,
)

__all__ = ["amqp_url", "broker_names", "proxy"]  # the pytest fixtures used here

pytestmark = pytest.mark.broker


def publish(url: str, names: Names, count: int, agency: str = "police") -> list[OutboxItem]:
    outbox = FakeOutbox()
    items = [outbox.add("inbox", agency) for _ in range(count)]
    with blocking_channel(url) as channel:
        channel.confirm_delivery()
        for item in items:
            blocking_publish_one(channel, names, item)
    return items


@pytest.fixture
def consumer(amqp_url: str, broker_names: Names) -> Iterator[InboxConsumer]:
    consumer = InboxConsumer(amqp_url, broker_names, "police", prefetch=10)
    yield consumer
    consumer.stop()


def test_consumer_delivers_in_order_and_ack_removes(
    amqp_url: str, broker_names: Names, consumer: InboxConsumer
) -> None:
    items = publish(amqp_url, broker_names, 5)
    received = Received()

    consumer.start(received.on_message, received.on_closed)
    messages = received.wait_for(5)
    consumer.ack([message.delivery_tag for message in messages])
    consumer.stop()

    assert [(m.mid, m.kind, m.body) for m in messages] == [(i.mid, i.kind, i.body) for i in items]
    assert {(m.redelivered, m.delivery_count) for m in messages} == {(False, 0)}
    assert received.wait_closed() is None
    assert not consumer.is_running
    assert take_until_marker(amqp_url, broker_names, "police") == []


def test_stop_without_ack_returns_messages_redelivered(
    amqp_url: str, broker_names: Names, consumer: InboxConsumer
) -> None:
    _acked, unacked = publish(amqp_url, broker_names, 2)
    first = Received()
    consumer.start(first.on_message, first.on_closed)
    consumer.ack([first.wait_for(2)[0].delivery_tag])
    consumer.stop()

    again = InboxConsumer(amqp_url, broker_names, "police")
    second = Received()
    again.start(second.on_message, second.on_closed)
    try:
        [redelivered] = second.wait_for(1)
        again.ack([redelivered.delivery_tag])
    finally:
        again.stop()

    assert (redelivered.mid, redelivered.redelivered, redelivered.delivery_count) == (
        unacked.mid,
        True,
        1,
    )
    assert take_until_marker(amqp_url, broker_names, "police") == []


def test_an_ack_is_confirmed_once_the_broker_took_it(
    amqp_url: str, broker_names: Names, consumer: InboxConsumer
) -> None:
    publish(amqp_url, broker_names, 3)
    received = Received()
    consumer.start(received.on_message, received.on_closed)

    confirmed = consumer.ack([m.delivery_tag for m in received.wait_for(3)])

    assert confirmed.result(timeout=15) is None
    consumer.stop()
    assert take_until_marker(amqp_url, broker_names, "police") == []


def test_a_caller_that_stops_waiting_for_an_ack_does_not_end_the_consumer(
    amqp_url: str, broker_names: Names, consumer: InboxConsumer
) -> None:
    """A settlement handed over cannot be cancelled (asyncio cancels the futures
    it gives up on): it is still settled, and the consumer goes on."""
    first, second = publish(amqp_url, broker_names, 2)
    received = Received()
    consumer.start(received.on_message, received.on_closed)
    delivered = received.wait_for(1)[0]

    abandoned = consumer.ack([delivered.delivery_tag])

    assert not abandoned.cancel()
    assert abandoned.result(timeout=15) is None
    [_, following] = received.wait_for(2)
    assert consumer.ack([following.delivery_tag]).result(timeout=15) is None
    assert consumer.is_running
    consumer.stop()
    assert [m.mid for m in received.messages] == [first.mid, second.mid]
    assert take_until_marker(amqp_url, broker_names, "police") == []


def test_an_ack_after_the_connection_is_lost_fails_and_the_message_comes_back(
    amqp_url: str, broker_names: Names, proxy: TcpProxy
) -> None:
    [item] = publish(amqp_url, broker_names, 1)
    consumer = InboxConsumer(proxy.url, broker_names, "police")
    received = Received()
    consumer.start(received.on_message, received.on_closed)
    [message] = received.wait_for(1)

    proxy.cut()
    confirmed = consumer.ack([message.delivery_tag])

    with pytest.raises(Unavailable):
        confirmed.result(timeout=15)
    received.wait_closed()
    assert consumer.ack([message.delivery_tag]).exception(timeout=1) is not None
    consumer.stop()
    assert take_until_marker(amqp_url, broker_names, "police") == [item.mid]


def test_unknown_delivery_tags_are_ignored_and_consuming_goes_on(
    amqp_url: str, broker_names: Names, consumer: InboxConsumer
) -> None:
    received = Received()
    consumer.start(received.on_message, received.on_closed)
    [first] = publish(amqp_url, broker_names, 1)
    tag = received.wait_for(1)[0].delivery_tag

    consumer.ack([tag, tag + 1000])
    consumer.ack([tag])
    [second] = publish(amqp_url, broker_names, 1)

    assert [m.mid for m in received.wait_for(2)] == [first.mid, second.mid]
    assert consumer.is_running


def test_a_consumer_connects_to_the_first_node_that_answers(
    amqp_url: str, broker_names: Names
) -> None:
    [item] = publish(amqp_url, broker_names, 1)
    down = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    consumer = InboxConsumer(f"{down},{amqp_url}", broker_names, "police")
    received = Received()
    consumer.start(received.on_message, received.on_closed)
    try:
        [message] = received.wait_for(1)
        consumer.ack([message.delivery_tag]).result(timeout=15)
    finally:
        consumer.stop()
    assert message.mid == item.mid


def test_start_on_a_missing_inbox_raises_not_found(amqp_url: str, broker_names: Names) -> None:
    consumer = InboxConsumer(amqp_url, broker_names, "courts")
    received = Received()

    with pytest.raises(NotFound):
        consumer.start(received.on_message, received.on_closed)

    assert not consumer.is_running
    assert received.closed == []


def test_lost_connection_is_reported_once_through_on_closed(
    broker_names: Names, proxy: TcpProxy
) -> None:
    consumer = InboxConsumer(proxy.url, broker_names, "police")
    received = Received()
    consumer.start(received.on_message, received.on_closed)
    assert consumer.is_running

    proxy.cut()

    assert isinstance(received.wait_closed(), Unavailable)
    consumer.stop()
    assert received.closed == [received.closed[0]]
    assert not consumer.is_running


def test_exception_in_on_message_ends_consuming_and_is_reported(
    amqp_url: str, broker_names: Names, consumer: InboxConsumer
) -> None:
    received = Received()

    def explode(_message: object) -> None:
        raise RuntimeError("handler bug")

    received.then = explode
    consumer.start(received.on_message, received.on_closed)
    publish(amqp_url, broker_names, 1)

    error = received.wait_closed()

    assert isinstance(error, RuntimeError)
    assert len(take_until_marker(amqp_url, broker_names, "police")) == 1  # not lost


@pytest.mark.parametrize(
    ("acking", "frames"),
    [
        ({1, 2, 3, 4, 5}, [(5, True)]),
        ({1, 2, 4}, [(2, True), (4, False)]),
        ({3, 5}, [(3, False), (5, False)]),
        ({9}, []),
    ],
)
def test_acks_use_the_fewest_frames(acking: set[int], frames: list[tuple[int, bool]]) -> None:
    assert ack_frames({5, 4, 3, 2, 1}, frozenset(acking)) == frames

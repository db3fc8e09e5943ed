"""Dead letters: rejected or too often returned messages, peeked and replayed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gateway.broker import (
    InboxConsumer,
    InboxMessage,
    Names,
    OutboxItem,
    blocking_channel,
    blocking_publish_one,
    dead_letters,
    replay_dead_letters,
)
from tests.integration.broker_fixtures import (
    DELIVERY_LIMIT,
    FakeOutbox,
    Received,
    amqp_url,
    broker_names,
    eventually,
)

__all__ = ["amqp_url", "broker_names"]  # the pytest fixtures used here

pytestmark = pytest.mark.broker


@pytest.fixture
def item(amqp_url: str, broker_names: Names) -> OutboxItem:
    """One message waiting in the police inbox."""
    item = FakeOutbox().add("inbox", "police", kind="verification.request")
    with blocking_channel(amqp_url) as channel:
        channel.confirm_delivery()
        blocking_publish_one(channel, broker_names, item)
    return item


@pytest.fixture
def consumer(amqp_url: str, broker_names: Names) -> Iterator[InboxConsumer]:
    """The police inbox consumer, not started yet."""
    consumer = InboxConsumer(amqp_url, broker_names, "police")
    yield consumer
    consumer.stop()


def start(consumer: InboxConsumer, then: Callable[[InboxMessage], None] | None = None) -> Received:
    inbox = Received()
    inbox.then = then
    consumer.start(inbox.on_message, inbox.on_closed)
    return inbox


def dead(url: str, names: Names) -> list[InboxMessage]:
    """The police dead letters once there are any (dead-lettering is asynchronous)."""
    return eventually(lambda: dead_letters(url, names, "police", 10))


def test_rejected_message_is_dead_lettered_and_replay_brings_it_back(
    amqp_url: str,
    broker_names: Names,
    item: OutboxItem,
    consumer: InboxConsumer,
) -> None:
    inbox = start(consumer)
    consumer.reject(inbox.wait_for(1)[0].delivery_tag, requeue=False)

    [letter] = dead(amqp_url, broker_names)
    assert (letter.mid, letter.kind, letter.body) == (item.mid, item.kind, item.body)
    assert [m.mid for m in dead_letters(amqp_url, broker_names, "police", 10)] == [item.mid]

    assert replay_dead_letters(amqp_url, broker_names, "police", 10) == 1

    replayed = inbox.wait_for(2)[1]
    assert (replayed.mid, replayed.body, replayed.delivery_count) == (item.mid, item.body, 0)
    assert dead_letters(amqp_url, broker_names, "police", 10) == []
    consumer.ack([replayed.delivery_tag])


def test_message_returned_beyond_the_delivery_limit_is_dead_lettered(
    amqp_url: str,
    broker_names: Names,
    item: OutboxItem,
    consumer: InboxConsumer,
) -> None:
    inbox = start(consumer, then=lambda message: consumer.reject(message.delivery_tag, True))

    [letter] = dead(amqp_url, broker_names)

    deliveries = inbox.wait_for(DELIVERY_LIMIT + 1)
    assert letter.mid == item.mid
    assert [(m.delivery_count, m.redelivered) for m in deliveries] == [
        (0, False),
        *[(count, True) for count in range(1, DELIVERY_LIMIT + 1)],
    ]


def test_replay_moves_at_most_limit_and_keeps_the_rest(
    amqp_url: str, broker_names: Names, consumer: InboxConsumer
) -> None:
    inbox = start(consumer)
    outbox = FakeOutbox()
    items = [outbox.add("inbox", "police") for _ in range(3)]
    with blocking_channel(amqp_url) as channel:
        channel.confirm_delivery()
        for one in items:
            blocking_publish_one(channel, broker_names, one)
    for message in inbox.wait_for(3):
        consumer.reject(message.delivery_tag, requeue=False)
    eventually(lambda: len(dead_letters(amqp_url, broker_names, "police", 10)) == 3)

    assert replay_dead_letters(amqp_url, broker_names, "police", 2) == 2

    assert [m.mid for m in inbox.wait_for(5)[3:]] == [items[0].mid, items[1].mid]
    assert [m.mid for m in dead_letters(amqp_url, broker_names, "police", 10)] == [items[2].mid]

"""Topology: names from one prefix, idempotent declaration, quorum inboxes, a stream feed."""

from __future__ import annotations

import uuid

import pytest
from pika.adapters.blocking_connection import BlockingChannel

from gateway.broker import Names, blocking_channel, connection_parameters, declare, delete
from gateway.domain.errors import FailedPrecondition, NotFound
from tests.integration.broker_fixtures import (
    AGENCIES,
    DELIVERY_LIMIT,
    amqp_url,
    broker_names,
    channel,
)

__all__ = ["amqp_url", "broker_names", "channel"]  # the pytest fixtures used here

pytestmark = pytest.mark.broker


def test_every_name_derives_from_the_prefix() -> None:
    names = Names("x")

    assert [
        names.inbox_exchange,
        names.inbox("police"),
        names.dead_letter_exchange,
        names.dlq("police"),
        names.feed_exchange,
        names.feed_stream,
    ] == ["x.inbox", "x.inbox.police", "x.dlx", "x.dlq.police", "x.feed", "x.feed.stream"]
    assert Names().feed_exchange == "silian.feed"


def test_connection_parameters_default_heartbeat_unless_the_url_sets_it() -> None:
    defaults = connection_parameters("amqp://guest:guest@127.0.0.1:5672/%2F")
    chosen = connection_parameters("amqp://guest:guest@127.0.0.1:5672/%2F?heartbeat=7")

    assert (defaults.heartbeat, defaults.blocked_connection_timeout) == (30, 60)
    assert chosen.heartbeat == 7


def test_declare_again_is_harmless_and_keeps_messages(
    amqp_url: str, broker_names: Names, channel: BlockingChannel
) -> None:
    channel.basic_publish(broker_names.inbox_exchange, "police", b"kept")

    with blocking_channel(amqp_url) as again:
        declare(again, broker_names, AGENCIES, delivery_limit=DELIVERY_LIMIT)

    inbox = channel.queue_declare(broker_names.inbox("police"), passive=True)
    assert inbox.method.message_count == 1


def inbox_arguments(names: Names, queue_type: str) -> dict[str, object]:
    return {
        "x-queue-type": queue_type,
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": names.dead_letter_exchange,
        "x-dead-letter-routing-key": "police",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def test_inbox_is_a_quorum_queue_with_delivery_limit_and_dead_lettering(
    amqp_url: str, broker_names: Names, channel: BlockingChannel
) -> None:
    name = broker_names.inbox("police")

    channel.queue_declare(name, durable=True, arguments=inbox_arguments(broker_names, "quorum"))

    with (
        pytest.raises(FailedPrecondition, match="inequivalent arg 'x-queue-type'"),
        blocking_channel(amqp_url) as other,
    ):
        other.queue_declare(name, durable=True, arguments=inbox_arguments(broker_names, "classic"))


def test_dead_letter_queue_is_a_quorum_queue(amqp_url: str, broker_names: Names) -> None:
    with (
        pytest.raises(FailedPrecondition, match="inequivalent arg 'x-queue-type'"),
        blocking_channel(amqp_url) as other,
    ):
        other.queue_declare(
            broker_names.dlq("police"), durable=True, arguments={"x-queue-type": "classic"}
        )


def test_feed_stream_is_a_stream_bound_to_the_feed_exchange(
    broker_names: Names, channel: BlockingChannel
) -> None:
    channel.confirm_delivery()
    channel.basic_publish(broker_names.feed_exchange, "alert.610302.gateway", b"a", mandatory=True)
    channel.basic_qos(prefetch_count=10)

    method, _properties, body = next(
        channel.consume(
            broker_names.feed_stream, arguments={"x-stream-offset": "first"}, inactivity_timeout=10
        )
    )

    assert method is not None and body == b"a"
    channel.cancel()


def test_delete_removes_every_queue_and_exchange(amqp_url: str) -> None:
    names = Names(f"test-{uuid.uuid4().hex[:8]}")
    with blocking_channel(amqp_url) as fresh:
        declare(fresh, names, ["police"])
        delete(fresh, names, ["police"])

    for queue in (names.inbox("police"), names.dlq("police"), names.feed_stream):
        with pytest.raises(NotFound), blocking_channel(amqp_url) as probe:
            probe.queue_declare(queue, passive=True)
    for exchange in (names.inbox_exchange, names.dead_letter_exchange, names.feed_exchange):
        with pytest.raises(NotFound), blocking_channel(amqp_url) as probe:
            probe.exchange_declare(exchange, passive=True)

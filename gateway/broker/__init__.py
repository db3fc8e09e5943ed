"""RabbitMQ: topology, the outbox relay and inbox consumers (DESIGN §3 steps 4–5)."""

from __future__ import annotations

from gateway.broker.consumer import (
    InboxConsumer,
    InboxMessage,
    dead_letters,
    replay_dead_letters,
)
from gateway.broker.relay import (
    OutboxItem,
    OutboxRelay,
    OutboxSource,
    blocking_publish_one,
)
from gateway.broker.topology import (
    Names,
    blocking_channel,
    broker_error,
    broker_urls,
    connect,
    connection_parameters,
    declare,
    delete,
    node_parameters,
)

__all__ = [
    "InboxConsumer",
    "InboxMessage",
    "Names",
    "OutboxItem",
    "OutboxRelay",
    "OutboxSource",
    "blocking_channel",
    "blocking_publish_one",
    "broker_error",
    "broker_urls",
    "connect",
    "connection_parameters",
    "dead_letters",
    "declare",
    "delete",
    "node_parameters",
    "replay_dead_letters",
]

"""RabbitMQ topology (DESIGN §3 step 4, §8): names, declaration, connection settings.

Every exchange and queue name derives from one prefix, so a test run or a second
gateway never touches another's queues. The broker may be one node or a cluster:
``amqp_url`` then lists several nodes (``broker_urls``), every connection goes
to the first that answers, and the quorum queues keep a replica on each node.

- ``<prefix>.inbox`` (direct) routes to one durable **quorum** queue per agency,
  ``<prefix>.inbox.<agency>``, with an explicit delivery limit; messages that
  exceed it, or are rejected without requeue, are dead-lettered at-least-once
  through ``<prefix>.dlx`` (direct) into ``<prefix>.dlq.<agency>``.
- ``<prefix>.feed`` (topic, routing key ``<kind>.<unit>.<sender>``) feeds the
  bureau's subscribers and the replayable stream queue ``<prefix>.feed.stream``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from gateway.domain.errors import FailedPrecondition, GatewayError, NotFound, Unavailable

HEARTBEAT_SECONDS = 30
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Names:
    """Exchange and queue names under one prefix (default ``silian``)."""

    prefix: str = "silian"

    @property
    def inbox_exchange(self) -> str:
        return f"{self.prefix}.inbox"

    def inbox(self, agency: str) -> str:
        return f"{self.prefix}.inbox.{agency}"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    def dlq(self, agency: str) -> str:
        return f"{self.prefix}.dlq.{agency}"

    @property
    def feed_exchange(self) -> str:
        return f"{self.prefix}.feed"

    @property
    def feed_stream(self) -> str:
        return f"{self.prefix}.feed.stream"


def declare(
    channel: BlockingChannel,
    names: Names,
    agencies: Iterable[str],
    *,
    delivery_limit: int = 5,
) -> None:
    """Declare the whole topology for ``agencies``; idempotent.

    Re-declaring with a different ``delivery_limit`` than an existing queue has
    fails with PRECONDITION_FAILED (RabbitMQ refuses inequivalent arguments).
    """
    channel.exchange_declare(names.inbox_exchange, exchange_type="direct", durable=True)
    channel.exchange_declare(names.dead_letter_exchange, exchange_type="direct", durable=True)
    channel.exchange_declare(names.feed_exchange, exchange_type="topic", durable=True)
    for agency in agencies:
        _declare_inbox(channel, names, agency, delivery_limit)
    channel.queue_declare(names.feed_stream, durable=True, arguments={"x-queue-type": "stream"})
    channel.queue_bind(names.feed_stream, names.feed_exchange, routing_key="#")


def _declare_inbox(
    channel: BlockingChannel, names: Names, agency: str, delivery_limit: int
) -> None:
    """One agency's inbox and its dead-letter queue, both quorum queues."""
    channel.queue_declare(names.dlq(agency), durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(names.dlq(agency), names.dead_letter_exchange, routing_key=agency)
    channel.queue_declare(
        names.inbox(agency),
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": names.dead_letter_exchange,
            "x-dead-letter-routing-key": agency,
            # at-least-once dead-lettering needs reject-publish overflow (DESIGN §8)
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    channel.queue_bind(names.inbox(agency), names.inbox_exchange, routing_key=agency)


def delete(channel: BlockingChannel, names: Names, agencies: Iterable[str]) -> None:
    """Delete every queue and exchange ``declare`` made, messages included."""
    for agency in agencies:
        channel.queue_delete(names.inbox(agency))
        channel.queue_delete(names.dlq(agency))
    channel.queue_delete(names.feed_stream)
    for exchange in (names.inbox_exchange, names.dead_letter_exchange, names.feed_exchange):
        channel.exchange_delete(exchange)


def broker_urls(setting: str) -> list[str]:
    """The AMQP URLs of ``setting``: one URL, or several (the nodes of a
    cluster) separated by commas or spaces, in the order they are tried."""
    urls = [url for url in re.split(r"[,\s]+", setting) if url]
    if not urls:
        raise ValueError("no AMQP URL given (amqp_url is empty)")
    return urls


def node_parameters(setting: str) -> list[pika.URLParameters]:
    """Connection parameters for each node of ``setting`` (see ``broker_urls``)."""
    return [connection_parameters(url) for url in broker_urls(setting)]


def connect(setting: str) -> pika.BlockingConnection:
    """A blocking connection to the first node of ``setting`` that accepts one.

    pika tries the nodes in order; it raises ``AMQPConnectionError`` when none does.
    """
    return pika.BlockingConnection(node_parameters(setting))


def connection_parameters(url: str) -> pika.URLParameters:
    """Parameters for ``url`` (``amqp://user:pass@host:port/vhost``).

    Heartbeat and blocked-connection timeout get defaults unless the URL sets
    them: a dead peer or a broker stuck in a resource alarm then surfaces as a
    closed connection instead of a silent hang.
    """
    parameters = pika.URLParameters(url)
    query = parse_qs(urlsplit(url).query)
    if "heartbeat" not in query:
        parameters.heartbeat = HEARTBEAT_SECONDS
    if "blocked_connection_timeout" not in query:
        parameters.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_SECONDS
    return parameters


def broker_error(error: BaseException) -> GatewayError:
    """The one translation of a broker failure into the gateway's errors.

    A queue or exchange that does not exist is ``NotFound``; one that exists
    with other arguments is ``FailedPrecondition``; anything else (refused or
    lost connection, closed channel) is ``Unavailable``.
    """
    if isinstance(error, pika.exceptions.ChannelClosedByBroker):
        if error.reply_code == 404:
            return NotFound(reason="BROKER_NOT_FOUND", message=f"RabbitMQ: {error.reply_text}")
        if error.reply_code == 406:
            return FailedPrecondition(
                reason="BROKER_PRECONDITION_FAILED", message=f"RabbitMQ: {error.reply_text}"
            )
    return Unavailable(reason="BROKER_UNAVAILABLE", message=f"RabbitMQ: {error!r}")


@contextmanager
def blocking_channel(url: str) -> Iterator[BlockingChannel]:
    """A channel on a fresh blocking connection (to the first node of ``url``
    that answers, see ``broker_urls``), closed on exit.

    pika errors raised while opening or using it leave as ``broker_error``.
    """
    try:
        connection = connect(url)
    except pika.exceptions.AMQPError as error:
        raise broker_error(error) from error
    try:
        yield connection.channel()
    except pika.exceptions.AMQPError as error:
        raise broker_error(error) from error
    finally:
        if connection.is_open:
            connection.close()


def dead_letter_depths(url: str, names: Names, agencies: Iterable[str]) -> dict[str, int]:
    """Messages in each agency's dead-letter queue (an agency without one is left out)."""
    depths: dict[str, int] = {}
    with blocking_channel(url) as channel:
        for agency in agencies:
            try:
                declared = channel.queue_declare(names.dlq(agency), passive=True)
                depths[agency] = declared.method.message_count
            except pika.exceptions.ChannelClosedByBroker:
                channel = channel.connection.channel()
    return depths

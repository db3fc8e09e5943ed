"""The bureau's feed: any AMQP client can bind by unit or kind, replay the
stream, and verify each message with the gateway's public key."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import kombu
import pika
import pytest
from click.testing import CliRunner

from gateway import bootstrap
from gateway.broker.feed import pattern, verify
from gateway.broker.topology import Names
from gateway.cli import main
from gateway.client import AgencyClient
from gateway.domain import kinds
from gateway.domain.routing import SIGNATURE_HEADER
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import verify_gateway
from gateway.testing import enrolment, verification_hit
from tests.e2e.conftest import Running
from tests.helpers import enrolled

Clients = Callable[[str], AgencyClient]


def _bound_queue(
    channel: pika.adapters.blocking_connection.BlockingChannel, names: Names, binding: str
) -> str:
    queue = f"{names.prefix}.test-feed-{uuid.uuid4().hex[:6]}"
    channel.queue_declare(queue, exclusive=True, auto_delete=True)
    channel.queue_bind(queue, names.feed_exchange, routing_key=binding)
    return queue


def _next(
    channel: pika.adapters.blocking_connection.BlockingChannel,
    queue: str,
    mid: str,
    timeout: float = 15,
) -> tuple[pika.spec.Basic.Deliver, pika.BasicProperties, bytes]:
    for method, properties, body in channel.consume(queue, inactivity_timeout=timeout):
        assert method is not None, f"{mid} did not arrive on {queue}"
        channel.basic_ack(method.delivery_tag)
        if properties.message_id == mid:
            channel.cancel()
            return method, properties, body
    raise AssertionError("unreachable")


def test_a_unit_binding_gets_that_units_messages_signed(running: Running, client: Clients) -> None:
    names = Names(running.settings.broker_prefix)
    public = bootstrap.gateway_signer(running.settings).public
    connection = pika.BlockingConnection(pika.URLParameters(running.settings.amqp_url))
    channel = connection.channel()
    queue = _bound_queue(channel, names, pattern(None, "610303"))
    other = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment(unit="610302"))
    mine = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment(unit="610303"))
    method, properties, body = _next(channel, queue, mine.mid)
    assert method.routing_key == "roster.change.610303.judicial"
    assert properties.type == kinds.ROSTER_CHANGE
    assert properties.content_type == "application/x-protobuf" and properties.timestamp
    delivery = envelope_pb2.Delivery.FromString(body)
    assert verify(delivery, public)
    assert verify_gateway(properties.headers[SIGNATURE_HEADER], public)["mid"] == mine.mid
    assert other.mid != mine.mid
    connection.close()


def test_kombu_consumer_binds_by_kind(running: Running, client: Clients) -> None:
    names = Names(running.settings.broker_prefix)
    exchange = kombu.Exchange(names.feed_exchange, type="topic", durable=True, passive=True)
    queue = kombu.Queue(
        f"{names.prefix}.kombu-{uuid.uuid4().hex[:6]}",
        exchange,
        routing_key=pattern(kinds.VERIFICATION_RESULT, None),
        exclusive=True,
    )
    received: list[kombu.Message] = []
    with kombu.Connection(running.settings.amqp_url) as connection:

        def on_message(message: kombu.Message) -> None:  # raw: the body is protobuf
            received.append(message)
            message.ack()

        with connection.Consumer(queue, on_message=on_message):
            receipt = client("police").submit(
                kinds.VERIFICATION_RESULT, verification_hit(enrolled(client("judicial")))
            )
            while not any(m.properties.get("message_id") == receipt.mid for m in received):
                connection.drain_events(timeout=15)
    mine = next(m for m in received if m.properties.get("message_id") == receipt.mid)
    assert envelope_pb2.Delivery.FromString(mine.body).kind == kinds.VERIFICATION_RESULT


def _cli(running: Running, *args: str) -> str:
    env = {
        "SILIAN_BROKER_PREFIX": running.settings.broker_prefix,
        "SILIAN_AMQP_URL": running.settings.amqp_url,
        "SILIAN_DATABASE_URL": running.settings.database_url,
    }
    result = CliRunner().invoke(
        main, ["--data-dir", str(running.settings.data_dir), *args], env=env
    )
    return f"{result.exit_code}\n{result.output}"


def test_feed_tail_replays_the_stream_with_filters(running: Running, client: Clients) -> None:
    receipt = client("judicial").submit(kinds.ROSTER_CHANGE, enrolment(unit="610327"))
    output = _cli(
        running,
        "feed",
        "tail",
        "--from",
        "first",
        "--unit",
        "610327",
        "--kind",
        "roster.change",
        "--max",
        "1",
        "--idle",
        "15",
    )
    assert output.startswith("0\n"), output
    line = next(line for line in output.splitlines() if receipt.mid in line)
    assert "roster.change" in line and "610327" in line and "✓" in line


@pytest.mark.parametrize(
    ("option", "value", "valid"),
    [("--unit", "999999", "610302"), ("--kind", "roster.shuffle", "roster.change")],
)
def test_feed_tail_rejects_unknown_filters_listing_valid_ones(
    running: Running, option: str, value: str, valid: str
) -> None:
    output = _cli(running, "feed", "tail", option, value)
    assert output.startswith("2\n") and f"unknown {option[2:]} {value!r}" in output
    assert valid in output

"""``silian feed grant``: a bureau system's broker user reads the feed and
nothing else — against the real RabbitMQ (management API or rabbitmqctl,
whichever this machine has)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest
from click.testing import CliRunner

from gateway.broker import Names, blocking_channel
from gateway.cli import main
from tests.integration.broker_fixtures import amqp_url, broker_names, eventually

__all__ = ["amqp_url", "broker_names"]  # the pytest fixtures used here

pytestmark = pytest.mark.broker

REFUSED = 403  # AMQP access-refused


def _silian(amqp_url: str, names: Names, data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run ``silian``; its exit code, stdout and stderr (which holds the log lines)."""
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(data_dir), *args],
        env={"SILIAN_AMQP_URL": amqp_url, "SILIAN_BROKER_PREFIX": names.prefix},
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def reader(amqp_url: str, broker_names: Names, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A feed reader of this test's own: (name, AMQP URL); removed afterwards."""
    name = f"test-reader-{uuid.uuid4().hex[:8]}"
    code, out, err = _silian(amqp_url, broker_names, tmp_path, "feed", "grant", name)
    assert code == 0, err
    url = out.strip().splitlines()[-1]
    try:
        yield name, url
    finally:
        _silian(amqp_url, broker_names, tmp_path, "feed", "revoke", name)


def _reply_code(url: str, action: str, names: Names) -> int:
    """The AMQP reply code the broker closes the reader's channel with, doing ``action``."""
    with blocking_channel(url) as channel:
        try:
            if action == "bind the inbox exchange":
                queue = channel.queue_declare("", exclusive=True).method.queue
                channel.queue_bind(queue, names.inbox_exchange, routing_key="police")
            elif action == "read an inbox":
                channel.basic_get(names.inbox("police"))
            else:
                channel.confirm_delivery()
                exchange = {
                    "publish to the inbox exchange": names.inbox_exchange,
                    "publish to the feed": names.feed_exchange,
                    "publish to a queue": "",
                }[action]
                key = names.inbox("police") if exchange == "" else "police"
                channel.basic_publish(exchange, key, b"forged")
        except pika.exceptions.ChannelClosedByBroker as closed:
            return int(closed.reply_code)
    return 200


def test_a_feed_reader_reads_the_feed_and_its_stream(
    amqp_url: str, broker_names: Names, reader: tuple[str, str]
) -> None:
    _, url = reader
    body = uuid.uuid4().bytes
    with blocking_channel(url) as channel:
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, broker_names.feed_exchange, routing_key="roster.change.#")
        with blocking_channel(amqp_url) as gateway:  # the gateway's own user publishes
            gateway.basic_publish(broker_names.feed_exchange, "roster.change.610302.judicial", body)
        assert eventually(lambda: channel.basic_get(queue, auto_ack=True)[2]) == body
        channel.basic_qos(prefetch_count=10)
        for method, _, streamed in channel.consume(
            broker_names.feed_stream, arguments={"x-stream-offset": "first"}, inactivity_timeout=5
        ):
            assert method is not None, "nothing came from the feed stream"
            channel.basic_ack(method.delivery_tag)
            if streamed == body:
                break
        channel.cancel()


@pytest.mark.parametrize(
    "action",
    [
        "bind the inbox exchange",
        "read an inbox",
        "publish to the inbox exchange",
        "publish to the feed",
        "publish to a queue",
    ],
)
def test_a_feed_reader_may_do_nothing_else(
    broker_names: Names, reader: tuple[str, str], action: str
) -> None:
    _, url = reader
    assert _reply_code(url, action, broker_names) == REFUSED


def test_a_revoked_reader_can_no_longer_connect(
    amqp_url: str, broker_names: Names, tmp_path: Path
) -> None:
    name = f"test-reader-{uuid.uuid4().hex[:8]}"
    code, out, err = _silian(amqp_url, broker_names, tmp_path, "feed", "grant", name)
    assert code == 0, err
    url = out.strip().splitlines()[-1]
    assert url.startswith("amqp://" + name + ":")
    code, out, err = _silian(amqp_url, broker_names, tmp_path, "feed", "revoke", name)
    assert code == 0 and f"feed reader {name} removed" in out
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.URLParameters(url)).close()
    code, _, err = _silian(amqp_url, broker_names, tmp_path, "feed", "revoke", name)
    assert code == 1 and f"RabbitMQ has no user {name!r}" in err


def test_a_reader_name_that_could_reach_the_gateways_queues_is_refused(
    amqp_url: str, broker_names: Names, tmp_path: Path
) -> None:
    code, _, err = _silian(amqp_url, broker_names, tmp_path, "feed", "grant", "Bad Name.*")
    assert code == 1 and "reader name 'Bad Name.*'" in err

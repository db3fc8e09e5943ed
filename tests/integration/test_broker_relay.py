"""The outbox relay against the real broker: only confirmed rows are marked published."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from gateway.broker import Names, OutboxRelay, blocking_publish_one
from gateway.domain.errors import Unavailable
from gateway.testing import free_port
from tests.integration.broker_fixtures import (
    WAIT_SECONDS,
    FakeOutbox,
    TcpProxy,
    amqp_url,
    broker_names,
    channel,
    eventually,
    proxy,
    take,
    take_until_marker,
)

__all__ = ["amqp_url", "broker_names", "channel", "proxy"]  # the pytest fixtures used here

pytestmark = pytest.mark.broker


@pytest.fixture
def outbox() -> FakeOutbox:
    return FakeOutbox()


@pytest.fixture
def relay(amqp_url: str, broker_names: Names, outbox: FakeOutbox) -> Iterator[OutboxRelay]:
    relay = OutboxRelay(amqp_url, broker_names, outbox)
    yield relay
    relay.close()


def start(relay: OutboxRelay) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def test_relay_publishes_every_pending_item_into_its_recipients_inbox(
    amqp_url: str,
    relay: OutboxRelay,
    outbox: FakeOutbox,
    broker_names: Names,
    channel: BlockingChannel,
) -> None:
    items = [outbox.add("inbox", ("police", "ngo")[n % 2]) for n in range(120)]

    published = relay.run_once()

    assert published == 120
    assert sorted(outbox.published) == [item.id for item in items]
    assert outbox.mark_published_calls == 1
    assert outbox.pending(10) == []
    for agency in ("police", "ngo"):
        sent = [item for item in items if item.routing_key == agency]
        taken = take(channel, broker_names.inbox(agency), len(sent))
        assert [properties.message_id for _, properties, _ in taken] == [i.mid for i in sent]
        assert [body for _, _, body in taken] == [i.body for i in sent]
        assert take_until_marker(amqp_url, broker_names, agency) == []


def test_published_message_carries_the_agreed_properties(
    relay: OutboxRelay, outbox: FakeOutbox, broker_names: Names, channel: BlockingChannel
) -> None:
    item = outbox.add("inbox", "police", kind="verification.request")

    relay.run_once()

    [(_, properties, _)] = take(channel, broker_names.inbox("police"), 1)
    assert properties.message_id == item.mid
    assert properties.type == "verification.request"
    assert properties.content_type == "application/x-protobuf"
    assert properties.delivery_mode == 2
    assert properties.timestamp is not None
    assert properties.headers == item.headers


def test_relay_takes_at_most_one_batch_per_round(
    amqp_url: str, broker_names: Names, outbox: FakeOutbox
) -> None:
    for _ in range(120):
        outbox.add("inbox", "police")
    relay = OutboxRelay(amqp_url, broker_names, outbox, batch=50, window=16)
    try:
        rounds = [relay.run_once() for _ in range(4)]
    finally:
        relay.close()

    assert rounds == [50, 50, 20, 0]
    assert outbox.mark_published_calls == 3


def test_rows_confirmed_but_not_marked_are_marked_next_round_not_published_again(
    amqp_url: str,
    relay: OutboxRelay,
    outbox: FakeOutbox,
    broker_names: Names,
    channel: BlockingChannel,
) -> None:
    items = [outbox.add("inbox", "police") for _ in range(5)]
    outbox.failing_marks = 1  # the broker confirms, then the database fails

    with pytest.raises(Unavailable):
        relay.run_once()
    assert outbox.published == []
    relay.run_once()

    assert sorted(outbox.published) == [item.id for item in items]
    taken = take(channel, broker_names.inbox("police"), len(items))
    assert [properties.message_id for _, properties, _ in taken] == [i.mid for i in items]
    assert take_until_marker(amqp_url, broker_names, "police") == []  # no second copies


def test_feed_item_lands_in_the_stream_and_in_queues_bound_by_pattern(
    relay: OutboxRelay, outbox: FakeOutbox, broker_names: Names, channel: BlockingChannel
) -> None:
    subscriber = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(subscriber, broker_names.feed_exchange, routing_key="roster.change.#")
    roster = outbox.add("feed", "roster.change.610302.judicial")
    alert = outbox.add("feed", "alert.610303.gateway", kind="alert")

    assert relay.run_once() == 2

    [(method, properties, _)] = take(channel, subscriber, 1)
    assert (method.routing_key, properties.message_id) == (roster.routing_key, roster.mid)
    assert channel.queue_declare(subscriber, passive=True).method.message_count == 0
    stream = take(channel, broker_names.feed_stream, 2, arguments={"x-stream-offset": "first"})
    assert [(m.routing_key, p.message_id) for m, p, _ in stream] == [
        (roster.routing_key, roster.mid),
        (alert.routing_key, alert.mid),
    ]


def test_item_for_an_agency_without_a_queue_is_reported_unroutable_not_published(
    relay: OutboxRelay, outbox: FakeOutbox
) -> None:
    courts = outbox.add("inbox", "courts")
    police = outbox.add("inbox", "police")

    assert relay.run_once() == 1

    assert outbox.unroutable == [courts.id]
    assert outbox.published == [police.id]
    assert outbox.pending(10) == []


def _full_queue(channel: BlockingChannel, names: Names) -> str:
    """A queue bound to the inbox exchange as agency "full", which takes one
    message and nacks publishes beyond it."""
    full = channel.queue_declare(
        "", exclusive=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    ).method.queue
    channel.queue_bind(full, names.inbox_exchange, routing_key="full")
    return full


def test_nacked_item_stays_pending_and_is_published_in_a_later_round(
    relay: OutboxRelay, outbox: FakeOutbox, broker_names: Names, channel: BlockingChannel
) -> None:
    full = _full_queue(channel, broker_names)
    first, second = outbox.add("inbox", "full"), outbox.add("inbox", "full")

    assert relay.run_once() == 1
    assert outbox.published == [first.id]
    assert outbox.pending(10) == [second]

    take(channel, full, 1)
    assert eventually(relay.run_once) == 1
    assert outbox.published == [first.id, second.id]


def test_a_round_with_nacks_goes_on_over_a_new_connection_to_the_next_node(
    amqp_url: str, broker_names: Names, outbox: FakeOutbox, channel: BlockingChannel
) -> None:
    """A channel the broker nacks on may go on nacking (RabbitMQ 3.10 after a
    quorum queue's leader node died), so the relay does not stay on it."""
    full = _full_queue(channel, broker_names)
    first_node, second_node = TcpProxy(amqp_url), TcpProxy(amqp_url)
    relay = OutboxRelay(f"{first_node.url}, {second_node.url}", broker_names, outbox)
    try:
        first, second = outbox.add("inbox", "full"), outbox.add("inbox", "full")
        assert relay.run_once() == 1  # the second is nacked: the queue is full
        take(channel, full, 1)
        assert relay.run_once() == 1
        third = outbox.add("inbox", "full")
        with pytest.raises(Unavailable, match="refused all 1 messages"):
            relay.run_once()  # nacked again: nothing of the round went through
    finally:
        relay.close()
        first_node.close()
        second_node.close()

    assert (first_node.connections, second_node.connections) == (1, 1)
    assert outbox.published == [first.id, second.id]
    assert outbox.pending(10) == [third]


def test_relay_survives_a_connection_cut_mid_batch_and_publishes_the_rest(
    amqp_url: str, broker_names: Names, outbox: FakeOutbox, proxy: TcpProxy
) -> None:
    items = [outbox.add("inbox", "police") for _ in range(3000)]
    relay = OutboxRelay(proxy.url, broker_names, outbox, window=200, idle_wait=0.05)
    proxy.cut_after(300_000)  # about a third of the way into the first 500-row batch

    thread, stop = start(relay)
    try:
        assert outbox.wait_until_settled(timeout=30)
    finally:
        stop.set()
        thread.join(WAIT_SECONDS)

    assert not thread.is_alive()
    assert (proxy.cuts, proxy.connections) == (1, 2)
    assert sorted(outbox.published) == [item.id for item in items]
    received = take_until_marker(amqp_url, broker_names, "police")
    assert set(received) == {item.mid for item in items}  # duplicates allowed, losses not


def test_run_publishes_at_once_when_woken(
    amqp_url: str, broker_names: Names, outbox: FakeOutbox
) -> None:
    wake = threading.Event()
    relay = OutboxRelay(amqp_url, broker_names, outbox, idle_wait=3600, wake=wake)
    thread, stop = start(relay)
    try:
        outbox.wait_until_polled()
        outbox.add("inbox", "police")
        wake.set()

        assert outbox.wait_until_settled()
    finally:
        stop.set()
        wake.set()
        thread.join(WAIT_SECONDS)
    assert not thread.is_alive()


def test_unreachable_broker_raises_unavailable_and_marks_nothing(
    broker_names: Names, outbox: FakeOutbox
) -> None:
    closed_port = free_port()
    item = outbox.add("inbox", "police")
    relay = OutboxRelay(f"amqp://guest:guest@127.0.0.1:{closed_port}/%2F", broker_names, outbox)

    with pytest.raises(Unavailable):
        relay.run_once()

    assert outbox.published == []
    assert outbox.pending(10) == [item]


def test_relay_fails_over_to_the_next_node_when_its_node_goes(
    amqp_url: str, broker_names: Names, outbox: FakeOutbox
) -> None:
    first_node, second_node = TcpProxy(amqp_url), TcpProxy(amqp_url)
    relay = OutboxRelay(f"{first_node.url}, {second_node.url}", broker_names, outbox)
    try:
        before = outbox.add("inbox", "police")
        assert relay.run_once() == 1
        first_node.close()  # the node the relay is connected to goes away
        after = outbox.add("inbox", "police")
        with pytest.raises(Unavailable):
            relay.run_once()
        assert relay.run_once() == 1
    finally:
        relay.close()
        second_node.close()

    assert (first_node.connections, second_node.connections) == (1, 1)
    assert outbox.published == [before.id, after.id]
    assert take_until_marker(amqp_url, broker_names, "police") == [before.mid, after.mid]


def test_blocking_publish_one_returns_after_the_confirm(
    broker_names: Names, outbox: FakeOutbox, channel: BlockingChannel
) -> None:
    channel.confirm_delivery()
    item = outbox.add("inbox", "police")

    blocking_publish_one(channel, broker_names, item)

    with pytest.raises(pika.exceptions.UnroutableError):
        blocking_publish_one(channel, broker_names, outbox.add("inbox", "courts"))
    [(_, properties, _)] = take(channel, broker_names.inbox("police"), 1)
    assert properties.message_id == item.mid

"""The outbox relay (DESIGN §3 step 4): outbox rows to RabbitMQ with pipelined confirms.

A row is marked published only after the broker confirmed it. Publishing is
pipelined: up to ``window`` messages are on the wire unconfirmed, and one
``mark_published`` call settles a whole batch (DESIGN §8: ≈1,200 msg/s with one
blocking confirm each against ≈31,000 msg/s pipelined).

Delivery is at-least-once: a crash or a lost connection between the broker's
confirm and ``mark_published`` publishes a row again; that copy carries the
``REPUBLISHED_HEADER`` (the source counts the rounds that read a row), so the
gateway hands it over as redelivered; recipients deduplicate by ``mid`` (the
AMQP ``message_id``).

Among several gateway replicas one relay publishes: ``may_run`` (the relay
lease) is asked before every round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
import pika.frame
import pika.spec
import structlog
from pika.adapters.blocking_connection import BlockingChannel

from gateway.broker.topology import Names, broker_error, node_parameters
from gateway.domain.errors import GatewayError, Unavailable
from gateway.domain.outbox import FEED, INBOX, REPUBLISHED_HEADER, OutboxItem, OutboxSource

log = structlog.get_logger(__name__)

CONTENT_TYPE = "application/x-protobuf"

CONNECT_TIMEOUT_SECONDS = 30.0  # beyond pika's stack_timeout (15 s), which fails the opening first
CONFIRM_TIMEOUT_SECONDS = 30.0
CLOSE_TIMEOUT_SECONDS = 2.0
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0


@dataclass
class _Outcome:
    """What the broker said about the rows of one ``run_once``."""

    published: list[int] = field(default_factory=list)
    unroutable: list[int] = field(default_factory=list)
    nacked: list[int] = field(default_factory=list)


def _never() -> bool:
    return False


class _ConfirmLink:
    """One connection with a channel in confirm mode, driven by the calling thread.

    It runs pika's SelectConnection ioloop only until what the caller waits for
    holds (channel ready, window has room, all confirms in), so publishes are
    pipelined while the relay keeps a plain synchronous loop. Any failure of the
    connection or channel leaves the link unusable: close it and make a new one.
    """

    def __init__(self, parameters: pika.URLParameters) -> None:
        self._failure: BaseException | None = None
        self._awaited: Callable[[], bool] = _never
        self._confirming = False
        self._channel: Any = None
        self._next_tag = 1
        self._in_flight: dict[int, OutboxItem] = {}
        self._routes: dict[tuple[str, str, str], list[int]] = {}
        self._returned: set[int] = set()
        self._outcome = _Outcome()
        self._connection = pika.SelectConnection(
            parameters,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_failure,
            on_close_callback=self._on_failure,
        )
        try:
            self._await(lambda: self._confirming, CONNECT_TIMEOUT_SECONDS, "confirm-mode channel")
        except GatewayError:
            self.close()
            raise
        log.info("relay.connected", broker=f"{parameters.host}:{parameters.port}")

    def publish(
        self, batch: Sequence[tuple[str, OutboxItem]], outcome: _Outcome, window: int
    ) -> None:
        """Publish ``(exchange, item)`` pairs and wait until each is settled in ``outcome``.

        At most ``window`` stay unconfirmed (a sliding window: each confirm
        lets the next message go). Raises ``Unavailable`` when the link fails or
        confirms time out; ``outcome`` then holds what was settled before.
        """
        self._outcome = outcome
        self._routes.clear()
        self._returned.clear()
        for exchange, item in batch:
            if len(self._in_flight) >= window:
                self._await(
                    lambda: len(self._in_flight) < window, CONFIRM_TIMEOUT_SECONDS, "confirms"
                )
            self._send(exchange, item)
        self._await(lambda: not self._in_flight, CONFIRM_TIMEOUT_SECONDS, "confirms")

    def keep_alive(self) -> None:
        """Service heartbeats and notice a lost connection while the relay idles."""
        self._drive(_never, 0.0)
        self._raise_if_failed()

    def close(self) -> None:
        """Close the connection if it is open and release the ioloop.

        A connection still opening is left to pika's stack_timeout: closing it
        then trips an assertion inside pika 1.4.
        """
        connection = self._connection
        if connection.is_open:
            connection.close()
            self._drive(lambda: bool(connection.is_closed), CLOSE_TIMEOUT_SECONDS)
        connection.ioloop.close()

    def _send(self, exchange: str, item: OutboxItem) -> None:
        self._raise_if_failed()
        tag = self._next_tag
        self._next_tag += 1
        self._in_flight[tag] = item
        self._routes.setdefault((exchange, item.routing_key, item.mid), []).append(tag)
        try:
            self._channel.basic_publish(
                exchange, item.routing_key, item.body, properties=_properties(item), mandatory=True
            )
        except pika.exceptions.AMQPError as error:
            raise broker_error(error) from error

    def _await(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Drive the ioloop until ``condition`` holds; raise if the link fails or time runs out."""
        held = self._drive(lambda: self._failure is not None or condition(), timeout)
        self._raise_if_failed()
        if not held:
            raise Unavailable(
                reason="BROKER_TIMEOUT", message=f"RabbitMQ: no {what} within {timeout} s"
            )

    def _drive(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Run the ioloop until ``condition()`` holds or ``timeout`` passes; say if it holds."""
        if condition():
            return True
        ioloop = self._connection.ioloop
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            ioloop.stop()

        timer = ioloop.call_later(timeout, expire)
        self._awaited = condition
        try:
            while not (expired or condition()):
                ioloop.start()
        finally:
            self._awaited = _never
            ioloop.remove_timeout(timer)
        return condition()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise broker_error(self._failure) from self._failure

    def _wake_if_awaited(self) -> None:
        if self._awaited():
            self._connection.ioloop.stop()

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_failure)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirming)

    def _on_confirming(self, _frame: pika.frame.Method) -> None:
        self._confirming = True
        self._wake_if_awaited()

    def _on_failure(self, _source: object, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        self._wake_if_awaited()

    def _on_return(
        self,
        _channel: object,
        method: pika.spec.Basic.Return,
        properties: pika.spec.BasicProperties,
        _body: bytes,
    ) -> None:
        """A mandatory message nobody is bound for; its confirm follows."""
        key = (method.exchange, method.routing_key, properties.message_id)
        self._returned.update(self._routes.get(key, ()))

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        tag = method.delivery_tag
        tags = [t for t in self._in_flight if t <= tag] if method.multiple else [tag]
        for settled in tags:
            self._settle(settled, acked)
        self._wake_if_awaited()

    def _settle(self, tag: int, acked: bool) -> None:
        item = self._in_flight.pop(tag)
        if tag in self._returned:
            self._outcome.unroutable.append(item.id)
        elif acked:
            self._outcome.published.append(item.id)
        else:
            self._outcome.nacked.append(item.id)


class OutboxRelay:
    """Publishes pending outbox rows; use it from one thread only.

    ``run`` is the long-running loop; ``run_once`` one round of it (tests and
    benchmarks call it directly, then ``close``).
    """

    def __init__(
        self,
        url: str,
        names: Names,
        source: OutboxSource,
        *,
        window: int = 500,
        batch: int = 500,
        idle_wait: float = 0.2,
        wake: threading.Event | None = None,
        may_run: Callable[[], bool] | None = None,
    ) -> None:
        #: the broker's nodes; a failed link moves on to the next one
        self._nodes = node_parameters(url)
        self._node = 0
        self._exchanges = _exchanges(names)
        self._source = source
        self._window = window
        self._batch = batch
        self._idle_wait = idle_wait
        self._wake = wake
        self._may_run = may_run or (lambda: True)
        self._link: _ConfirmLink | None = None
        #: Rows the broker confirmed whose marking failed (the database was
        #: down, or a deadlock victim): marked before anything else is read,
        #: never published again by this process.
        self._confirmed: list[int] = []
        #: False while rounds fail (broker or database down); health reads it.
        self.healthy = False

    def run_once(self) -> int:
        """Publish up to ``batch`` pending rows; return how many were confirmed.

        Confirmed rows are marked published in one call, returned ones reported
        unroutable, nacked ones left pending for the next round, which starts
        on a new connection to the next node (``Unavailable`` when
        the broker refused every row of the round). When the broker
        fails it raises ``topology.broker_error`` (``Unavailable``; ``NotFound``
        for a missing exchange): the connection is dropped, the next call
        reconnects, and rows settled before the failure are still marked.
        When marking fails, the confirmed rows are marked at the start of the
        next round instead of being read (and published) again.
        """
        if self._confirmed:
            self._source.mark_published(self._confirmed)
            self._confirmed = []
        items = self._source.pending(self._batch)
        outcome = _Outcome()
        try:
            self._publish(items, outcome)
        except GatewayError:
            self._fail_over()
            raise
        finally:
            self._settle(outcome)
        if outcome.nacked:
            # A channel may go on refusing: RabbitMQ 3.10, with a quorum queue's
            # leader node killed, nacked every later publish on the relay's
            # channel for minutes after a new leader took over, while a new
            # connection's publishes went through. So start afresh.
            self._fail_over()
            if not outcome.published:
                raise Unavailable(
                    reason="BROKER_UNAVAILABLE",
                    message=f"RabbitMQ refused all {len(outcome.nacked)} messages of the "
                    "round (negative confirms); they stay pending",
                )
        return len(outcome.published)

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set, then close the connection.

        A round that publishes nothing waits up to ``idle_wait`` (cut short by
        ``wake``; ``stop`` is noticed within ``idle_wait`` unless ``wake`` is
        set too). While ``may_run`` says no, it publishes nothing and holds no
        connection, checking again every ``idle_wait``. A round failing with a
        ``GatewayError`` (broker, or a source reporting its database
        unavailable) is logged and retried with
        exponential backoff up to ``MAX_BACKOFF_SECONDS``; any other exception
        propagates.
        """
        failures = 0
        try:
            while not stop.is_set():
                if not self._may_run():  # another replica relays
                    self.close()
                    self.healthy = True
                    stop.wait(self._idle_wait)
                    continue
                try:
                    published = self.run_once()
                except GatewayError as error:
                    self.healthy = False
                    delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**failures)
                    failures = min(failures + 1, 16)
                    log.warning("relay.round_failed", error=str(error), retry_in=delay)
                    stop.wait(delay)
                    continue
                failures = 0
                self.healthy = True
                if published == 0:
                    self._idle(stop)
        finally:
            self.close()

    def _fail_over(self) -> None:
        """Drop the connection; the next round connects to the next node."""
        self.close()
        self._node = (self._node + 1) % len(self._nodes)

    def close(self) -> None:
        """Close the broker connection; the next ``run_once`` opens a new one."""
        if self._link is not None:
            link, self._link = self._link, None
            link.close()

    def _publish(self, items: list[OutboxItem], outcome: _Outcome) -> None:
        if not items:
            if self._link is not None:
                self._link.keep_alive()
            return
        routed = []
        for item in items:
            exchange = self._exchanges.get(item.destination)
            if exchange is None:
                log.error("relay.unknown_destination", id=item.id, destination=item.destination)
                outcome.unroutable.append(item.id)
            else:
                routed.append((exchange, item))
        if self._link is None:
            self._link = _ConfirmLink(self._nodes[self._node])
        self._link.publish(routed, outcome, self._window)

    def _settle(self, outcome: _Outcome) -> None:
        if outcome.published:
            try:
                self._source.mark_published(outcome.published)
            except GatewayError:
                self._confirmed = list(outcome.published)
                raise
        if outcome.unroutable:
            log.warning("relay.unroutable", count=len(outcome.unroutable), ids=outcome.unroutable)
            self._source.mark_unroutable(outcome.unroutable)
        if outcome.nacked:
            log.warning("relay.nacked", count=len(outcome.nacked), retry="next round")

    def _idle(self, stop: threading.Event) -> None:
        if self._wake is None:
            stop.wait(self._idle_wait)
        elif self._wake.wait(self._idle_wait):
            self._wake.clear()


def blocking_publish_one(channel: BlockingChannel, names: Names, item: OutboxItem) -> None:
    """Publish one row and block until the broker confirms it: the naive path.

    Kept as the reference the relay is measured against (one round trip per
    message). ``channel`` must be in confirm mode (``channel.confirm_delivery()``);
    pika then raises ``UnroutableError`` or ``NackError`` when the broker does
    not take the message.
    """
    channel.basic_publish(
        _exchanges(names)[item.destination],
        item.routing_key,
        item.body,
        properties=_properties(item),
        mandatory=True,
    )


def _exchanges(names: Names) -> dict[str, str]:
    """The exchange of each destination."""
    return {INBOX: names.inbox_exchange, FEED: names.feed_exchange}


def _properties(item: OutboxItem) -> pika.BasicProperties:
    headers = item.headers if item.attempt <= 1 else {**item.headers, REPUBLISHED_HEADER: 1}
    return pika.BasicProperties(
        message_id=item.mid,
        type=item.kind,
        content_type=CONTENT_TYPE,
        delivery_mode=pika.DeliveryMode.Persistent,
        timestamp=int(time.time()),
        headers=headers,
    )

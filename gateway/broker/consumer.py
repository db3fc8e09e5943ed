"""Inbox consumption for ``Exchange/Receive`` and dead-letter handling (DESIGN §3 step 5).

An ``InboxConsumer`` owns one thread and one connection (pika is not
thread-safe); other threads reach it only through ``ack``, ``reject`` and
``stop``, which hand the work to the consumer thread.

AMQP has no answer to ``basic.ack``, so a settlement is confirmed by a round trip
on the same channel right after it (``basic.qos``, which changes nothing): the
broker handles a channel's frames in order, so its answer means the broker took
the acks. ``ack`` and ``reject`` return a future that completes then, or fails
when the connection is gone (the deliveries then come back).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pika.spec
import structlog
from pika.adapters.blocking_connection import BlockingChannel

from gateway.broker.topology import Names, blocking_channel, broker_error, node_parameters
from gateway.domain.errors import Unavailable
from gateway.domain.outbox import REPUBLISHED_HEADER

log = structlog.get_logger(__name__)

DELIVERY_COUNT_HEADER = "x-delivery-count"
STOP_TIMEOUT_SECONDS = 10.0

OnMessage = Callable[["InboxMessage"], None]
OnClosed = Callable[[Exception | None], None]


@dataclass(frozen=True)
class InboxMessage:
    """One message taken from an agency's inbox (or peeked in its dead-letter queue).

    ``delivery_tag`` is valid only on the consumer that delivered it.
    ``delivery_count`` counts earlier deliveries that were not acknowledged
    (the quorum queue's ``x-delivery-count``; 0 on the first delivery).
    ``redelivered`` is also set for a copy the relay published again after a
    crash (``REPUBLISHED_HEADER``): an earlier copy may have been handed over.
    """

    delivery_tag: int
    mid: str
    kind: str
    body: bytes
    redelivered: bool
    delivery_count: int


class InboxConsumer:
    """Consumes one agency's inbox on its own thread; start it once.

    Messages stay unacknowledged until ``ack``; at most ``prefetch`` are
    outstanding. Whatever is unacknowledged when the consumer stops or its
    connection drops goes back to the queue and is delivered again with
    ``redelivered=True`` and a higher ``delivery_count``.
    """

    def __init__(self, url: str, names: Names, agency: str, *, prefetch: int = 100) -> None:
        self._queue = names.inbox(agency)
        #: every node of ``url``, tried in order
        self._parameters = node_parameters(url)
        for parameters in self._parameters:
            # named, so an operator (and a test) tells inbox connections apart
            parameters.client_properties = {"connection_name": f"{self._queue} consumer"}
        self._prefetch = prefetch
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connection: Any = None
        self._channel: Any = None
        self._start_error: Exception | None = None
        self._unacked: set[int] = set()
        #: Settlements handed to the consumer thread and not yet confirmed.
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self._ended = False

    @property
    def is_running(self) -> bool:
        """True from a successful ``start`` until ``stop`` or the connection ends."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping.is_set()

    def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        """Connect and start consuming on a new thread; return once consuming.

        ``on_message`` is called on the consumer thread for each delivery, in
        order. ``on_closed`` is called once, on the consumer thread, when
        consuming ends: with ``None`` after ``stop``, with ``Unavailable`` when
        the broker closed the connection or cancelled the consumer, or with the
        exception ``on_message`` raised. Raises ``Unavailable`` (``NotFound`` if
        the inbox does not exist) when consuming could not begin; ``on_closed``
        is then never called.
        """
        if self._thread is not None:
            raise RuntimeError("an InboxConsumer can be started only once")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(on_message, on_closed, ready), name=self._queue, daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def ack(self, delivery_tags: Sequence[int]) -> Future[None]:
        """Acknowledge deliveries; thread-safe, sent by the consumer thread.

        The future completes once the broker took the acks (see the module
        docstring) and fails with ``Unavailable`` when the connection is gone:
        the messages then come back redelivered. Tags this consumer does not
        hold unacknowledged (already settled, or from another consumer) are
        skipped: acknowledging them would close the channel.
        """
        return self._settle(functools.partial(self._ack_now, frozenset(delivery_tags)))

    def reject(self, delivery_tag: int, requeue: bool) -> Future[None]:
        """Reject one delivery; thread-safe, confirmed as ``ack`` is. Without
        ``requeue`` it is dead-lettered."""
        return self._settle(functools.partial(self._reject_now, delivery_tag, requeue))

    def stop(self) -> None:
        """Stop consuming and close the connection; idempotent.

        Waits for the consumer thread to end (unless called from it).
        Unacknowledged messages return to the queue.
        """
        thread = self._thread
        if thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        if self._connection is not None and self._connection.is_open:
            self._call(self._halt)
        if thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT_SECONDS)
            if thread.is_alive():
                log.warning("inbox.stop_timed_out", queue=self._queue)

    def _run(self, on_message: OnMessage, on_closed: OnClosed, ready: threading.Event) -> None:
        try:
            self._open(on_message)
        except pika.exceptions.AMQPError as error:
            self._start_error = broker_error(error)
            return
        except Exception as error:  # start() raises it in the caller's thread
            self._start_error = error
            return
        finally:
            ready.set()
        log.info("inbox.consuming", queue=self._queue)
        outcome = self._consume()
        self._fail_pending()
        log.info("inbox.closed", queue=self._queue, error=repr(outcome) if outcome else None)
        on_closed(outcome)

    def _open(self, on_message: OnMessage) -> None:
        self._connection = pika.BlockingConnection(self._parameters)
        try:
            self._channel = self._connection.channel()
            self._channel.basic_qos(prefetch_count=self._prefetch)
            self._channel.basic_consume(self._queue, functools.partial(self._deliver, on_message))
        except pika.exceptions.AMQPError:
            self._close_connection()
            raise

    def _consume(self) -> Exception | None:
        """Consume until stopped; return why consuming ended (``None``: stopped)."""
        try:
            self._channel.start_consuming()
        except pika.exceptions.AMQPError as error:
            return broker_error(error)
        except Exception as error:  # on_message failed: report it, not die silently
            return error
        finally:
            self._close_connection()
        if self._stopping.is_set():
            return None
        return Unavailable(reason="BROKER_UNAVAILABLE", message="RabbitMQ cancelled the consumer")

    def _close_connection(self) -> None:
        if self._connection.is_open:
            try:
                self._connection.close()
            except pika.exceptions.AMQPError as error:
                log.warning("inbox.close_failed", queue=self._queue, error=repr(error))

    def _deliver(
        self,
        on_message: OnMessage,
        _channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        self._unacked.add(method.delivery_tag)
        on_message(_inbox_message(method, properties, body))

    def _settle(self, work: Callable[[], None]) -> Future[None]:
        """Run ``work`` on the consumer thread, then a round trip that confirms it."""
        future: Future[None] = Future()
        # Handed over, it cannot be cancelled (a caller that stops waiting may
        # try): the consumer thread settles it and then completes the future.
        future.set_running_or_notify_cancel()
        with self._lock:
            if self._connection is None or self._ended:
                future.set_exception(_connection_gone())
                return future
            self._pending.add(future)
        try:
            self._connection.add_callback_threadsafe(
                functools.partial(self._settle_now, work, future)
            )
        except pika.exceptions.ConnectionWrongStateError:
            self._fail_pending()
        return future

    def _settle_now(self, work: Callable[[], None], future: Future[None]) -> None:
        with self._lock:
            if future not in self._pending:  # failed already: the consumer ended
                return
            self._pending.discard(future)
        try:
            work()
            self._channel.basic_qos(prefetch_count=self._prefetch)  # the round trip
        except pika.exceptions.AMQPError as error:
            future.set_exception(broker_error(error))
            raise  # the channel or connection is gone: consuming ends
        future.set_result(None)

    def _fail_pending(self) -> None:
        """No settlement can be confirmed any more: fail those still waiting."""
        with self._lock:
            self._ended = True
            pending, self._pending = self._pending, set()
        for future in pending:
            future.set_exception(_connection_gone())

    def _call(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the consumer thread; drop it if that thread has no connection."""
        if self._connection is None:
            log.warning("inbox.not_started", queue=self._queue, dropped=repr(work))
            return
        try:
            self._connection.add_callback_threadsafe(work)
        except pika.exceptions.ConnectionWrongStateError:
            log.warning("inbox.not_consuming", queue=self._queue, dropped=repr(work))

    def _ack_now(self, tags: frozenset[int]) -> None:
        for tag, multiple in ack_frames(self._unacked, tags):
            self._channel.basic_ack(tag, multiple=multiple)
        self._unacked -= tags

    def _reject_now(self, tag: int, requeue: bool) -> None:
        if tag in self._unacked:
            self._channel.basic_reject(tag, requeue=requeue)
            self._unacked.discard(tag)

    def _halt(self) -> None:
        if self._channel.is_open:
            self._channel.stop_consuming()


def _connection_gone() -> Unavailable:
    return Unavailable(
        reason="BROKER_UNAVAILABLE",
        message="the inbox connection to RabbitMQ is gone; the deliveries come back",
    )


def ack_frames(outstanding: Iterable[int], acking: frozenset[int]) -> list[tuple[int, bool]]:
    """The fewest ``basic.ack`` frames that acknowledge ``acking`` and nothing else.

    The oldest outstanding tags, if all are being acked, go in one ``multiple``
    ack; the rest one by one. Tags not outstanding are left out.
    """
    ordered = sorted(outstanding)
    run = 0
    while run < len(ordered) and ordered[run] in acking:
        run += 1
    frames = [(ordered[run - 1], True)] if run else []
    frames += [(tag, False) for tag in ordered[run:] if tag in acking]
    return frames


def _inbox_message(
    method: pika.spec.Basic.Deliver | pika.spec.Basic.GetOk,
    properties: pika.spec.BasicProperties,
    body: bytes,
) -> InboxMessage:
    """The ``InboxMessage`` of one AMQP delivery."""
    headers = properties.headers or {}
    return InboxMessage(
        delivery_tag=method.delivery_tag,
        mid=properties.message_id or "",
        kind=properties.type or "",
        body=body,
        redelivered=bool(method.redelivered) or bool(headers.get(REPUBLISHED_HEADER)),
        delivery_count=int(headers.get(DELIVERY_COUNT_HEADER, 0)),
    )


def dead_letters(url: str, names: Names, agency: str, limit: int) -> list[InboxMessage]:
    """Up to ``limit`` messages of the agency's dead-letter queue, oldest first, left in place.

    They are taken and put back unacknowledged, which raises their
    ``delivery_count`` in the dead-letter queue (it has no delivery limit).
    """
    with blocking_channel(url) as channel:
        peeked = []
        for _ in range(limit):
            method, properties, body = channel.basic_get(names.dlq(agency))
            if method is None:
                break
            peeked.append(_inbox_message(method, properties, body))
        if peeked:
            channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
        return peeked


def replay_dead_letters(url: str, names: Names, agency: str, limit: int) -> int:
    """Move up to ``limit`` dead letters back into the agency's inbox; return how many moved.

    Each is published to the inbox (confirmed, mandatory) before it is removed
    from the dead-letter queue, so a failure midway loses nothing; the moved
    ones are acknowledged in one frame. The message keeps its properties and
    ``x-death`` history and starts a fresh delivery count. One round trip per
    message (get, confirm): an operator's action, not a hot path.
    """
    with blocking_channel(url) as channel:
        channel.confirm_delivery()
        moved_tag: int | None = None
        moved = 0
        try:
            for _ in range(limit):
                method, properties, body = channel.basic_get(names.dlq(agency))
                if method is None:
                    break
                properties.headers = _without_delivery_count(properties.headers)
                channel.basic_publish(
                    names.inbox_exchange, agency, body, properties=properties, mandatory=True
                )
                moved_tag, moved = method.delivery_tag, moved + 1
        finally:
            if moved_tag is not None:
                channel.basic_ack(moved_tag, multiple=True)
        log.info("inbox.dead_letters_replayed", agency=agency, count=moved)
        return moved


def _without_delivery_count(headers: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (headers or {}).items() if key != DELIVERY_COUNT_HEADER}

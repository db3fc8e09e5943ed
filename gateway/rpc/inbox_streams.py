"""The inbox streams of this gateway process (``Receive`` and ``Subscribe``): the
deliveries each holds, and settling them — on the broker first, then in the
audit log, so the log never says acknowledged for a delivery still in the inbox.

A delivery id is ``<process>.<stream>.<tag>``: the process part tells a
settlement that reached another gateway process (another replica behind a
per-call load balancer, or this one before a restart) from one whose stream
ended here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog

from gateway import metrics
from gateway.broker.consumer import InboxConsumer, InboxMessage
from gateway.broker.topology import Names
from gateway.domain import events
from gateway.domain.errors import Aborted, FailedPrecondition, GatewayError
from gateway.proto.silian.v1 import envelope_pb2
from gateway.service.admission import StreamSlots
from gateway.service.exchange import ExchangeService

log = structlog.get_logger(__name__)

#: The broker's part of a delivery id: ASCII digits (``str.isdigit`` takes others
#: too, which ``int`` refuses).
_DELIVERY_TAG = re.compile(r"[0-9]{1,18}")
#: Longest the broker may take to confirm a settlement before it counts as not done.
SETTLE_TIMEOUT_SECONDS = 10.0
#: Streams that lost their broker connection, remembered to answer late settlements.
LOST_STREAMS_REMEMBERED = 4096


@dataclass
class InboxStream:
    """One open inbox stream: its consumer and the deliveries it holds unsettled."""

    id: str
    agency: str
    consumer: InboxConsumer
    #: delivery tag -> ((sender, mid), kind) of deliveries not yet settled
    held: dict[int, tuple[tuple[str, str], str]] = field(default_factory=dict)
    #: Set when consuming ended because the broker connection did.
    broker_lost: bool = False
    closed: bool = False


@dataclass(frozen=True)
class Held:
    stream: InboxStream
    tag: int
    message: tuple[str, str]  # (sender, mid)
    kind: str
    delivery_id: str


@dataclass
class Claimed:
    """The delivery ids of one settlement request, sorted by where they are."""

    held: list[Held] = field(default_factory=list)
    #: Not held by an open stream of this process (settled already, malformed,
    #: or their stream ended normally): nothing to do, they come back if unsettled.
    unknown: list[str] = field(default_factory=list)
    #: Held by a stream of another gateway process.
    elsewhere: list[str] = field(default_factory=list)
    #: Held by a stream of this process that lost its broker connection.
    lost: list[str] = field(default_factory=list)


@dataclass
class Settled:
    """What the broker took (and the audit log records) of one settlement."""

    acknowledged: list[Held] = field(default_factory=list)
    returned: list[Held] = field(default_factory=list)
    #: Not settled: the stream's broker connection failed; they come back.
    failed: list[Held] = field(default_factory=list)


class Closed:
    """Consuming ended; ``error`` says why (``None``: stopped)."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error


def _log_failure(future: Future[None]) -> None:
    if future.exception() is not None:
        log.error("delivery.record_failed", error=str(future.exception()))


class InboxStreams:
    """The inbox streams of one gateway process."""

    def __init__(
        self, service: ExchangeService, amqp_url: str, names: Names, slots: StreamSlots
    ) -> None:
        self._service = service
        self._slots = slots  # inbox streams per agency, at most
        self._amqp_url = amqp_url
        self._names = names
        #: Names this process in the delivery ids it hands out.
        self.process = uuid.uuid4().hex[:8]
        self._streams: dict[str, InboxStream] = {}
        self._lost: OrderedDict[str, str] = OrderedDict()  # stream id -> agency
        self._closing: set[asyncio.Future[None]] = set()

    async def open(
        self, agency: str, prefetch: int, into: asyncio.Queue[Any], call: grpc.aio.ServicerContext
    ) -> InboxStream:
        """Start consuming the agency's inbox into ``into``: each ``InboxMessage``,
        then ``Closed`` when consuming ends (the broker connection failed).

        The stream takes one of the agency's slots (Overloaded TOO_MANY_STREAMS
        when none is free) and gives it back when closed. It is closed when
        ``call`` ends, however it ends: a cancelled call's handler may never run
        its ``finally`` (grpc leaves an async generator suspended for the garbage
        collector), and its consumer would hold its prefetch of deliveries, and
        the slot, for nobody."""
        self._slots.take(agency)
        try:
            return await self._open(agency, prefetch, into, call)
        except BaseException:
            self._slots.release(agency)
            raise

    async def _open(
        self,
        agency: str,
        prefetch: int,
        into: asyncio.Queue[Any],
        call: grpc.aio.ServicerContext,
    ) -> InboxStream:
        loop = asyncio.get_running_loop()

        def post(item: object) -> None:  # from the consumer's thread
            # a consumer stopped while the server shuts down outlives its loop
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(into.put_nowait, item)

        consumer = InboxConsumer(self._amqp_url, self._names, agency, prefetch=prefetch)
        handover = self._service.handover

        def check(message: InboxMessage) -> None:
            """On the consumer's thread: pass on only the gateway's own deliveries
            for this agency; dead-letter the rest (the broker is not trusted)."""
            delivery = handover.check(agency, message.mid, message.kind, message.body)
            if delivery is None:
                consumer.reject(message.delivery_tag, requeue=False)
            else:
                post((message, delivery))

        starting = loop.run_in_executor(
            None, lambda: consumer.start(on_message=check, on_closed=lambda e: post(Closed(e)))
        )
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The client left while the broker connection was being made (it may
            # take a while when a node is down): a consumer that starts anyway
            # would hold its prefetch of deliveries for nobody, so stop it.
            def stop(started: asyncio.Future[None]) -> None:
                if not started.cancelled() and started.exception() is None:
                    loop.run_in_executor(None, consumer.stop)

            starting.add_done_callback(stop)
            raise
        stream = InboxStream(uuid.uuid4().hex[:16], agency, consumer)
        self._streams[stream.id] = stream

        def ended(_call: object) -> None:
            with contextlib.suppress(RuntimeError):  # the server's loop closed: all stopped
                loop.call_soon_threadsafe(self._close_later, stream)

        call.add_done_callback(ended)
        metrics.OPEN_STREAMS.labels(agency).inc()
        log.info("inbox_stream.opened", agency=agency, stream=stream.id, prefetch=prefetch)
        return stream

    def _close_later(self, stream: InboxStream) -> None:
        task = asyncio.ensure_future(self.close(stream))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def wait_closed(self) -> None:
        """Wait for the closes that ended calls started (they run as tasks)."""
        await asyncio.gather(*self._closing)

    async def close(self, stream: InboxStream) -> None:
        """Forget ``stream``, stop its consumer (what it holds comes back) and
        give its slot back; idempotent. If it ended because its broker
        connection did, remember that, so a late settlement is told so rather
        than ignored.

        The consumer is stopped even if the caller is cancelled while waiting
        (the call ending cancels its handler, often in the midst of closing):
        a stop cancelled before a worker thread took it would never run."""
        if stream.closed:
            return
        stream.closed = True
        metrics.OPEN_STREAMS.labels(stream.agency).dec()
        self._streams.pop(stream.id, None)
        if stream.broker_lost:
            self._lost[stream.id] = stream.agency
            while len(self._lost) > LOST_STREAMS_REMEMBERED:
                self._lost.popitem(last=False)
        stopping = asyncio.get_running_loop().run_in_executor(None, stream.consumer.stop)

        def stopped(_: object) -> None:
            self._slots.release(stream.agency)
            log.info(
                "inbox_stream.closed",
                agency=stream.agency,
                stream=stream.id,
                unacknowledged=len(stream.held),
                broker_lost=stream.broker_lost,
            )

        stopping.add_done_callback(stopped)
        await asyncio.shield(stopping)

    def hand_over(
        self, stream: InboxStream, checked: tuple[InboxMessage, envelope_pb2.Delivery]
    ) -> envelope_pb2.Delivery:
        """The checked delivery of an inbox message for the stream's agency, held
        by the stream, its hand-over recorded in the audit log — under the
        message's own mid (a minimized delivery shows the agency's own id
        instead; the hand-over check tied the two)."""
        item, delivery = checked
        delivery.delivery_id = f"{self.process}.{stream.id}.{item.delivery_tag}"
        delivery.redelivered = item.redelivered
        message = (delivery.sender, item.mid)
        stream.held[item.delivery_tag] = (message, delivery.kind)
        self._service.record(stream.agency, [message], events.DELIVERED).add_done_callback(
            _log_failure
        )
        log.debug(  # the audit log holds every hand-over; info would double it
            "delivery.sent",
            mid=item.mid,
            agency=stream.agency,
            kind=delivery.kind,
            redelivered=item.redelivered,
        )
        return delivery

    def claim(self, agency: str, ids: Sequence[str], within: InboxStream | None = None) -> Claimed:
        """Sort ``ids`` by where they are held; ``within`` limits them to one stream."""
        claimed = Claimed()
        for delivery_id in ids:
            process, _, rest = delivery_id.partition(".")
            stream_id, _, tag_text = rest.partition(".")
            tag = int(tag_text) if _DELIVERY_TAG.fullmatch(tag_text) else -1
            stream = self._streams.get(stream_id)
            if within is None and process != self.process and tag >= 0:
                claimed.elsewhere.append(delivery_id)
            elif within is None and self._lost.get(stream_id) == agency:
                claimed.lost.append(delivery_id)
            elif (
                stream is None
                or stream.agency != agency
                or (within is not None and stream is not within)
                or tag not in stream.held
            ):
                claimed.unknown.append(delivery_id)
            else:
                claimed.held.append(Held(stream, tag, *stream.held[tag], delivery_id))
        claimed.held.sort(key=lambda h: h.stream.id)
        return claimed

    async def settle(self, agency: str, acking: list[Held], returning: list[Held]) -> Settled:
        """Settle on the broker, then record in the audit log what the broker took.

        Raises what recording raises (the broker has settled them then: the
        log under-states, never over-states)."""
        waiting: list[tuple[list[Held], Future[None]]] = []
        for stream, group in itertools.groupby(acking, key=lambda h: h.stream):
            batch = list(group)
            waiting.append((batch, stream.consumer.ack([h.tag for h in batch])))
        for held in returning:
            waiting.append(([held], held.stream.consumer.reject(held.tag, requeue=True)))
        settled = Settled()
        returning_ids = {id(h) for h in returning}
        for batch, future in waiting:
            try:
                await asyncio.wait_for(asyncio.wrap_future(future), SETTLE_TIMEOUT_SECONDS)
            except (GatewayError, TimeoutError):
                settled.failed.extend(batch)
                continue
            for held in batch:
                (settled.returned if id(held) in returning_ids else settled.acknowledged).append(
                    held
                )
        for held in [*acking, *returning]:
            held.stream.held.pop(held.tag, None)
        recording = [
            asyncio.wrap_future(self._service.record(agency, [h.message for h in done], event))
            for done, event in (
                (settled.acknowledged, events.ACKNOWLEDGED),
                (settled.returned, events.RETURNED),
            )
            if done
        ]
        # Recorded even if the caller stops waiting (its stream ended meanwhile):
        # the broker took these settlements, and the log is to say so.
        await asyncio.shield(asyncio.gather(*recording))
        # One line per call (each settlement is an audit entry already); the
        # deliveries given back are named, as they are worth an operator's look.
        log.info(
            "deliveries.settled",
            agency=agency,
            acknowledged=len(settled.acknowledged),
            returned=[held.message[1] for held in settled.returned],
            not_settled=len(settled.failed),
        )
        return settled


def held_elsewhere(ids: Sequence[str]) -> FailedPrecondition:
    """The refusal of a settlement that reached a process not holding the stream."""
    return FailedPrecondition(
        "DELIVERY_HELD_ELSEWHERE",
        f"{len(ids)} delivery id(s) belong to a stream of another gateway process "
        f"(e.g. {ids[0]}); nothing was settled, and they come back once that stream "
        "ends. Settle on the process holding the stream: use Subscribe, which "
        "carries acknowledgements on the stream itself.",
    )


def not_settled(count: int, settled: int) -> Aborted:
    """The answer when the broker did not take some settlements."""
    return Aborted(
        "INBOX_CONNECTION_LOST",
        f"{count} deliveries were not settled: the stream holding them lost its "
        "connection to RabbitMQ (or it did not confirm in time); they stay in the "
        f"inbox and come back redelivered ({settled} others were settled). "
        "Deduplicate by mid.",
    )

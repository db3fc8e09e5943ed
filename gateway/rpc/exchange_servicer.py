"""silian.v1.Exchange over grpc.aio: translate and delegate.

The boundary (``gateway.rpc.boundary``) has decoded the request, authenticated
the caller (``caller()``) and maps whatever is raised here to a status.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import structlog

from gateway import metrics
from gateway.broker.consumer import InboxConsumer, InboxMessage
from gateway.broker.topology import Names
from gateway.domain import events
from gateway.domain.errors import FieldViolation, GatewayError, InvalidMessage, Unavailable
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.rpc.boundary import BAD_REQUEST, Boundary, Undecodable, caller
from gateway.rpc.errors import to_rejection
from gateway.service.admission import Admission, StreamSlots
from gateway.service.exchange import ExchangeService

log = structlog.get_logger(__name__)
T = TypeVar("T")

DEFAULT_IN_FLIGHT = 100
#: Messages of one SubmitStream in progress at once.
STREAM_WINDOW = 256
MAX_IN_FLIGHT = 1000
#: Delivery ids one Acknowledge may settle (held ones number at most
#: MAX_IN_FLIGHT per stream).
MAX_SETTLED_PER_CALL = 10_000


@dataclass
class _ReceiveSession:
    """One open Receive stream: its consumer and the deliveries it holds."""

    id: str
    agency: str
    consumer: InboxConsumer
    #: delivery tag -> ((sender, mid), kind) of deliveries not yet settled
    held: dict[int, tuple[tuple[str, str], str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Held:
    session: _ReceiveSession
    tag: int
    message: tuple[str, str]  # (sender, mid)
    kind: str


def _log_failure(future: Future[None]) -> None:
    if future.exception() is not None:
        log.error("delivery.record_failed", error=str(future.exception()))


_INBOX_CLOSED = "the inbox connection closed; reconnect"
#: The broker's part of a delivery id: ASCII digits (``int`` takes others too, and
#: refuses very long ones with an error that is no answer to a caller).
_DELIVERY_TAG = re.compile(r"[0-9]{1,18}")


class _Closed:
    def __init__(self, error: Exception | None) -> None:
        self.error = error


class ExchangeServicer(exchange_pb2_grpc.ExchangeServicer):
    def __init__(
        self,
        service: ExchangeService,
        executor: Executor,
        amqp_url: str,
        names: Names,
        admission: Admission,
        streams: StreamSlots,
    ) -> None:
        self._service = service
        self._admission = admission
        self._streams = streams
        self._executor = executor  # checking and committing messages
        self._amqp_url = amqp_url
        self._names = names
        self._sessions: dict[str, _ReceiveSession] = {}

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def Submit(
        self, request: exchange_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.SubmitResponse:
        receipt = await self._accept(request.envelope, caller())
        return exchange_pb2.SubmitResponse(receipt=receipt)

    async def _accept(self, envelope: envelope_pb2.Envelope, agency: str) -> envelope_pb2.Receipt:
        """Prepare on a worker thread, then wait for the group commit without
        holding a thread, so many messages share one transaction."""
        with self._admission.admit(agency):
            prepared = await self._run(self._service.prepare, envelope, agency)
            try:
                stored = await asyncio.wrap_future(self._service.commit(prepared))
            except GatewayError as err:
                raise await self._run(self._service.refused, agency, envelope, err) from None
        if stored.audit_index == prepared.audit_index:
            return self._service.finish(prepared, stored, agency)  # no I/O on this path
        return await self._run(self._service.finish, prepared, stored, agency)

    async def SubmitStream(
        self,
        request_iterator: AsyncIterator[exchange_pb2.SubmitStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[exchange_pb2.SubmitStreamResponse]:
        """Up to STREAM_WINDOW messages of one stream are in progress at once
        (they join the same group commits); results come back in order."""
        agency = caller()
        window = asyncio.Semaphore(STREAM_WINDOW)
        results: asyncio.Queue[asyncio.Task[exchange_pb2.SubmitStreamResponse] | None] = (
            asyncio.Queue()
        )

        async def feed() -> None:
            try:
                async for request in request_iterator:
                    await window.acquire()
                    await results.put(asyncio.ensure_future(self._submit_one(request, agency)))
            finally:
                await results.put(None)

        feeder = asyncio.ensure_future(feed())
        try:
            while (task := await results.get()) is not None:
                response = await task
                window.release()
                yield response
            await feeder
        finally:
            feeder.cancel()

    async def _submit_one(
        self, request: exchange_pb2.SubmitStreamRequest | Undecodable, agency: str
    ) -> exchange_pb2.SubmitStreamResponse:
        if isinstance(request, Undecodable):
            return exchange_pb2.SubmitStreamResponse(rejection=to_rejection(BAD_REQUEST))
        envelope = request.envelope
        try:
            receipt = await self._accept(envelope, agency)
        except GatewayError as err:
            return exchange_pb2.SubmitStreamResponse(mid=envelope.mid, rejection=to_rejection(err))
        return exchange_pb2.SubmitStreamResponse(mid=envelope.mid, receipt=receipt)

    async def Receive(
        self,
        request: exchange_pb2.ReceiveRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[exchange_pb2.ReceiveResponse]:
        """The agency's inbox, on at most ``max_receive_streams`` streams at once."""
        with self._streams.hold(caller()):
            inbox = self._inbox(request, context)
            try:
                async for response in inbox:
                    yield response
            finally:
                await inbox.aclose()

    async def _inbox(
        self,
        request: exchange_pb2.ReceiveRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncGenerator[exchange_pb2.ReceiveResponse, None]:
        agency = caller()
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[InboxMessage, envelope_pb2.Delivery] | _Closed] = asyncio.Queue()
        prefetch = min(request.max_in_flight or DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT)
        consumer = InboxConsumer(self._amqp_url, self._names, agency, prefetch=prefetch)

        def check(message: InboxMessage) -> None:
            """On the consumer's thread: hand over only the gateway's own deliveries
            for this agency; dead-letter the rest (the broker is not trusted)."""
            handover = self._service.handover
            delivery = handover.check(agency, message.mid, message.kind, message.body)
            if delivery is None:
                consumer.reject(message.delivery_tag, requeue=False)
            else:
                _post(loop, inbox, (message, delivery))

        await loop.run_in_executor(
            None,
            lambda: consumer.start(
                on_message=check, on_closed=lambda e: _post(loop, inbox, _Closed(e))
            ),
        )
        session = _ReceiveSession(uuid.uuid4().hex[:16], agency, consumer)
        self._sessions[session.id] = session
        log.info("receive.opened", agency=agency, session=session.id, prefetch=prefetch)
        streams = metrics.OPEN_STREAMS.labels(agency)
        streams.inc()
        try:
            while True:
                taken = await inbox.get()
                if isinstance(taken, _Closed):
                    raise Unavailable("BROKER_UNAVAILABLE", _INBOX_CLOSED)
                item, delivery = taken
                delivery.delivery_id = f"{session.id}.{item.delivery_tag}"
                delivery.redelivered = item.redelivered
                # recorded under the message's own mid (a minimized delivery shows
                # the agency's delivery id instead; the hand-over check tied them)
                message = (delivery.sender, item.mid)
                session.held[item.delivery_tag] = (message, delivery.kind)
                self._service.record(agency, [message], events.DELIVERED).add_done_callback(
                    _log_failure
                )
                log.debug(  # the audit log holds every hand-over; info would double it
                    "delivery.sent",
                    mid=item.mid,
                    agency=agency,
                    kind=delivery.kind,
                    redelivered=item.redelivered,
                )
                yield exchange_pb2.ReceiveResponse(delivery=delivery)
        finally:
            streams.dec()
            self._sessions.pop(session.id, None)
            await loop.run_in_executor(None, consumer.stop)
            log.info(
                "receive.closed",
                agency=agency,
                session=session.id,
                unacknowledged=len(session.held),
            )

    async def Acknowledge(
        self, request: exchange_pb2.AcknowledgeRequest, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.AcknowledgeResponse:
        """Records the acknowledgements (and give-backs) in the audit log, then
        settles them on the broker: acknowledged ones leave the inbox, rejected
        ones are delivered again (and dead-lettered past the delivery limit)."""
        agency = caller()
        if not request.delivery_ids and not request.rejected_delivery_ids:
            raise InvalidMessage(
                "MISSING_FIELD",
                "no delivery ids to acknowledge or reject",
                [FieldViolation("delivery_ids", "is empty")],
            )
        if len(request.delivery_ids) + len(request.rejected_delivery_ids) > MAX_SETTLED_PER_CALL:
            raise InvalidMessage(
                "TOO_MANY_IDS",
                f"at most {MAX_SETTLED_PER_CALL} delivery ids may be settled per call",
                [FieldViolation("delivery_ids", f"more than {MAX_SETTLED_PER_CALL} ids")],
            )
        acked, unknown = self._held(agency, request.delivery_ids)
        rejected, unknown_rejected = self._held(agency, request.rejected_delivery_ids)
        for settling, event in ((acked, events.ACKNOWLEDGED), (rejected, events.RETURNED)):
            if settling:
                await asyncio.wrap_future(
                    self._service.record(agency, [h.message for h in settling], event)
                )
        for held_session, group in itertools.groupby(acked, key=lambda h: h.session):
            held_session.consumer.ack([h.tag for h in group])
        for held in rejected:
            held.session.consumer.reject(held.tag, requeue=True)
        for held in [*acked, *rejected]:
            held.session.held.pop(held.tag, None)
        # One line per call (each settlement is an audit entry already); the
        # deliveries given back are named, as they are worth an operator's look.
        log.info(
            "deliveries.settled",
            agency=agency,
            acknowledged=len(acked),
            returned=[held.message[1] for held in rejected],
            unknown=len(unknown) + len(unknown_rejected),
        )
        return exchange_pb2.AcknowledgeResponse(
            acknowledged=len(acked) + len(rejected),
            unknown_delivery_ids=[*unknown, *unknown_rejected],
        )

    def _held(self, agency: str, ids: Sequence[str]) -> tuple[list[_Held], list[str]]:
        """The deliveries of ``ids`` that an open Receive stream of ``agency``
        holds unsettled, grouped by stream, and the ids that are not."""
        held: list[_Held] = []
        unknown: list[str] = []
        for delivery_id in ids:
            session_id, _, tag_text = delivery_id.partition(".")
            session = self._sessions.get(session_id)
            tag = int(tag_text) if _DELIVERY_TAG.fullmatch(tag_text) else -1
            if session is None or session.agency != agency or tag not in session.held:
                unknown.append(delivery_id)
            else:
                held.append(_Held(session, tag, *session.held[tag]))
        held.sort(key=lambda h: h.session.id)
        return held, unknown

    async def GetStatus(
        self, request: exchange_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.GetStatusResponse:
        return await self._run(self._service.status, caller(), request.mid)


def _post(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: object) -> None:
    """Hand ``item`` from a broker thread to the event loop's queue."""
    loop.call_soon_threadsafe(queue.put_nowait, item)


def add_to_server(servicer: ExchangeServicer, server: grpc.aio.Server, boundary: Boundary) -> None:
    boundary.register(exchange_pb2_grpc.add_ExchangeServicer_to_server, servicer, server)

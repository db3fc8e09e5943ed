"""silian.v1.Exchange over grpc.aio: translate and delegate.

The boundary (``gateway.rpc.boundary``) has decoded the request, authenticated
the caller (``caller()``) and maps whatever is raised here to a status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc
import structlog

from gateway.broker.topology import Names
from gateway.domain.errors import FieldViolation, GatewayError, InvalidMessage, Unavailable
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.rpc.boundary import BAD_REQUEST, Boundary, Undecodable, caller
from gateway.rpc.errors import to_rejection
from gateway.rpc.inbox_streams import (
    Closed,
    InboxStream,
    InboxStreams,
    held_elsewhere,
    not_settled,
)
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


_INBOX_CLOSED = "the inbox connection closed; reconnect"


class _ClientDone:
    """The client ended its requests of a Subscribe stream."""


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
        self._executor = executor  # checking and committing messages
        self._streams = InboxStreams(service, amqp_url, names, streams)

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

    async def Subscribe(
        self,
        request_iterator: AsyncIterator[exchange_pb2.SubscribeRequest | Undecodable],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[exchange_pb2.SubscribeResponse]:
        """The inbox, with settlements on the same stream (answered in order); an
        inbox stream like Receive's, within ``max_receive_streams``."""
        agency = caller()
        requests = aiter(request_iterator)
        first = _decoded(await anext(requests, _ClientDone()))
        if isinstance(first, _ClientDone):
            return
        events: asyncio.Queue[Any] = asyncio.Queue()
        prefetch = min(first.max_in_flight or DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT)
        stream = await self._streams.open(agency, prefetch, events, context)

        async def settle_requests() -> None:
            request: exchange_pb2.SubscribeRequest | _ClientDone = first
            try:
                while not isinstance(request, _ClientDone):
                    if request.delivery_ids or request.rejected_delivery_ids:
                        events.put_nowait(await self._settle_on(stream, request))
                    request = _decoded(await anext(requests, _ClientDone()))
                events.put_nowait(request)
            except Exception as err:  # ends the stream with its status, in the serving task
                events.put_nowait(err)

        settler = asyncio.ensure_future(settle_requests())
        context.add_done_callback(lambda _: settler.cancel())
        try:
            while True:
                item = await events.get()
                if isinstance(item, _ClientDone):
                    return
                if isinstance(item, Exception):
                    stream.broker_lost = getattr(item, "reason", "") == "INBOX_CONNECTION_LOST"
                    raise item
                if isinstance(item, Closed):
                    stream.broker_lost = True
                    raise Unavailable("BROKER_UNAVAILABLE", _INBOX_CLOSED)
                if isinstance(item, exchange_pb2.SubscribeResponse):
                    yield item
                    continue
                delivery = self._streams.hand_over(stream, item)
                yield exchange_pb2.SubscribeResponse(delivery=delivery)
        finally:
            settler.cancel()
            await self._streams.close(stream)

    async def _settle_on(
        self, stream: InboxStream, request: exchange_pb2.SubscribeRequest
    ) -> exchange_pb2.SubscribeResponse:
        acking = self._streams.claim(stream.agency, request.delivery_ids, within=stream)
        returning = self._streams.claim(stream.agency, request.rejected_delivery_ids, within=stream)
        settled = await self._streams.settle(stream.agency, acking.held, returning.held)
        if settled.failed:
            done = len(settled.acknowledged) + len(settled.returned)
            raise not_settled(len(settled.failed), done)
        return exchange_pb2.SubscribeResponse(
            settled=exchange_pb2.Settled(
                delivery_ids=[h.delivery_id for h in settled.acknowledged],
                rejected_delivery_ids=[h.delivery_id for h in settled.returned],
                unknown_delivery_ids=[*acking.unknown, *returning.unknown],
            )
        )

    async def Receive(
        self,
        request: exchange_pb2.ReceiveRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[exchange_pb2.ReceiveResponse]:
        """The agency's inbox, on at most ``max_receive_streams`` inbox streams
        (Receive and Subscribe) at once."""
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        prefetch = min(request.max_in_flight or DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT)
        stream = await self._streams.open(caller(), prefetch, inbox, context)
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, Closed):
                    stream.broker_lost = True
                    raise Unavailable("BROKER_UNAVAILABLE", _INBOX_CLOSED)
                delivery = self._streams.hand_over(stream, item)
                yield exchange_pb2.ReceiveResponse(delivery=delivery)
        finally:
            await self._streams.close(stream)

    async def Acknowledge(
        self, request: exchange_pb2.AcknowledgeRequest, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.AcknowledgeResponse:
        """Settles the deliveries on the broker — acknowledged ones leave the
        inbox, rejected ones are delivered again (dead-lettered past the
        delivery limit) — and records in the audit log what the broker took.

        FAILED_PRECONDITION ``DELIVERY_HELD_ELSEWHERE`` when an id belongs to a
        stream of another gateway process (nothing settled); ABORTED
        ``INBOX_CONNECTION_LOST`` when the broker did not take some (they come
        back; the others are settled and recorded)."""
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
        acking = self._streams.claim(agency, request.delivery_ids)
        returning = self._streams.claim(agency, request.rejected_delivery_ids)
        if elsewhere := [*acking.elsewhere, *returning.elsewhere]:
            raise held_elsewhere(elsewhere)
        settled = await self._streams.settle(agency, acking.held, returning.held)
        failed = len(settled.failed) + len(acking.lost) + len(returning.lost)
        if failed:
            raise not_settled(failed, len(settled.acknowledged) + len(settled.returned))
        return exchange_pb2.AcknowledgeResponse(
            acknowledged=len(settled.acknowledged) + len(settled.returned),
            unknown_delivery_ids=[*acking.unknown, *returning.unknown],
        )

    async def GetStatus(
        self, request: exchange_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.GetStatusResponse:
        return await self._run(self._service.status, caller(), request.mid)


def _decoded(
    request: exchange_pb2.SubscribeRequest | Undecodable | _ClientDone,
) -> exchange_pb2.SubscribeRequest | _ClientDone:
    if isinstance(request, Undecodable):
        raise BAD_REQUEST
    return request


def add_to_server(servicer: ExchangeServicer, server: grpc.aio.Server, boundary: Boundary) -> None:
    boundary.register(exchange_pb2_grpc.add_ExchangeServicer_to_server, servicer, server)

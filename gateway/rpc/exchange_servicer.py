"""silian.v1.Exchange over grpc.aio: authenticate, translate, delegate."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import structlog

from gateway.broker.consumer import InboxConsumer, InboxMessage
from gateway.broker.topology import Names
from gateway.errors import FieldViolation, GatewayError, InvalidMessage, Unavailable
from gateway.exchange import ExchangeService
from gateway.rpc.errors import to_grpc_status, to_rejection
from gateway.rpc.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.security.tokens import bearer_from_metadata

log = structlog.get_logger(__name__)
T = TypeVar("T")

DEFAULT_IN_FLIGHT = 100
MAX_IN_FLIGHT = 1000


@dataclass
class _ReceiveSession:
    """One open Receive stream: its consumer and the deliveries it holds."""

    id: str
    agency: str
    consumer: InboxConsumer
    held: dict[int, tuple[str, str]] = field(default_factory=dict)  # tag -> (sender, mid)


class _Closed:
    def __init__(self, error: Exception | None) -> None:
        self.error = error


class ExchangeServicer(exchange_pb2_grpc.ExchangeServicer):
    def __init__(
        self, service: ExchangeService, executor: Executor, amqp_url: str, names: Names
    ) -> None:
        self._service = service
        self._executor = executor
        self._amqp_url = amqp_url
        self._names = names
        self._sessions: dict[str, _ReceiveSession] = {}

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _caller(self, context: grpc.aio.ServicerContext) -> str:
        token = bearer_from_metadata(context.invocation_metadata() or ())
        return await self._run(self._service.authenticate, token, _certificate_agency(context))

    async def Submit(
        self, request: exchange_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.SubmitResponse:
        try:
            if _undecodable(request):
                raise BAD_REQUEST
            caller = await self._caller(context)
            receipt = await self._run(self._service.submit, request.envelope, caller)
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        return exchange_pb2.SubmitResponse(receipt=receipt)

    async def SubmitStream(
        self,
        request_iterator: AsyncIterator[exchange_pb2.SubmitStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[exchange_pb2.SubmitStreamResponse]:
        try:
            caller = await self._caller(context)
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        async for request in request_iterator:
            if _undecodable(request):
                yield exchange_pb2.SubmitStreamResponse(rejection=to_rejection(BAD_REQUEST))
                continue
            yield await self._submit_one(request.envelope, caller, context)

    async def _submit_one(
        self, envelope: envelope_pb2.Envelope, caller: str, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.SubmitStreamResponse:
        try:
            receipt = await self._run(self._service.submit, envelope, caller)
        except Unavailable as err:
            await context.abort_with_status(to_grpc_status(err))
        except GatewayError as err:
            return exchange_pb2.SubmitStreamResponse(mid=envelope.mid, rejection=to_rejection(err))
        return exchange_pb2.SubmitStreamResponse(mid=envelope.mid, receipt=receipt)

    async def Receive(
        self,
        request: exchange_pb2.ReceiveRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[exchange_pb2.ReceiveResponse]:
        try:
            if _undecodable(request):
                raise BAD_REQUEST
            caller = await self._caller(context)
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[InboxMessage | _Closed] = asyncio.Queue()
        prefetch = min(request.max_in_flight or DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT)
        consumer = InboxConsumer(self._amqp_url, self._names, caller, prefetch=prefetch)
        try:
            await loop.run_in_executor(
                None,
                lambda: consumer.start(
                    on_message=lambda m: _post(loop, inbox, m),
                    on_closed=lambda e: _post(loop, inbox, _Closed(e)),
                ),
            )
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        session = _ReceiveSession(uuid.uuid4().hex[:16], caller, consumer)
        self._sessions[session.id] = session
        log.info("receive.opened", agency=caller, session=session.id, prefetch=prefetch)
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, _Closed):
                    await context.abort_with_status(
                        to_grpc_status(
                            Unavailable(
                                "BROKER_UNAVAILABLE", "the inbox connection closed; reconnect"
                            )
                        )
                    )
                    return
                delivery = envelope_pb2.Delivery.FromString(item.body)
                delivery.delivery_id = f"{session.id}.{item.delivery_tag}"
                delivery.redelivered = item.redelivered
                session.held[item.delivery_tag] = (delivery.sender, delivery.mid)
                await self._run(self._service.delivered, caller, [(delivery.sender, delivery.mid)])
                log.info(
                    "delivery.sent",
                    mid=delivery.mid,
                    agency=caller,
                    kind=delivery.kind,
                    redelivered=item.redelivered,
                )
                yield exchange_pb2.ReceiveResponse(delivery=delivery)
        finally:
            self._sessions.pop(session.id, None)
            await loop.run_in_executor(None, consumer.stop)
            log.info(
                "receive.closed",
                agency=caller,
                session=session.id,
                unacknowledged=len(session.held),
            )

    async def Acknowledge(
        self, request: exchange_pb2.AcknowledgeRequest, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.AcknowledgeResponse:
        try:
            if _undecodable(request):
                raise BAD_REQUEST
            caller = await self._caller(context)
            settled, unknown = self._settle(caller, request.delivery_ids)
            await self._run(self._service.acknowledged, caller, [m for _, _, m in settled])
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        by_session = itertools.groupby(sorted(settled, key=lambda s: s[0]), key=lambda s: s[0])
        for session_id, group in by_session:
            self._sessions[session_id].consumer.ack([tag for _, tag, _ in group])
        for _, _, (_, mid) in settled:
            log.info("delivery.acknowledged", mid=mid, agency=caller)
        return exchange_pb2.AcknowledgeResponse(
            acknowledged=len(settled), unknown_delivery_ids=unknown
        )

    def _settle(
        self,
        caller: str,
        ids: Sequence[str],
    ) -> tuple[list[tuple[str, int, tuple[str, str]]], list[str]]:
        settled: list[tuple[str, int, tuple[str, str]]] = []
        unknown: list[str] = []
        for delivery_id in ids:
            session_id, _, tag_text = delivery_id.partition(".")
            session = self._sessions.get(session_id)
            tag = int(tag_text) if tag_text.isdigit() else -1
            if session is None or session.agency != caller or tag not in session.held:
                unknown.append(delivery_id)
                continue
            settled.append((session_id, tag, session.held.pop(tag)))
        if not ids:
            raise InvalidMessage(
                "MISSING_FIELD",
                "no delivery ids to acknowledge",
                [FieldViolation("delivery_ids", "is empty")],
            )
        return settled, unknown

    async def GetStatus(
        self, request: exchange_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> exchange_pb2.GetStatusResponse:
        try:
            if _undecodable(request):
                raise BAD_REQUEST
            caller = await self._caller(context)
            return await self._run(self._service.status, caller, request.mid)
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
            raise


def _post(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: object) -> None:
    """Hand ``item`` from a broker thread to the event loop's queue."""
    loop.call_soon_threadsafe(queue.put_nowait, item)


class _Undecodable:
    """Stands in for a request whose bytes are not the expected protobuf."""


UNDECODABLE = _Undecodable()


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # protobuf raises DecodeError, and others on odd input
            return UNDECODABLE

    return deserialize


class _TolerantRegistration:
    """Wraps a server so generated handlers decode requests without raising:
    an undecodable request then gets INVALID_ARGUMENT from the servicer
    instead of grpc's generic INTERNAL."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self._server.add_registered_method_handlers(
            service,
            {
                name: handler._replace(request_deserializer=_tolerant(handler.request_deserializer))
                for name, handler in handlers.items()
            },
        )

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Registered handlers above take precedence; nothing else to add."""


def add_to_server(servicer: ExchangeServicer, server: grpc.aio.Server) -> None:
    exchange_pb2_grpc.add_ExchangeServicer_to_server(servicer, _TolerantRegistration(server))


def _undecodable(request: Any) -> bool:
    return request is UNDECODABLE


BAD_REQUEST = InvalidMessage("UNPARSEABLE_REQUEST", "the request is not a valid protobuf message")


def _certificate_agency(context: grpc.aio.ServicerContext) -> str | None:
    """The agency named by the client certificate's common name, under mTLS."""
    names = (context.auth_context() or {}).get("x509_common_name")
    return names[0].decode() if names else None

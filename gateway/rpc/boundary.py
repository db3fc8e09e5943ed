"""The one boundary every RPC of ``silian.v1`` passes: decode, authenticate,
map errors.

``Boundary.register(add_servicer, servicer, server)`` registers a generated
servicer so that each of its handlers:

1. decodes its request tolerantly — bytes that are not the expected protobuf
   become ``UNDECODABLE`` instead of grpc's generic INTERNAL, and a unary or
   server-streaming call with such a request is refused INVALID_ARGUMENT
   (``UNPARSEABLE_REQUEST``) before anything else;
2. authenticates the caller (bearer token, and the client certificate under
   mTLS) with the roles ``ACCESS`` allows for the method — the servicer reads
   the principal with ``caller()``; a streaming call is authenticated again
   every ``recheck_seconds`` while it is open, and ends UNAUTHENTICATED (the
   reason says why: ``EXPIRED_TOKEN``, ``REVOKED_KEY`` …) once its token has
   expired or its key was revoked;
3. maps what the servicer raises: a ``GatewayError`` becomes its gRPC status
   with ``google.rpc`` details (``gateway.rpc.errors``); anything else is a bug:
   logged with a correlation id and answered INTERNAL with that id, never with
   Python internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import grpc
import structlog

from gateway.domain.errors import (
    GatewayError,
    InvalidMessage,
    Overloaded,
    Unauthenticated,
    Unavailable,
)
from gateway.rpc.errors import internal_status, to_grpc_status
from gateway.security.tokens import bearer_from_metadata

log = structlog.get_logger(__name__)

AGENCIES = ("agency",)
AUDITORS = ("auditor",)
AUDITORS_AND_AGENCIES = ("auditor", "agency")

#: The roles that may call each method; a method missing here is refused.
ACCESS: dict[str, tuple[str, ...]] = {
    "/silian.v1.Exchange/Submit": AGENCIES,
    "/silian.v1.Exchange/SubmitStream": AGENCIES,
    "/silian.v1.Exchange/Subscribe": AGENCIES,
    "/silian.v1.Exchange/Receive": AGENCIES,
    "/silian.v1.Exchange/Acknowledge": AGENCIES,
    "/silian.v1.Exchange/GetStatus": AGENCIES,
    "/silian.v1.Audit/GetCheckpoint": AUDITORS_AND_AGENCIES,
    "/silian.v1.Audit/GetInclusionProof": AUDITORS_AND_AGENCIES,
    "/silian.v1.Audit/GetConsistencyProof": AUDITORS,
    "/silian.v1.Audit/ListEntries": AUDITORS,
    "/silian.v1.Audit/SubjectAccessLog": AUDITORS,
}

BAD_REQUEST = InvalidMessage("UNPARSEABLE_REQUEST", "the request is not a valid protobuf message")

#: (token, certificate agency, roles, peer) -> principal id; raises GatewayError.
Authenticate = Callable[[str | None, str | None, Sequence[str], str], str]
#: What a call was authenticated with: the arguments of Authenticate.
Credentials = tuple[str | None, str | None, Sequence[str], str]

#: How often an open stream's authorization is checked again (a revoked key is
#: seen within this plus the key cache's two seconds).
STREAM_RECHECK_SECONDS = 1.0

_caller: contextvars.ContextVar[str] = contextvars.ContextVar("silian_caller")


def caller() -> str:
    """The authenticated principal of the RPC being served."""
    return _caller.get()


class Undecodable:
    """Stands in for a request whose bytes are not the expected protobuf."""


UNDECODABLE = Undecodable()


def undecodable(request: object) -> bool:
    return request is UNDECODABLE


def certificate_agency(context: grpc.aio.ServicerContext) -> str | None:
    """The agency named by the client certificate's common name, under mTLS."""
    names = (context.auth_context() or {}).get("x509_common_name")
    return names[0].decode() if names else None


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # protobuf raises DecodeError, and others on odd input
            return UNDECODABLE

    return deserialize


class Boundary:
    """Wraps every registered handler; see the module docstring."""

    def __init__(
        self,
        authenticate: Authenticate,
        executor: Executor,
        recheck_seconds: float = STREAM_RECHECK_SECONDS,
    ) -> None:
        self._authenticate = authenticate
        self._executor = executor  # authentication never queues behind messages
        self._recheck = recheck_seconds

    def register(
        self,
        add_servicer: Callable[[Any, Any], None],
        servicer: object,
        server: grpc.aio.Server,
    ) -> None:
        """``add_servicer(servicer, server)`` with every handler wrapped."""
        add_servicer(servicer, _Registration(self, server))

    async def _enter(
        self, method: str, request: object, context: grpc.aio.ServicerContext
    ) -> Credentials:
        if request is UNDECODABLE:
            raise BAD_REQUEST
        credentials: Credentials = (
            bearer_from_metadata(context.invocation_metadata() or ()),
            certificate_agency(context),
            ACCESS.get(method, ()),
            context.peer() or "",
        )
        principal = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._authenticate, *credentials
        )
        _caller.set(principal)
        return credentials

    async def _lapsed(self, credentials: Credentials) -> None:
        """Raise Unauthenticated once ``credentials`` no longer authenticate
        (checked every ``recheck_seconds``); a database outage or the gateway
        shedding load ends nothing."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._recheck)
            try:
                await loop.run_in_executor(self._executor, self._authenticate, *credentials)
            except (Unavailable, Overloaded):  # says nothing about the credentials
                continue
            except GatewayError as err:
                raise Unauthenticated(err.reason, f"the stream ended: {err.message}") from None

    async def _following(
        self, credentials: Credentials, responses: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        """``responses`` for as long as ``credentials`` stay valid; then the
        stream's generator is stopped and Unauthenticated raised. Each response
        is awaited as a task that a lapse cancels (one task per response, no
        race of two futures: this is on the path of every delivery)."""
        steps: list[asyncio.Future[Any]] = []
        lapsed = asyncio.ensure_future(self._lapsed(credentials))
        lapsed.add_done_callback(lambda _: steps[-1].cancel() if steps else None)
        try:
            while True:
                if lapsed.done():  # it lapsed while the last response was sent
                    lapsed.result()
                steps.append(asyncio.ensure_future(anext(responses)))
                del steps[:-1]
                try:
                    response = await steps[-1]
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if lapsed.done() and not lapsed.cancelled():
                        lapsed.result()  # raises: the authorization ended
                    raise
                yield response
        finally:
            if not lapsed.cancel() and not lapsed.cancelled():
                lapsed.exception()  # seen (the stream had ended anyway)
            if steps and not steps[-1].done():  # the call itself ended
                await _cancelled(steps[-1])
            closing = getattr(responses, "aclose", None)
            if closing is not None:
                await closing()

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    await self._enter(method, request, context)
                    return await unary(request, context)
                except Exception as exc:
                    await _abort(context, method, exc)

            return handler._replace(request_deserializer=deserializer, unary_unary=unary_unary)
        if handler.unary_stream is not None:
            produce = handler.unary_stream

            async def unary_stream(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                try:
                    credentials = await self._enter(method, request, context)
                    async for response in self._following(credentials, produce(request, context)):
                        yield response
                except Exception as exc:
                    await _abort(context, method, exc)

            return handler._replace(request_deserializer=deserializer, unary_stream=unary_stream)
        if handler.stream_stream is not None:
            converse = handler.stream_stream

            async def stream_stream(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                try:
                    credentials = await self._enter(method, None, context)
                    async for response in self._following(credentials, converse(requests, context)):
                        yield response
                except Exception as exc:
                    await _abort(context, method, exc)

            return handler._replace(request_deserializer=deserializer, stream_stream=stream_stream)
        raise TypeError(f"{method}: client-streaming handlers are not used by silian.v1")


async def _cancelled(step: asyncio.Future[Any]) -> None:
    """Cancel a pending step of a stream's generator and wait until it stopped
    (its ``finally`` blocks ran); whatever it raised on the way out is moot."""
    step.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await step


async def _abort(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    """End the call with the status ``exc`` deserves; never returns."""
    if isinstance(exc, grpc.aio.AbortError):  # the servicer aborted already
        raise exc
    if isinstance(exc, GatewayError):
        await context.abort_with_status(to_grpc_status(exc))
    correlation = uuid.uuid4().hex
    log.error("rpc.failed", method=method, correlation_id=correlation, exc_info=exc)
    await context.abort_with_status(
        internal_status(f"internal error; correlation id {correlation}")
    )


class _Registration:
    """What the generated ``add_*Servicer_to_server`` talks to: wraps the
    handlers it registers, then hands them to the real server."""

    def __init__(self, boundary: Boundary, server: grpc.aio.Server) -> None:
        self._boundary = boundary
        self._server = server

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self._server.add_registered_method_handlers(
            service,
            {
                name: self._boundary.wrap(f"/{service}/{name}", handler)
                for name, handler in handlers.items()
            },
        )

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Registered handlers above take precedence; nothing else to add."""

"""The one catch-all, on a real gRPC server: whatever a handler raises that is
not a GatewayError — in a unary call, mid-way through a server stream or a
bidirectional stream — reaches the caller as INTERNAL with a correlation id
and no Python internals, and the same id is in the gateway's JSON log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
import structlog

from gateway import logs
from gateway.proto.silian.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.rpc.boundary import Boundary

SECRET = "Python int too large to convert to C long"


class Faulty(exchange_pb2_grpc.ExchangeServicer):
    async def GetStatus(self, request: Any, context: Any) -> Any:
        raise OverflowError(SECRET)

    async def Receive(self, request: Any, context: Any) -> AsyncIterator[Any]:
        yield exchange_pb2.ReceiveResponse()
        raise OverflowError(SECRET)

    async def SubmitStream(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for _ in requests:
            yield exchange_pb2.SubmitStreamResponse(mid="first")
            raise KeyError(SECRET)


@pytest.fixture
def target() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stopping: list[asyncio.Event] = []
    port: list[int] = []
    executor = ThreadPoolExecutor(max_workers=2)

    async def serve() -> None:
        server = grpc.aio.server()
        boundary = Boundary(lambda token, agency, roles, peer: "police", executor)
        boundary.register(exchange_pb2_grpc.add_ExchangeServicer_to_server, Faulty(), server)
        port.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        stopping.append(asyncio.Event())
        started.set()
        await stopping[0].wait()
        await server.stop(0)

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"127.0.0.1:{port[0]}"
    loop.call_soon_threadsafe(stopping[0].set)
    thread.join(10)
    executor.shutdown()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    saved, handlers = structlog.get_config(), logging.getLogger().handlers
    buffer = io.StringIO()
    logs.configure("json", file=buffer)
    yield buffer
    structlog.configure(**saved)
    logging.getLogger().handlers = handlers


def _failure(err: grpc.RpcError, log: io.StringIO) -> None:
    assert err.code() == grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]
    details = err.details()  # type: ignore[attr-defined]
    assert SECRET not in details and "Error" not in details and "Traceback" not in details
    match = re.fullmatch(r"internal error; correlation id ([0-9a-f]{32})", details)
    assert match, details
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    logged = [line for line in lines if line.get("correlation_id") == match[1]]
    assert len(logged) == 1 and logged[0]["event"] == "rpc.failed"
    assert SECRET in logged[0]["exception"]  # the operator gets what the caller does not


def test_a_unary_call_that_fails_unexpectedly_is_internal_with_a_logged_id(
    target: str, json_log: io.StringIO
) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetStatus(exchange_pb2.GetStatusRequest(mid="m"), timeout=10)
    _failure(caught.value, json_log)


def test_a_server_stream_that_fails_midway_is_internal_with_a_logged_id(
    target: str, json_log: io.StringIO
) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        received = []
        with pytest.raises(grpc.RpcError) as caught:
            for response in stub.Receive(exchange_pb2.ReceiveRequest(), timeout=10):
                received.append(response)
    assert len(received) == 1
    _failure(caught.value, json_log)


def test_a_bidirectional_stream_that_fails_is_internal_with_a_logged_id(
    target: str, json_log: io.StringIO
) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        requests = iter([exchange_pb2.SubmitStreamRequest()])
        answers = []
        with pytest.raises(grpc.RpcError) as caught:
            for answer in stub.SubmitStream(requests, timeout=10):
                answers.append(answer.mid)
    assert answers == ["first"]
    _failure(caught.value, json_log)

"""An inbox stream, once its call ended, stops its consumer and gives its slot
back, however the call's handler ended: a consumer left running holds its
prefetch of deliveries for nobody, and the agency's next stream waits for them
in vain (real RabbitMQ)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.broker import Names
from gateway.domain.errors import Overloaded
from gateway.rpc.inbox_streams import InboxStream, InboxStreams
from gateway.service.admission import StreamSlots
from tests.integration.broker_fixtures import amqp_url, broker_names

__all__ = ["amqp_url", "broker_names"]  # the pytest fixtures used here

pytestmark = pytest.mark.broker


class Call:
    """What InboxStreams needs of a gRPC call: its done callbacks, run by ``end``."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[object], None]] = []

    def add_done_callback(self, callback: Callable[[object], None]) -> None:
        self.callbacks.append(callback)

    def end(self) -> None:
        for callback in self.callbacks:
            callback(self)


async def _open(
    amqp_url: str, names: Names, slots: StreamSlots, call: Call
) -> tuple[InboxStreams, InboxStream]:
    streams = InboxStreams(SimpleNamespace(handover=None), amqp_url, names, slots)  # type: ignore[arg-type]
    into: asyncio.Queue[Any] = asyncio.Queue()
    stream = await streams.open("police", 10, into, call)  # type: ignore[arg-type]
    assert stream.consumer.is_running
    return streams, stream


def test_a_close_cancelled_while_its_stop_waits_for_a_thread_still_stops_the_consumer(
    amqp_url: str, broker_names: Names
) -> None:
    """The call ending cancels its handler, often in the midst of closing: the
    stop it handed to a worker thread must run all the same."""
    slots = StreamSlots(1)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(1))
        streams, stream = await _open(amqp_url, broker_names, slots, Call())
        busy = threading.Event()
        blocker = loop.run_in_executor(None, busy.wait)  # the one worker is busy
        closing = asyncio.ensure_future(streams.close(stream))
        await asyncio.sleep(0)  # one loop turn: ready callbacks run in order, so close started
        assert stream.closed  # and waits for the worker with the stop
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        busy.set()
        await blocker
        await loop.run_in_executor(None, lambda: None)  # after the stop: one worker, in order
        assert not stream.consumer.is_running
        assert slots.open("police") == 0

    asyncio.run(scenario())


def test_a_call_that_ends_closes_its_stream_without_the_handler(
    amqp_url: str, broker_names: Names
) -> None:
    """grpc may leave a cancelled handler suspended for the garbage collector;
    the call's end alone closes the stream and frees the slot for the next."""
    slots = StreamSlots(1)

    async def scenario() -> None:
        call = Call()
        streams, stream = await _open(amqp_url, broker_names, slots, call)
        with pytest.raises(Overloaded):
            await streams.open("police", 10, asyncio.Queue(), Call())  # type: ignore[arg-type]
        call.end()
        await asyncio.sleep(0)  # one loop turn: the close the call's end scheduled starts
        await streams.wait_closed()
        assert stream.closed and not stream.consumer.is_running
        _, following = await _open(amqp_url, broker_names, slots, Call())
        await streams.close(following)
        assert slots.open("police") == 0

    asyncio.run(scenario())

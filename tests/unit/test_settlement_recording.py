"""A settlement the broker took is recorded in the audit log even when the
caller stops waiting for the record (its stream ended meanwhile): the record
is not withdrawn, so the log does not say 'delivered' of what left the inbox."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from types import SimpleNamespace

import pytest

from gateway.domain import events
from gateway.rpc.inbox_streams import Held, InboxStream, InboxStreams
from gateway.service.admission import StreamSlots


class Recorder:
    """The audit side of ExchangeService: each record is a future the test completes."""

    def __init__(self) -> None:
        self.records: list[tuple[str, list[tuple[str, str]], str, Future[None]]] = []
        self.asked = asyncio.Event()

    def record(self, agency: str, messages: list[tuple[str, str]], event: str) -> Future[None]:
        future: Future[None] = Future()
        self.records.append((agency, messages, event, future))
        self.asked.set()
        return future


class Broker:
    """An inbox consumer whose settlements the broker takes at once."""

    def ack(self, tags: list[int]) -> Future[None]:
        return self._taken()

    def reject(self, tag: int, requeue: bool) -> Future[None]:
        return self._taken()

    @staticmethod
    def _taken() -> Future[None]:
        future: Future[None] = Future()
        future.set_result(None)
        return future


def test_a_settlement_is_recorded_though_its_caller_stopped_waiting() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        service = SimpleNamespace(record=recorder.record, handover=None)
        streams = InboxStreams(service, "", None, StreamSlots(1))  # type: ignore[arg-type]
        stream = InboxStream("s1", "police", Broker())  # type: ignore[arg-type]
        acked = Held(stream, 1, ("judicial", "m1"), "roster.change", "p.s1.1")
        returned = Held(stream, 2, ("judicial", "m2"), "roster.change", "p.s1.2")
        stream.held = {1: (acked.message, acked.kind), 2: (returned.message, returned.kind)}
        settling = asyncio.ensure_future(streams.settle("police", [acked], [returned]))
        await recorder.asked.wait()
        settling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await settling
        for *_, future in recorder.records:
            assert not future.cancelled()
            future.set_result(None)  # the committer completes it later

    asyncio.run(scenario())
    assert [(agency, messages, event) for agency, messages, event, _ in recorder.records] == [
        ("police", [("judicial", "m1")], events.ACKNOWLEDGED),
        ("police", [("judicial", "m2")], events.RETURNED),
    ]

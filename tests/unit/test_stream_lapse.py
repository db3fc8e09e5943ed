"""The boundary ends a stream once its credentials stop authenticating —
whether the stream is waiting for its next response or busy sending them —
and closes the stream's generator (its ``finally`` runs)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.domain.errors import Unauthenticated, Unavailable
from gateway.rpc.boundary import Boundary

CREDENTIALS = ("token", None, ("agency",), "ipv4:10.0.0.7:1")


class Key:
    """Authenticates until revoked; the database may be down meanwhile."""

    def __init__(self) -> None:
        self.revoked = False
        self.database_down = False

    def __call__(self, *credentials: object) -> str:
        if self.database_down:
            raise Unavailable("DATABASE_UNAVAILABLE", "down")
        if self.revoked:
            raise Unauthenticated("REVOKED_KEY", "key k of police is revoked")
        return "police"


async def _follow(key: Key, responses: AsyncIterator[int], after: int) -> list[int]:
    with ThreadPoolExecutor(1) as executor:
        boundary = Boundary(key, executor, recheck_seconds=0.01)
        seen: list[int] = []
        with pytest.raises(Unauthenticated) as ended:
            async for item in boundary._following(CREDENTIALS, responses):
                seen.append(item)
                if len(seen) == after:
                    key.revoked = True
        assert ended.value.reason == "REVOKED_KEY"
        assert ended.value.message.startswith("the stream ended:")
        return seen


def test_a_waiting_stream_ends_and_its_generator_is_closed() -> None:
    closed = asyncio.Event()

    async def inbox() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.Event().wait()  # nothing more arrives
        finally:
            closed.set()

    async def run() -> None:
        assert await _follow(Key(), inbox(), after=1) == [1]
        assert closed.is_set()

    asyncio.run(run())


def test_a_busy_stream_ends_too() -> None:
    async def flood() -> AsyncIterator[int]:
        for n in itertools.count():
            await asyncio.sleep(0)
            yield n

    seen = asyncio.run(_follow(Key(), flood(), after=5))
    assert len(seen) >= 5


def test_a_database_outage_does_not_end_a_stream() -> None:
    key = Key()
    key.database_down = True

    async def slow() -> AsyncIterator[int]:
        for n in range(3):
            await asyncio.sleep(0.05)  # several rechecks fail with Unavailable meanwhile
            yield n

    async def run() -> list[int]:
        with ThreadPoolExecutor(1) as executor:
            boundary = Boundary(key, executor, recheck_seconds=0.01)
            return [item async for item in boundary._following(CREDENTIALS, slow())]

    assert asyncio.run(run()) == [0, 1, 2]

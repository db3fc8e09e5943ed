"""Relay throughput against the local RabbitMQ: pipelined confirms vs one blocking confirm each.

    .venv/bin/python benchmarks/relay_bench.py [--count 50000] [--naive-count 3000]

Publishes persistent 700-byte messages into a quorum inbox (and, for the feed,
into the stream) under a throw-away prefix, which is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from itertools import islice

from gateway.broker import (
    Names,
    OutboxItem,
    OutboxRelay,
    blocking_channel,
    blocking_publish_one,
    declare,
    delete,
)

BODY_BYTES = 700


class MemoryOutbox:
    """An ``OutboxSource`` over a dict, fast enough not to be what is measured."""

    def __init__(self, items: Sequence[OutboxItem]) -> None:
        self._rows = OrderedDict((item.id, item) for item in items)

    def pending(self, limit: int) -> list[OutboxItem]:
        return list(islice(self._rows.values(), limit))

    def mark_published(self, ids: Sequence[int]) -> None:
        for row_id in ids:
            del self._rows[row_id]

    def mark_unroutable(self, ids: Sequence[int]) -> None:
        raise AssertionError(f"unroutable in a benchmark: {ids}")

    def __len__(self) -> int:
        return len(self._rows)


def make_items(count: int, destination: str, routing_key: str) -> list[OutboxItem]:
    body = os.urandom(BODY_BYTES)
    headers = {"sender": "judicial", "unit": "610302"}
    return [
        OutboxItem(n, destination, routing_key, str(uuid.uuid4()), "roster.change", body, headers)
        for n in range(count)
    ]


def pipelined(url: str, names: Names, items: list[OutboxItem], window: int, batch: int) -> float:
    """Messages per second through ``OutboxRelay.run_once`` until the outbox is empty."""
    outbox = MemoryOutbox(items)
    relay = OutboxRelay(url, names, outbox, window=window, batch=batch)
    relay.run_once()  # connect outside the measurement (publishes the first batch)
    started = time.perf_counter()
    published = 0
    while len(outbox):
        published += relay.run_once()
    elapsed = time.perf_counter() - started
    relay.close()
    return published / elapsed


def one_by_one(url: str, names: Names, items: list[OutboxItem]) -> float:
    """Messages per second with ``blocking_publish_one`` (one confirm round trip each)."""
    with blocking_channel(url) as channel:
        channel.confirm_delivery()
        started = time.perf_counter()
        for item in items:
            blocking_publish_one(channel, names, item)
        return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--naive-count", type=int, default=3_000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    names = Names(f"bench-{uuid.uuid4().hex[:8]}")
    with blocking_channel(args.url) as channel:
        declare(channel, names, ["police"])
    try:
        runs = {
            "one blocking confirm each (quorum inbox)": one_by_one(
                args.url, names, make_items(args.naive_count, "inbox", "police")
            ),
            f"relay, window {args.window}, batch {args.batch} (quorum inbox)": pipelined(
                args.url, names, make_items(args.count, "inbox", "police"), args.window, args.batch
            ),
            f"relay, window {args.window}, batch {args.batch} (feed stream)": pipelined(
                args.url,
                names,
                make_items(args.count, "feed", "roster.change.610302.judicial"),
                args.window,
                args.batch,
            ),
        }
    finally:
        with blocking_channel(args.url) as channel:
            delete(channel, names, ["police"])
    for label, rate in runs.items():
        print(f"{label:55} {rate:9,.0f} msg/s")


if __name__ == "__main__":
    main()

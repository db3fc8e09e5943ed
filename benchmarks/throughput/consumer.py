"""The consumer process: reads every recipient's inbox, acknowledges in
batches and reports each arrival to the harness."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc

from benchmarks.throughput.mix import RECIPIENTS
from benchmarks.throughput.worker import SPREAD_OPTIONS, load_keys, quiet_child
from gateway.client import AgencyClient, InboxReader

#: Acknowledge calls each reader keeps in flight.
ACKERS = 4


class InboxConsumer:
    """Reads one recipient's inbox with the agency side's one reader
    (``gateway.client.InboxReader``: the gateway's signature of every delivery
    checked, acknowledgements batched with ACKERS calls in flight, so the stream
    keeps flowing while the gateway records a batch), opening a new reader
    whenever the last one failed, until ``stop``."""

    def __init__(
        self,
        client: Any,
        recipient: int,
        max_in_flight: int,
        ack_batch: int,
        out: Callable[[list[tuple[str, int, float, bool, str]]], None],
        stop: threading.Event,
    ) -> None:
        self.client = client
        self.recipient = recipient
        self.max_in_flight = max_in_flight
        self.ack_batch = ack_batch
        self.out = out
        self.stop = stop
        self.errors: Counter[str] = Counter()
        self.reader: Any = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            reader = InboxReader(
                self.client,
                max_in_flight=self.max_in_flight,
                batch=self.ack_batch,
                acknowledgers=ACKERS,
            )
            self.reader = reader
            reader.start(self.arrived)
            while not self.stop.wait(0.2) and reader.error is None:
                pass
            error = reader.error
            if error is None:
                return
            failure = error.code().name if isinstance(error, grpc.RpcError) else repr(error)
            self.errors[f"inbox {failure}"] += 1
            reader.close()
            self._count(reader)
            self.stop.wait(0.5)  # back off before reconnecting

    def arrived(self, delivery: Any) -> None:
        now = time.monotonic()
        self.out([(delivery.mid, self.recipient, now, delivery.redelivered, delivery.sender)])

    def settled(self) -> bool:
        """Every delivery read was acknowledged and the gateway answered."""
        return self.reader is None or bool(self.reader.all_settled())

    def _count(self, reader: Any) -> None:
        if reader.unknown:
            self.errors["ack unknown"] += reader.unknown
        if reader.refused:
            self.errors["refused: gateway signature"] += len(reader.refused)

    def close(self) -> None:
        """Acknowledge what was read, then stop reading."""
        self.stop.set()
        self.thread.join(5)
        if self.reader is not None:
            self.reader.close()
            self._count(self.reader)


def consumer_process(
    conn: Any,
    arrivals: Any,
    target: str,
    audience: str,
    pems: dict[str, bytes],
    gateway_public: tuple[bytes, ...],
    readers_per_inbox: int,
    max_in_flight: int,
    ack_batch: int,
) -> None:
    """The consumer process's main: reads until the harness says stop over ``conn``,
    putting arrivals on ``arrivals`` in batches."""
    quiet_child()
    keys = load_keys(pems)
    stop = threading.Event()
    buffer: list[tuple[str, int, float, bool, str]] = []
    lock = threading.Lock()

    def out(items: list[tuple[str, int, float, bool, str]]) -> None:
        with lock:
            buffer.extend(items)

    def flush() -> None:
        nonlocal buffer
        with lock:
            batch, buffer = buffer, []
        if batch:
            arrivals.put(batch)

    readers = []
    for index, recipient in enumerate(RECIPIENTS):
        for _ in range(readers_per_inbox):
            # A connection of its own per reader, as each agency has: grpc would
            # share one between channels to one target, and with `serve --workers`
            # every inbox would then be served by one worker.
            channel = grpc.insecure_channel(target, options=SPREAD_OPTIONS)
            client = AgencyClient(
                channel, recipient, keys[recipient], audience, tuple(gateway_public)
            )
            readers.append(InboxConsumer(client, index, max_in_flight, ack_batch, out, stop))
    for reader in readers:
        reader.start()
    flusher_stop = threading.Event()

    def flusher() -> None:
        while not flusher_stop.wait(0.05):
            flush()

    flushing = threading.Thread(target=flusher, daemon=True)
    flushing.start()
    try:
        while True:
            command = conn.recv()
            if command[0] == "settle":  # wait until every delivery read was acknowledged
                deadline = time.monotonic() + command[1]
                while time.monotonic() < deadline and not all(r.settled() for r in readers):
                    stop.wait(0.05)
                conn.send(("settled", all(r.settled() for r in readers)))
            elif command[0] == "stop":
                break
    except (EOFError, BrokenPipeError):
        pass
    stop.set()
    for reader in readers:
        reader.close()
    flusher_stop.set()
    flushing.join()
    flush()
    errors: Counter[str] = Counter()
    for reader in readers:
        errors.update(reader.errors)
    with contextlib.suppress(Exception):
        conn.send(("stopped", dict(errors)))

"""The load process: signs the messages of a phase before the clock starts,
then submits them (streams, unary at a fixed rate or flat out) and reports
receipts and progress to the harness."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import multiprocessing
import multiprocessing.connection
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.throughput.mix import LANES, SENDERS, LoadPayloads, split
from benchmarks.throughput.worker import (
    CHANNEL_OPTIONS,
    SPREAD_OPTIONS,
    Tokens,
    load_keys,
    quiet_child,
)
from gateway.client import build_envelope
from gateway.proto.silian.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.proto.silian.v1.envelope_pb2 import Envelope

#: Messages a load stream has sent but not had an answer for (the gateway works
#: on 256 of a stream at once); bounds what is buffered, so a time cap holds.
STREAM_IN_FLIGHT = 512


@dataclass
class LoadSpec:
    """What one load phase sends: messages per lane (agency, kind, streams)."""

    phase: str
    messages: int
    mode: str  # "stream" | "rate" | "max" | "sequential" | "soak"
    rate: float = 0.0
    threads: int = 1
    concurrency: int = 1
    seed: int = 1
    #: Stop sending new messages this many seconds after the start (0: no cap).
    cap_seconds: float = 0.0
    #: Stream mode: each stream on a connection of its own, so that the kernel
    #: spreads them over the workers of ``serve --workers N`` (SO_REUSEPORT
    #: balances connections, not calls).
    spread: bool = False


class LoadWorker:
    """Runs in the load process: signs, then submits on ``go``; reports back."""

    def __init__(
        self,
        conn: multiprocessing.connection.Connection,
        target: str,
        audience: str,
        pems: dict[str, bytes],
    ) -> None:
        self.conn = conn
        self.target = target
        self.keys = load_keys(pems)
        self.tokens = Tokens(self.keys, audience)
        self.send_lock = threading.Lock()

    def send(self, *message: Any) -> None:
        with self.send_lock:
            self.conn.send(message)

    def serve(self) -> None:
        while True:
            command = self.conn.recv()
            if command[0] == "stop":
                return
            spec: LoadSpec = command[1]
            try:
                self.run(spec)
            except Exception:
                self.send("error", traceback.format_exc())

    # signing -------------------------------------------------------------------

    def sign(self, agency: str, kind: str, count: int, payloads: LoadPayloads) -> list[Any]:
        key = self.keys[agency]
        return [build_envelope(agency, key, kind, payloads.for_kind(kind)) for _ in range(count)]

    def lanes(self, spec: LoadSpec) -> list[tuple[str, list[Any]]]:
        """(agency, envelopes) per stream, signed now."""
        payloads = LoadPayloads(spec.seed)
        counts = split(spec.messages, [lane[3] for lane in LANES])
        result = []
        for (agency, kind, streams, _), count in zip(LANES, counts, strict=True):
            for n in split(count, [1.0] * streams):
                result.append((agency, self.sign(agency, kind, n, payloads)))
        return result

    def interleaved(self, spec: LoadSpec) -> list[tuple[str, Any]]:
        """(agency, envelope) in a shuffled mix of the lanes, signed now."""
        mixed = [(agency, env) for agency, envs in self.lanes(spec) for env in envs]
        random.Random(spec.seed).shuffle(mixed)
        return mixed

    # phases ---------------------------------------------------------------------

    def run(self, spec: LoadSpec) -> None:
        if spec.mode == "stream":
            lanes = self.lanes(spec)
            self.send("ready", sum(len(e) for _, e in lanes))
            self.await_go()
            result = asyncio.run(self.stream(lanes, spec.cap_seconds, spec.spread))
        elif spec.mode == "soak":
            self.send("ready", spec.messages)
            self.await_go()
            result = asyncio.run(self.soak(spec))
        elif spec.mode == "max":
            mixed = self.interleaved(spec)
            self.send("ready", len(mixed))
            self.await_go()
            result = asyncio.run(self.unary_max(mixed, spec.concurrency, spec.cap_seconds))
        else:  # "rate" or "sequential"
            mixed = self.interleaved(spec)
            self.send("ready", len(mixed))
            self.await_go()
            rate = spec.rate if spec.mode == "rate" else 0.0
            result = self.unary_threads(mixed, rate, spec.threads, spec.cap_seconds)
        self.send("done", result)

    def await_go(self) -> None:
        command = self.conn.recv()
        if command[0] != "go":
            raise RuntimeError(f"expected go, got {command[0]!r}")

    def report(self, receipts: list[tuple[str, tuple[str, ...], float]]) -> None:
        if receipts:
            self.send("receipts", receipts)

    async def _progress(self, counter: Callable[[], int], stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
            self.send("progress", counter())

    async def stream(
        self, lanes: list[tuple[str, list[Any]]], cap: float = 0.0, spread: bool = False
    ) -> dict[str, Any]:
        accepted = sent = 0
        rejected: Counter[str] = Counter()
        last = 0.0
        started = time.monotonic()
        until = started + cap if cap else math.inf
        async with grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            shared = exchange_pb2_grpc.ExchangeStub(channel)

            async def lane(agency: str, envelopes: list[Any]) -> None:
                if not spread:
                    return await submit(shared, agency, envelopes)
                async with grpc.aio.insecure_channel(self.target, options=SPREAD_OPTIONS) as own:
                    return await submit(exchange_pb2_grpc.ExchangeStub(own), agency, envelopes)

            async def submit(
                stub: exchange_pb2_grpc.ExchangeStub, agency: str, envelopes: list[Any]
            ) -> None:
                nonlocal accepted, last
                window = asyncio.Semaphore(STREAM_IN_FLIGHT)

                async def requests() -> Any:
                    nonlocal sent
                    for envelope in envelopes:
                        await window.acquire()
                        if time.monotonic() > until:
                            return
                        sent += 1
                        yield exchange_pb2.SubmitStreamRequest(envelope=envelope)

                receipts: list[tuple[str, tuple[str, ...], float]] = []
                call = stub.SubmitStream(requests(), metadata=self.tokens.metadata(agency))
                async for response in call:
                    window.release()
                    if response.HasField("receipt"):
                        accepted += 1
                        receipts.append(
                            (response.mid, tuple(response.receipt.recipients), time.monotonic())
                        )
                        if len(receipts) >= 2000:
                            self.report(receipts)
                            receipts = []
                    else:
                        rejected[response.rejection.reason or str(response.rejection.code)] += 1
                last = time.monotonic()
                self.report(receipts)

            stop = asyncio.Event()
            progress = asyncio.ensure_future(self._progress(lambda: accepted, stop))
            try:
                await asyncio.gather(*(lane(agency, envelopes) for agency, envelopes in lanes))
            finally:
                stop.set()
                await progress
        return {
            "started": started,
            "last_receipt": last,
            "accepted": accepted,
            "sent": sent,
            "rejected": dict(rejected),
        }

    async def soak(self, spec: LoadSpec) -> dict[str, Any]:
        """Like ``stream``, but each lane signs as it sends (a soak is about memory)."""
        payloads = LoadPayloads(spec.seed)
        counts = split(spec.messages, [lane[3] for lane in LANES])
        lanes = []
        for (agency, kind, streams, _), count in zip(LANES, counts, strict=True):
            for n in split(count, [1.0] * streams):
                key = self.keys[agency]
                lanes.append((agency, _LazyEnvelopes(n, _signer(agency, key, kind, payloads))))
        return await self.stream(lanes)  # type: ignore[arg-type]

    async def unary_max(
        self, mixed: list[tuple[str, Any]], concurrency: int, cap: float = 0.0
    ) -> dict[str, Any]:
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        receipts: list[tuple[str, tuple[str, ...], float]] = []
        work = iter(mixed)
        sent_count = 0
        for agency in SENDERS:
            self.tokens.metadata(agency)  # tokens signed before the clock
        async with grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            stub = exchange_pb2_grpc.ExchangeStub(channel)
            started = time.monotonic()
            until = started + cap if cap else math.inf

            async def caller() -> None:
                nonlocal receipts, sent_count
                for agency, envelope in work:
                    sent = time.monotonic()
                    if sent > until:
                        return
                    sent_count += 1
                    try:
                        response = await stub.Submit(
                            exchange_pb2.SubmitRequest(envelope=envelope),
                            metadata=self.tokens.metadata(agency),
                            timeout=60,
                        )
                    except grpc.aio.AioRpcError as err:
                        errors[err.code().name] += 1
                        continue
                    latencies.append(time.monotonic() - sent)
                    receipts.append(
                        (envelope.mid, tuple(response.receipt.recipients), time.monotonic())
                    )
                    if len(receipts) >= 2000:
                        self.report(receipts)
                        receipts = []

            stop = asyncio.Event()
            progress = asyncio.ensure_future(self._progress(lambda: len(latencies), stop))
            try:
                await asyncio.gather(*(caller() for _ in range(concurrency)))
            finally:
                stop.set()
                await progress
            last = time.monotonic()
        self.report(receipts)
        return {
            "started": started,
            "last_receipt": last,
            "accepted": len(latencies),
            "sent": sent_count,
            "errors": dict(errors),
            "latencies": latencies,
        }

    def unary_threads(
        self, mixed: list[tuple[str, Any]], rate: float, threads: int, cap: float = 0.0
    ) -> dict[str, Any]:
        """Sync unary calls on ``threads`` threads. With ``rate`` > 0 message i is
        due at start + i/rate and its latency counts from then (open loop);
        with rate 0 each thread sends as soon as its previous call returned.

        No message is sent later than ``cap`` seconds after the start; in an
        open-loop run a message left unsent counts with the time from its due
        moment to the end of the run (a lower bound of its latency)."""
        channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        latencies = [math.nan] * len(mixed)
        service = [math.nan] * len(mixed)
        attempted = [False] * len(mixed)
        errors: Counter[str] = Counter()
        receipts: list[tuple[str, tuple[str, ...], float]] = []
        lock = threading.Lock()
        next_index = itertools.count()
        done = threading.Event()
        stopped = threading.Event()
        for agency in SENDERS:
            self.tokens.metadata(agency)  # tokens signed before the clock
        started = time.monotonic() + 0.05  # every thread is waiting for its first slot
        until = started + cap if cap else math.inf

        def worker() -> None:
            while (index := next(next_index)) < len(mixed):
                agency, envelope = mixed[index]
                due = started + index / rate if rate else time.monotonic()
                delay = due - time.monotonic()
                if delay > 0 and stopped.wait(delay):
                    return
                sent = time.monotonic()
                if sent > until:
                    return
                attempted[index] = True
                try:
                    response = stub.Submit(
                        exchange_pb2.SubmitRequest(envelope=envelope),
                        metadata=self.tokens.metadata(agency),
                        timeout=60,
                    )
                except grpc.RpcError as err:
                    with lock:
                        errors[err.code().name] += 1
                    continue
                finished = time.monotonic()
                latencies[index] = finished - due
                service[index] = finished - sent
                with lock:
                    receipts.append(
                        (envelope.mid, tuple(response.receipt.recipients), time.monotonic())
                    )

        pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        for thread in pool:
            thread.start()

        def watch() -> None:
            for thread in pool:
                thread.join()
            done.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        while not done.wait(0.25):
            with lock:
                batch, receipts = receipts, []
            self.report(batch)
            self.send("progress", sum(1 for x in service if x == x))
        last = time.monotonic()
        self.report(receipts)
        channel.close()
        ok = [x for x in latencies if x == x]
        sent = sum(attempted)
        if rate and sent < len(mixed):
            errors["not sent within the cap"] = len(mixed) - sent
            latencies = [
                x if attempted[i] else last - (started + i / rate) for i, x in enumerate(latencies)
            ]
        return {
            "started": started,
            "last_receipt": last,
            "accepted": len(ok),
            "sent": sent,
            "errors": dict(errors),
            "latencies": [x for x in latencies if x == x],
            "service": [x for x in service if x == x],
        }


def _signer(
    agency: str, key: Ed25519PrivateKey, kind: str, payloads: LoadPayloads
) -> Callable[[], Envelope]:
    return lambda: build_envelope(agency, key, kind, payloads.for_kind(kind))


class _LazyEnvelopes:
    """``count`` envelopes made one by one as a stream consumes them."""

    def __init__(self, count: int, make: Callable[[], Any]) -> None:
        self.count = count
        self.make = make

    def __iter__(self) -> Iterator[Any]:
        return (self.make() for _ in range(self.count))

    def __len__(self) -> int:
        return self.count


def load_process(conn: Any, target: str, audience: str, pems: dict[str, bytes]) -> None:
    """The load process's main: serves the harness's commands over ``conn``."""
    quiet_child()
    with contextlib.suppress(EOFError, BrokenPipeError):
        LoadWorker(conn, target, audience, pems).serve()

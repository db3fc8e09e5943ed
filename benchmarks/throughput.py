"""End-to-end throughput of the gateway as its own process, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/throughput.py                 # both databases, ~6 min on 2 cores
    .venv/bin/python benchmarks/throughput.py --database postgresql --json figures.json
    .venv/bin/python benchmarks/throughput.py --database postgresql --soak 1000000

For each database it makes a fresh data directory, database (a SQLite file, or a
PostgreSQL schema of its own) and broker prefix, registers the principals, starts
``silian serve`` as a subprocess and waits for health SERVING. A load process
(multiprocessing, spawn) signs messages *before* the clock starts and submits
them; a consumer process reads the recipients' inboxes with ``Receive`` and
settles them with ``Acknowledge`` in batches, checking every receipted message
reached every recipient its receipt names (deduplicated by mid; duplicates counted).

Phases, per database:

1. warm-up: a few unary messages from each agency, all delivered (proves the
   consumer is connected; not measured);
2. stream: ``--messages`` messages over ``SubmitStream`` from judicial
   (roster.change → police + procuratorate), police (verification.result →
   judicial) and procuratorate (inspection.finding → judicial) on five
   concurrent streams (at most 512 unanswered each): accepted msg/s and
   end-to-end msg/s (first submit → last delivery received by a recipient).
   Sending stops after ``--stream-seconds`` if the gateway is too slow to take
   them all, so that the default run ends in time;
3. unary at a fixed offered rate (``--rate``, 500 msg/s, for ``--rate-seconds``):
   an open-loop schedule on ``--rate-threads`` client threads; latency counts from
   each message's scheduled send time, so a stall is not hidden (no coordinated
   omission);
4. unary at maximum throughput, ``--concurrency`` (64) calls in flight
   (for at most ``--cap-seconds``);
5. unary below capacity: like 3, offered at ``--below-fraction`` (half) of the
   rate phase 4 reached, for the latency a client sees when the gateway is
   not saturated;
6. naive reference: the gateway restarted with SILIAN_COMMIT_BATCH=1,
   SILIAN_RELAY_WINDOW=1, SILIAN_RELAY_BATCH=1 and one unary call at a time;
   the ratio printed is stream e2e msg/s ÷ naive e2e msg/s, within this run.

``--soak N`` instead streams N messages (signed on the fly: a soak measures the
gateway's memory, not the client) and prints the gateway's RSS against the
number of messages accepted. The gateway's RSS (VmRSS) is sampled throughout
and its peak (VmHWM) read before it stops. CPU shares of the gateway, the load
and consumer processes, PostgreSQL, RabbitMQ and everything else on the machine
("other": another test run, say) are measured per phase from /proc (100 % = one
core). ``--profile DIR`` records the gateway with py-spy (GIL holder only) during
each measured phase and prints where its Python time goes (``pip install py-spy``
into the venv first; it is not a project dependency).

The gateway measured is the ``gateway`` package the interpreter imports (its
path and git revision are printed): to measure a fixed copy while the work tree
changes, put that copy first on PYTHONPATH.

The gateway runs with its default settings except a wider clock-skew allowance
(SILIAN_CLOCK_SKEW_SECONDS, so that messages signed before a long phase stay
valid) and a short shutdown grace. Everything made — processes, data directory,
schema, queues and exchanges — is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

#: Who sends what in the load, and on how many concurrent streams.
#: (agency, kind, streams, share of the messages)
LANES: tuple[tuple[str, str, int, float], ...] = (
    ("judicial", "roster.change", 2, 0.4),
    ("police", "verification.result", 2, 0.4),
    ("procuratorate", "inspection.finding", 1, 0.2),
)
SENDERS = tuple(lane[0] for lane in LANES)
RECIPIENTS = ("police", "procuratorate", "judicial")

TARGET_STREAM_E2E = 3000.0
TARGET_UNARY = 1000.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 6.0
TARGET_RSS_MB = 300.0

#: Messages a load stream has sent but not had an answer for (the gateway works
#: on 256 of a stream at once); bounds what is buffered, so a time cap holds.
STREAM_IN_FLIGHT = 512
#: Acknowledge calls each reader keeps in flight.
ACKERS = 4
#: py-spy samples per second (--profile).
PROFILE_RATE = 100
#: No progress for this long while waiting for deliveries ends the wait.
STALL_SECONDS = 60.0
#: The gateway's allowed clock skew in the benchmark (pre-signed messages age).
CLOCK_SKEW_SECONDS = 3600


# --- payloads ----------------------------------------------------------------


#: Seed of the roster pool, the same in every process.
POOL_SEED = 20261127


class Payloads:
    """Valid payloads of the three kinds the load sends, from a seeded generator."""

    UNITS = (
        "610302",
        "610303",
        "610304",
        "610305",
        "610323",
        "610324",
        "610326",
        "610327",
        "610328",
        "610329",
        "610330",
        "610331",
    )
    NAMES = ("王某", "李某", "张某", "刘某", "陈某", "杨某", "赵某", "黄某")

    #: People on the roster before the load: police results must name someone
    #: enrolled (the police linkage refuses others with NOT_FOUND).
    POOL_SIZE = 300

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        pool_rng, self.rng = self.rng, random.Random(POOL_SEED)
        self.pool = [self.resident_id(self.rng.choice(self.UNITS)) for _ in range(self.POOL_SIZE)]
        self.rng = pool_rng

    def resident_id(self, unit: str) -> str:
        """A valid ID number of a man (the sequence number is odd)."""
        from gateway.domain.validation import check_character

        birth = date(1960, 1, 1) + timedelta(days=self.rng.randrange(40 * 365))
        first17 = f"{unit}{birth:%Y%m%d}{self.rng.randrange(500) * 2 + 1:03d}"
        return first17 + check_character(first17)

    def roster_change(self, person: str | None = None) -> Any:
        from gateway.proto.silian.v1 import payloads_pb2 as pb

        unit = person[:6] if person else self.rng.choice(self.UNITS)
        today = date.today()
        return pb.RosterChange(
            change_id=f"RC-{uuid.uuid4().hex[:12]}",
            change_type=pb.ROSTER_CHANGE_TYPE_ENROLMENT,
            subject=pb.Subject(
                resident_id=person or self.resident_id(unit),
                name=self.rng.choice(self.NAMES),
                gender=pb.GENDER_MALE,
                address="宝鸡市某区某街道",
            ),
            unit_code=unit,
            category=pb.CORRECTION_CATEGORY_PROBATION,
            supervision_level=pb.SUPERVISION_LEVEL_ORDINARY,
            effective_date=today.isoformat(),
            term_start_date=today.isoformat(),
            term_end_date=(today + timedelta(days=365)).isoformat(),
            offence="盗窃罪",
            officer=f"officer-{self.rng.randrange(50)}",
        )

    def verification_result(self) -> Any:
        from gateway.proto.silian.v1 import payloads_pb2 as pb

        person = self.rng.choice(self.pool)
        unit = person[:6]
        result = pb.VerificationResult(
            result_id=f"VR-{uuid.uuid4().hex[:12]}",
            subject=pb.Subject(resident_id=person, name=self.rng.choice(self.NAMES)),
            unit_code=unit,
            check_type=self.rng.choice(
                (pb.CHECK_TYPE_HOTEL_STAY, pb.CHECK_TYPE_TRAVEL, pb.CHECK_TYPE_INTERNET_CAFE)
            ),
            outcome=pb.CHECK_OUTCOME_NO_HIT,
            place="宝鸡市某酒店",
            place_region_code=unit,
            police_reference=f"GA-{self.rng.randrange(10**6)}",
        )
        result.observed_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
        return result

    def inspection_finding(self) -> Any:
        from gateway.proto.silian.v1 import payloads_pb2 as pb

        today = date.today()
        return pb.InspectionFinding(
            inspection_id=f"INS-{self.rng.randrange(10**4)}",
            finding_id=f"F-{uuid.uuid4().hex[:12]}",
            unit_code=self.rng.choice(self.UNITS),
            category=pb.FINDING_CATEGORY_PROCURATORIAL_SUGGESTION,
            severity=pb.SEVERITY_MEDIUM,
            finding="未按规定开展走访 home visits not made as required",
            recommendation="限期整改 rectify within the deadline",
            issued_date=today.isoformat(),
            rectification_deadline=(today + timedelta(days=30)).isoformat(),
        )

    def for_kind(self, kind: str) -> Any:
        return {
            "roster.change": self.roster_change,
            "verification.result": self.verification_result,
            "inspection.finding": self.inspection_finding,
        }[kind]()


def split(total: int, shares: Sequence[float]) -> list[int]:
    """``total`` split by ``shares`` (largest remainder), summing to ``total``."""
    raw = [total * s / sum(shares) for s in shares]
    counts = [int(r) for r in raw]
    for index in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[: total - sum(counts)]:
        counts[index] += 1
    return counts


def expected_deliveries(messages: int) -> int:
    """Inbox deliveries ``messages`` of the load mix make (roster.change goes to two)."""
    per_kind = {"roster.change": 2, "verification.result": 1, "inspection.finding": 1}
    counts = split(messages, [lane[3] for lane in LANES])
    return sum(per_kind[lane[1]] * n for lane, n in zip(LANES, counts, strict=True))


# --- /proc --------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (empty once it is gone)."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def service_cpu_seconds() -> dict[str, float]:
    """CPU seconds of PostgreSQL and RabbitMQ: every live process of theirs plus
    what their exited children used (a backend that ends moves its time into the
    postmaster's reaped-children counters, so the sum only grows)."""
    totals = {"postgres": 0.0, "rabbitmq": 0.0}
    stats: dict[int, tuple[str, int, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        stats[int(entry.name)] = (comm, int(fields[1]), fields)
    for comm, parent, fields in stats.values():
        name = (
            "postgres" if comm.startswith("postgres") else "rabbitmq" if comm == "beam.smp" else ""
        )
        if not name:
            continue
        ticks = int(fields[11]) + int(fields[12])
        if stats.get(parent, ("",))[0] != comm:  # the top process: add its reaped children
            ticks += int(fields[13]) + int(fields[14])
        totals[name] += ticks / CLOCK_TICKS
    return totals


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) // 1024
    import gateway

    code = Path(gateway.__file__).resolve().parent.parent  # the gateway the harness runs
    revision = str(code)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        described = subprocess.run(
            ["git", "-C", str(code), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        revision = f"{described} ({code})" if described else revision
    return {
        "nproc": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_model": model,
        "revision": revision,
        "memory_mb": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def service_versions(postgres_url: str, amqp_url: str) -> dict[str, str]:
    import pika
    from sqlalchemy import create_engine, text

    versions = {}
    with contextlib.suppress(Exception):
        engine = create_engine(postgres_url)
        with engine.connect() as connection:
            versions["postgresql"] = str(connection.execute(text("SHOW server_version")).scalar())
        engine.dispose()
    with contextlib.suppress(Exception):
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        props = connection._impl.server_properties
        version = props.get("version", b"")
        versions["rabbitmq"] = version.decode() if isinstance(version, bytes) else str(version)
        connection.close()
    return versions


# --- shared client bits (used in the worker processes) -------------------------


class Tokens:
    """Bearer-token metadata per agency, renewed a minute before expiry."""

    TTL = 300

    def __init__(self, keys: dict[str, Any], audience: str) -> None:
        self._keys = keys
        self._audience = audience
        self._cache: dict[str, tuple[float, list[tuple[str, str]]]] = {}
        self._lock = threading.Lock()

    def metadata(self, agency: str) -> list[tuple[str, str]]:
        from gateway.security import issue_token, kid_for, public_raw

        with self._lock:
            expires, metadata = self._cache.get(agency, (0.0, []))
            if time.time() > expires - 60:
                key = self._keys[agency]
                token = issue_token(
                    key,
                    kid_for(public_raw(key)),
                    issuer=agency,
                    audience=self._audience,
                    ttl_seconds=self.TTL,
                )
                metadata = [("authorization", f"Bearer {token}")]
                self._cache[agency] = (time.time() + self.TTL, metadata)
            return metadata


def load_keys(pems: dict[str, bytes]) -> dict[str, Any]:
    from gateway.security import load_private_pem

    return {agency: load_private_pem(pem) for agency, pem in pems.items()}


def quiet_child() -> None:
    """Worker processes leave Ctrl-C to the parent, which stops them in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]


# --- load process ----------------------------------------------------------------


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

    def sign(self, agency: str, kind: str, count: int, payloads: Payloads) -> list[Any]:
        from gateway.client import build_envelope

        key = self.keys[agency]
        return [build_envelope(agency, key, kind, payloads.for_kind(kind)) for _ in range(count)]

    def lanes(self, spec: LoadSpec) -> list[tuple[str, list[Any]]]:
        """(agency, envelopes) per stream, signed now."""
        payloads = Payloads(spec.seed)
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
            result = asyncio.run(self.stream(lanes, spec.cap_seconds))
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

    def report(self, receipts: list[tuple[str, tuple[str, ...]]]) -> None:
        if receipts:
            self.send("receipts", receipts)

    async def _progress(self, counter: Callable[[], int], stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
            self.send("progress", counter())

    async def stream(self, lanes: list[tuple[str, list[Any]]], cap: float = 0.0) -> dict[str, Any]:
        import grpc

        from gateway.proto.silian.v1 import exchange_pb2, exchange_pb2_grpc

        accepted = sent = 0
        rejected: Counter[str] = Counter()
        last = 0.0
        started = time.monotonic()
        until = started + cap if cap else math.inf
        async with grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            stub = exchange_pb2_grpc.ExchangeStub(channel)

            async def lane(agency: str, envelopes: list[Any]) -> None:
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

                receipts: list[tuple[str, tuple[str, ...]]] = []
                call = stub.SubmitStream(requests(), metadata=self.tokens.metadata(agency))
                async for response in call:
                    window.release()
                    if response.HasField("receipt"):
                        accepted += 1
                        receipts.append((response.mid, tuple(response.receipt.recipients)))
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
        from gateway.client import build_envelope

        payloads = Payloads(spec.seed)
        counts = split(spec.messages, [lane[3] for lane in LANES])
        lanes = []
        for (agency, kind, streams, _), count in zip(LANES, counts, strict=True):
            for n in split(count, [1.0] * streams):
                key = self.keys[agency]
                lanes.append(
                    (
                        agency,
                        _LazyEnvelopes(n, _signer(build_envelope, agency, key, kind, payloads)),
                    )
                )
        return await self.stream(lanes)  # type: ignore[arg-type]

    async def unary_max(
        self, mixed: list[tuple[str, Any]], concurrency: int, cap: float = 0.0
    ) -> dict[str, Any]:
        import grpc

        from gateway.proto.silian.v1 import exchange_pb2, exchange_pb2_grpc

        latencies: list[float] = []
        errors: Counter[str] = Counter()
        receipts: list[tuple[str, tuple[str, ...]]] = []
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
                    receipts.append((envelope.mid, tuple(response.receipt.recipients)))
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
        import grpc

        from gateway.proto.silian.v1 import exchange_pb2, exchange_pb2_grpc

        channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        latencies = [math.nan] * len(mixed)
        service = [math.nan] * len(mixed)
        attempted = [False] * len(mixed)
        errors: Counter[str] = Counter()
        receipts: list[tuple[str, tuple[str, ...]]] = []
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
                    receipts.append((envelope.mid, tuple(response.receipt.recipients)))

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
    build: Callable[..., Any], agency: str, key: Any, kind: str, payloads: Payloads
) -> Callable[[], Any]:
    return lambda: build(agency, key, kind, payloads.for_kind(kind))


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
    quiet_child()
    with contextlib.suppress(EOFError, BrokenPipeError):
        LoadWorker(conn, target, audience, pems).serve()


# --- consumer process ------------------------------------------------------------


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
        import grpc

        from gateway.client import InboxReader

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
    quiet_child()
    from gateway.client import AgencyClient

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
            client = AgencyClient.connect(
                target,
                agency=recipient,
                key=keys[recipient],
                gateway_id=audience,
                gateway_keys=gateway_public,
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


# --- the gateway process -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """``silian serve`` as a subprocess, its log in the data directory."""

    def __init__(self, data_dir: Path, env: dict[str, str], log_name: str) -> None:
        self.target = f"127.0.0.1:{free_port()}"
        self.log_path = data_dir / log_name
        self._log = self.log_path.open("wb")
        silian = Path(sys.executable).with_name("silian")
        self.process = subprocess.Popen(
            [str(silian), "--data-dir", str(data_dir), "serve", "--listen", self.target],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the harness, which stops it in order
        )
        self.pid = self.process.pid
        self.peak_kb = 0

    def wait_serving(self, timeout: float = 60.0) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while (remaining := deadline - time.monotonic()) > 0:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the gateway exited ({self.process.returncode}):\n" + self.log_tail()
                    )
                try:
                    grpc.channel_ready_future(channel).result(timeout=min(1.0, remaining))
                    for response in stub.Watch(
                        health_pb2.HealthCheckRequest(service=""), timeout=min(5.0, remaining)
                    ):
                        if response.status == health_pb2.HealthCheckResponse.SERVING:
                            return
                except (grpc.FutureTimeoutError, grpc.RpcError):
                    continue
        raise RuntimeError("the gateway did not become SERVING in time:\n" + self.log_tail())

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def log_counts(self) -> Counter[str]:
        """Log lines by level (warning, error …)."""
        counts: Counter[str] = Counter()
        with contextlib.suppress(OSError), self.log_path.open("rb") as handle:
            for line in handle:
                if line.startswith(b"{"):
                    with contextlib.suppress(ValueError):
                        counts[json.loads(line).get("level", "?")] += 1
        return counts

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not stopped within ``timeout``."""
        if self.process.poll() is None:
            self.peak_kb = max(self.peak_kb, proc_status(self.pid).get("VmHWM", 0))
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


class RssSampler:
    """Samples the gateway's VmRSS every ``interval`` seconds on a thread."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.phase = "start"
        self.samples: list[tuple[float, str, int]] = []  # (monotonic, phase, kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = proc_status(self.pid).get("VmRSS")
            if rss is None:
                return
            self.samples.append((time.monotonic(), self.phase, rss))
            self._stop.wait(self.interval)

    def now_kb(self) -> int:
        return proc_status(self.pid).get("VmRSS", 0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def of_phase(self, phase: str) -> list[int]:
        return [kb for _, p, kb in self.samples if p == phase]


# --- deliveries -------------------------------------------------------------------


class Deliveries:
    """What recipients received, against what receipts said they would."""

    def __init__(self) -> None:
        self.first: dict[bytes, float] = {}  # (mid, recipient) -> first arrival
        self.duplicate_of: Counter[bytes] = Counter()
        self.redelivered = 0
        self.senders: Counter[str] = Counter()
        self.expected: set[bytes] = set()
        self.missing: set[bytes] = set()
        self.last_progress = time.monotonic()

    @staticmethod
    def key(mid: str, recipient: int) -> bytes:
        try:
            return uuid.UUID(mid).bytes + bytes((recipient,))
        except ValueError:
            return mid.encode() + bytes((recipient,))

    def arrive(self, batch: list[tuple[str, int, float, bool, str]]) -> None:
        for mid, recipient, at, redelivered, sender in batch:
            key = self.key(mid, recipient)
            self.senders[sender] += 1
            self.redelivered += redelivered
            if key in self.first:
                self.duplicate_of[key] += 1
            else:
                self.first[key] = at
                self.missing.discard(key)
        if batch:
            self.last_progress = time.monotonic()

    def expect(self, receipts: list[tuple[str, tuple[str, ...]]]) -> list[bytes]:
        keys = []
        for mid, recipients in receipts:
            for recipient in recipients:
                key = self.key(mid, RECIPIENTS.index(recipient))
                keys.append(key)
                self.expected.add(key)
                if key not in self.first:
                    self.missing.add(key)
        return keys

    def unexpected(self) -> int:
        return sum(1 for key in self.first if key not in self.expected)


# --- orchestration --------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    messages: int
    sent: int
    accepted: int
    deliveries: int
    delivered: int
    duplicates: int
    started: float
    last_receipt: float
    last_delivery: float
    cpu: dict[str, float]
    rss_kb: list[int]
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)

    @property
    def accept_rate(self) -> float:
        return self.accepted / max(self.last_receipt - self.started, 1e-9)

    @property
    def e2e_rate(self) -> float:
        if self.delivered < self.deliveries or not self.accepted:
            return 0.0
        return self.accepted / max(self.last_delivery - self.started, 1e-9)

    @property
    def e2e_seconds(self) -> float:
        return self.last_delivery - self.started

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        data = sorted(self.latencies if values is None else values)
        if not data:
            return math.nan
        return data[min(len(data) - 1, max(0, math.ceil(q / 100 * len(data)) - 1))]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "messages_planned": self.messages,
            "messages_sent": self.sent,
            "accepted": self.accepted,
            "rejected_or_failed": self.errors,
            "accepted_per_second": round(self.accept_rate, 1),
            "deliveries_expected": self.deliveries,
            "deliveries_received": self.delivered,
            "duplicates": self.duplicates,
            "e2e_seconds": round(self.e2e_seconds, 3),
            "e2e_messages_per_second": round(self.e2e_rate, 1),
            "e2e_deliveries_per_second": round(self.delivered / max(self.e2e_seconds, 1e-9), 1),
            "cpu_percent": {k: round(v, 1) for k, v in self.cpu.items()},
            "rss_mb": {
                "min": round(min(self.rss_kb, default=0) / 1024, 1),
                "max": round(max(self.rss_kb, default=0) / 1024, 1),
            },
        }
        if self.latencies:
            out["latency_ms"] = {
                f"p{q:g}": round(self.percentile(q) * 1000, 2) for q in (50, 90, 99, 99.9)
            } | {"max": round(max(self.latencies) * 1000, 2)}
        if self.service:
            out["service_time_ms"] = {
                f"p{q:g}": round(self.percentile(q, self.service) * 1000, 2) for q in (50, 99)
            }
        return out


class Harness:
    """One database: data dir, schema, prefix, gateway runs and the phases."""

    def __init__(self, database: str, args: argparse.Namespace, console: Any) -> None:
        self.database = database
        self.args = args
        self.console = console
        self.stack = contextlib.ExitStack()
        self.prefix = f"throughput-{uuid.uuid4().hex[:8]}"
        self.schema = ""
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"silian-throughput-{database}-"))
        self.database_url = ""
        self.pems: dict[str, bytes] = {}
        self.gateway: GatewayProcess | None = None
        self.sampler: RssSampler | None = None
        self.load: Any = None
        self.load_conn: Any = None
        self.consumer: Any = None
        self.consumer_conn: Any = None
        self.arrivals: Any = None
        self.deliveries = Deliveries()
        self.runs: list[dict[str, Any]] = []
        self.results: dict[str, PhaseResult] = {}
        self.consumer_errors: Counter[str] = Counter()
        self.profile: dict[str, Any] = {}
        self.soak_series: list[tuple[int, float]] = []

    # setting up and tearing down ------------------------------------------------

    def __enter__(self) -> Harness:
        self.stack.callback(self._remove_data_dir)
        self.stack.callback(self._delete_broker_names)
        try:
            if self.database == "postgresql":
                self._create_schema()
            else:
                self.database_url = f"sqlite:///{self.data_dir / 'silian.db'}"
            self._provision()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_gateway()
        self.stack.close()

    def _create_schema(self) -> None:
        from sqlalchemy import create_engine, text

        self.schema = f"throughput_{uuid.uuid4().hex[:10]}"
        admin = create_engine(self.args.postgres_url)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        admin.dispose()
        self.stack.callback(self._drop_schema)
        self.database_url = f"{self.args.postgres_url}?options=-csearch_path%3D{self.schema}"

    def _drop_schema(self) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.args.postgres_url)
        try:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        finally:
            admin.dispose()

    def _delete_broker_names(self) -> None:
        import pika

        from gateway import bootstrap
        from gateway.broker import topology

        agencies = bootstrap.recipients(bootstrap.load_policy(self._settings()))
        connection = pika.BlockingConnection(pika.URLParameters(self.args.amqp_url))
        try:
            topology.delete(connection.channel(), topology.Names(self.prefix), agencies)
        finally:
            connection.close()

    def _remove_data_dir(self) -> None:
        if self.args.keep:
            self.console.print(f"[dim]kept {self.data_dir}[/]")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _settings(self) -> Any:
        from gateway.config import Settings

        return Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            amqp_url=self.args.amqp_url,
            broker_prefix=self.prefix,
        )

    def _provision(self) -> None:
        from gateway import bootstrap
        from gateway.security import private_to_pem
        from gateway.service.provision import ensure_principals

        settings = self._settings()
        store = bootstrap.open_store(settings)
        try:
            keys = ensure_principals(settings, store, bootstrap.load_policy(settings))
        finally:
            store.engine.dispose()
        self.pems = {agency: private_to_pem(keys[agency]) for agency in (*SENDERS, *RECIPIENTS)}

    def env(self, naive: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SILIAN_")}
        env |= {
            "SILIAN_DATABASE_URL": self.database_url,
            "SILIAN_AMQP_URL": self.args.amqp_url,
            "SILIAN_BROKER_PREFIX": self.prefix,
            "SILIAN_SHUTDOWN_GRACE_SECONDS": "2",
            "SILIAN_CLOCK_SKEW_SECONDS": str(CLOCK_SKEW_SECONDS),
        }
        if naive:
            env |= {
                "SILIAN_COMMIT_BATCH": "1",
                "SILIAN_RELAY_WINDOW": "1",
                "SILIAN_RELAY_BATCH": "1",
            }
        return env

    def start_gateway(self, naive: bool = False) -> None:
        label = "naive" if naive else "default"
        with self.console.status(f"[{self.database}] starting the gateway ({label} settings)"):
            self.gateway = GatewayProcess(self.data_dir, self.env(naive), f"gateway-{label}.log")
            self.gateway.wait_serving()
            self.sampler = RssSampler(self.gateway.pid)
            self._start_workers()
        self.runs.append({"settings": label, "pid": self.gateway.pid})

    def _start_workers(self) -> None:
        from gateway.client.keys import gateway_keys

        assert self.gateway is not None
        gateway_public = gateway_keys(self._settings())  # written by the gateway at start
        if not gateway_public:
            raise RuntimeError(f"no gateway key in {self.data_dir}: deliveries cannot be checked")
        ctx = multiprocessing.get_context("spawn")
        audience = "silian-gateway"
        self.load_conn, child = ctx.Pipe()
        self.load = ctx.Process(
            target=load_process,
            args=(child, self.gateway.target, audience, self.pems),
            name="bench-load",
            daemon=True,
        )
        self.load.start()
        child.close()
        self.arrivals = ctx.Queue()
        self.consumer_conn, child = ctx.Pipe()
        self.consumer = ctx.Process(
            target=consumer_process,
            args=(
                child,
                self.arrivals,
                self.gateway.target,
                audience,
                self.pems,
                gateway_public,
                self.args.readers,
                self.args.max_in_flight,
                self.args.ack_batch,
            ),
            name="bench-consumer",
            daemon=True,
        )
        self.consumer.start()
        child.close()

    def stop_gateway(self) -> None:
        """Stop the workers (acknowledging what they read first), then the gateway."""
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                self.consumer_conn.send(("settle", 10.0))
                if self.consumer_conn.poll(15):
                    self.consumer_conn.recv()
                self.consumer_conn.send(("stop",))
                while self.consumer_conn.poll(15):
                    message = self.consumer_conn.recv()
                    if message[0] == "stopped":
                        self.consumer_errors.update(message[1])
                        break
            self._drain_arrivals(0.0)
            _end_process(self.consumer)
            self.consumer = None
        if self.load is not None:
            with contextlib.suppress(Exception):
                self.load_conn.send(("stop",))
            _end_process(self.load)
            self.load = None
        if self.gateway is not None:
            if self.sampler is not None:
                self.sampler.stop()
            code = self.gateway.stop()
            self.runs[-1] |= {
                "peak_rss_mb": round(self.gateway.peak_kb / 1024, 1),
                "exit_code": code,
                "log_levels": dict(self.gateway.log_counts()),
                "rss_samples": [(round(t, 2), p, kb) for t, p, kb in self.sampler.samples]
                if self.sampler
                else [],
            }
            self.gateway = None

    # running phases -----------------------------------------------------------

    def _drain_arrivals(self, wait: float) -> None:
        try:
            batch = self.arrivals.get(timeout=wait) if wait else self.arrivals.get_nowait()
            self.deliveries.arrive(batch)
            while True:
                self.deliveries.arrive(self.arrivals.get_nowait())
        except queue.Empty:
            pass

    def _cpu(self) -> dict[str, float]:
        assert self.gateway is not None
        return {
            "gateway": cpu_seconds(self.gateway.pid),
            "load": cpu_seconds(self.load.pid),
            "consumer": cpu_seconds(self.consumer.pid),
            "harness": cpu_seconds(os.getpid()),
            **service_cpu_seconds(),
            "machine": machine_cpu_seconds(),
        }

    @staticmethod
    def _cpu_shares(
        before: dict[str, float], after: dict[str, float], wall: float
    ) -> dict[str, float]:
        """CPU % (100 = one core) per component over ``wall`` seconds; "other" is
        everything else on the machine (another test run would show there)."""
        used = {k: after[k] - before[k] for k in after}
        machine_total = used.pop("machine")
        used["other"] = max(0.0, machine_total - sum(used.values()))
        return {k: 100 * v / wall for k, v in used.items()}

    def phase(self, spec: LoadSpec, progress: Any, wait_deliveries: bool = True) -> PhaseResult:
        """Run one load phase and wait until every receipted message was delivered."""
        assert self.gateway is not None and self.sampler is not None
        planned = expected_deliveries(spec.messages)
        self.load_conn.send(("prepare", spec))
        signing = progress.add_task(f"[{self.database}] {spec.phase}: signing", total=None)
        ready = self._recv_load("ready", lambda _: self._drain_arrivals(0.05))
        progress.remove_task(signing)
        submitted = progress.add_task(f"[{self.database}] {spec.phase}: accepted", total=ready[1])
        delivered = progress.add_task(f"[{self.database}] {spec.phase}: delivered", total=planned)
        keys: list[bytes] = []
        cpu_before = self._cpu()
        wall_before = time.monotonic()
        self.sampler.phase = spec.phase
        profiler = self._start_profiler(spec.phase)
        self.load_conn.send(("go",))
        phase_keys_missing = self.deliveries.missing = set()

        def on_message(message: tuple[Any, ...]) -> None:
            if message[0] == "progress":
                progress.update(submitted, completed=message[1])
                if spec.mode == "soak" and self.sampler is not None:
                    self.soak_series.append((message[1], self.sampler.now_kb() / 1024))
            elif message[0] == "receipts":
                keys.extend(self.deliveries.expect(message[1]))
            self._drain_arrivals(0.0)
            progress.update(delivered, completed=len(keys) - len(phase_keys_missing))

        def idle(_: object) -> None:
            self._drain_arrivals(0.05)
            progress.update(delivered, completed=len(keys) - len(phase_keys_missing))

        done = self._recv_load("done", idle, on_message)[1]
        progress.update(submitted, completed=done["accepted"])
        self.deliveries.last_progress = time.monotonic()
        drain_until = time.monotonic() + self.args.drain_seconds
        while wait_deliveries and phase_keys_missing:
            self._drain_arrivals(0.1)
            progress.update(delivered, completed=len(keys) - len(phase_keys_missing))
            if time.monotonic() - self.deliveries.last_progress > STALL_SECONDS:
                self.console.print(
                    f"[red]{spec.phase}: no delivery for {STALL_SECONDS:.0f} s; "
                    f"{len(phase_keys_missing)} missing[/]"
                )
                break
            if time.monotonic() > drain_until:
                self.console.print(
                    f"[red]{spec.phase}: {len(phase_keys_missing)} deliveries "
                    f"still missing {self.args.drain_seconds:.0f} s after the "
                    "last receipt (--drain-seconds)[/]"
                )
                break
        progress.update(delivered, total=len(keys), completed=len(keys) - len(phase_keys_missing))
        wall = time.monotonic() - wall_before
        cpu_after = self._cpu()
        self._stop_profiler(profiler, spec.phase, wall)
        firsts = [self.deliveries.first[k] for k in keys if k in self.deliveries.first]
        result = PhaseResult(
            name=spec.phase,
            messages=spec.messages,
            sent=done.get("sent", done["accepted"]),
            accepted=done["accepted"],
            deliveries=len(keys),
            delivered=len(firsts),
            duplicates=sum(self.deliveries.duplicate_of.get(k, 0) for k in keys),
            started=done["started"],
            last_receipt=done["last_receipt"],
            last_delivery=max(firsts, default=done["started"]),
            cpu=self._cpu_shares(cpu_before, cpu_after, wall),
            rss_kb=self.sampler.of_phase(spec.phase),
            errors=done.get("rejected") or done.get("errors") or {},
            latencies=done.get("latencies", []),
            service=done.get("service", []),
        )
        self.results[spec.phase] = result
        for task in (submitted, delivered):
            progress.remove_task(task)
        self.console.print(self._phase_line(result))
        return result

    def _recv_load(
        self,
        wanted: str,
        idle: Callable[[object], None],
        other: Callable[[tuple[Any, ...]], None] | None = None,
    ) -> tuple[Any, ...]:
        while True:
            if self.load_conn.poll(0.05):
                message = self.load_conn.recv()
                if message[0] == wanted:
                    return message
                if message[0] == "error":
                    raise RuntimeError(f"load process failed:\n{message[1]}")
                if other is not None:
                    other(message)
            else:
                if not self.load.is_alive():
                    raise RuntimeError("the load process died")
                if self.gateway is not None and self.gateway.process.poll() is not None:
                    raise RuntimeError("the gateway exited:\n" + self.gateway.log_tail())
                idle(None)

    def _phase_line(self, r: PhaseResult) -> str:
        text = (
            f"[{self.database}] {r.name}: {r.accepted:,} accepted at "
            f"{r.accept_rate:,.0f} msg/s; {r.delivered:,}/{r.deliveries:,} deliveries, "
            f"e2e {r.e2e_rate:,.0f} msg/s"
        )
        if r.latencies:
            text += f"; p50 {r.percentile(50) * 1000:.1f} ms p99 {r.percentile(99) * 1000:.1f} ms"
        if r.errors:
            text += f"; errors {r.errors}"
        return text

    # profiling ------------------------------------------------------------------

    def _start_profiler(self, phase: str) -> subprocess.Popen[bytes] | None:
        if not self.args.profile or phase == "warm-up":
            return None
        assert self.gateway is not None
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out = self._profile_path(phase)
        out.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(self.gateway.pid),
                "--rate",
                str(PROFILE_RATE),
                "--threads",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _profile_path(self, phase: str) -> Path:
        name = phase.replace("@", "-at-").replace(" ", "-")
        return Path(self.args.profile) / f"{self.database}-{name}.txt"

    def _stop_profiler(
        self, profiler: subprocess.Popen[bytes] | None, phase: str, seconds: float
    ) -> None:
        if profiler is None:
            return
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(60)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait()
        out = self._profile_path(phase)
        if out.exists():
            self.profile[phase] = summarize_profile(out, seconds)

    def enrol_pool(self) -> None:
        """Enrol the roster pool (untimed, before any phase); its deliveries to
        the police and procuratorate count as unexpected, not as load."""
        from gateway.client import AgencyClient, build_envelope
        from gateway.security import load_private_pem

        assert self.gateway is not None
        key = load_private_pem(self.pems["judicial"])
        payloads = Payloads(0)
        envelopes = [
            build_envelope("judicial", key, "roster.change", payloads.roster_change(person))
            for person in payloads.pool
        ]
        client = AgencyClient.connect(self.gateway.target, agency="judicial", key=key)
        try:
            with self.console.status(f"[{self.database}] enrolling {len(envelopes)} people"):
                refused = [r for r in client.submit_stream(envelopes) if r.HasField("rejection")]
        finally:
            client.close()
        if refused:
            raise RuntimeError(f"enrolling the roster pool failed: {refused[0].rejection}")

    # the plan -------------------------------------------------------------------

    def run(self, progress: Any) -> None:
        args = self.args
        self.start_gateway()
        self.enrol_pool()
        self.phase(LoadSpec("warm-up", 30, "sequential", threads=3, seed=7), progress)
        if args.soak:
            self.phase(LoadSpec("soak", args.soak, "soak", seed=11), progress)
            self.stop_gateway()
            return
        self.phase(
            LoadSpec("stream", args.messages, "stream", seed=1, cap_seconds=args.stream_seconds),
            progress,
        )
        self.phase(
            LoadSpec(
                "unary@rate",
                int(args.rate * args.rate_seconds),
                "rate",
                rate=args.rate,
                threads=args.rate_threads,
                seed=2,
                cap_seconds=args.rate_seconds * 2,
            ),
            progress,
        )
        self.phase(
            LoadSpec(
                "unary max",
                args.unary_messages,
                "max",
                concurrency=args.concurrency,
                seed=3,
                cap_seconds=args.cap_seconds,
            ),
            progress,
        )
        # Latency below capacity: half of what the max run reached, offered
        # open-loop like unary@rate (at 500 msg/s the gateway is saturated and
        # p99 is queueing time).
        top = self.results["unary max"].accept_rate
        if top > 0:
            rate = max(1.0, round(top * args.below_fraction))
            self.phase(
                LoadSpec(
                    "unary@below",
                    int(rate * args.rate_seconds),
                    "rate",
                    rate=rate,
                    threads=args.rate_threads,
                    seed=5,
                    cap_seconds=args.rate_seconds * 2,
                ),
                progress,
            )
        self.stop_gateway()
        self.start_gateway(naive=True)
        self.phase(
            LoadSpec(
                "naive",
                args.naive_messages,
                "sequential",
                threads=1,
                seed=4,
                cap_seconds=args.cap_seconds,
            ),
            progress,
        )
        self.stop_gateway()

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phases": {name: r.summary() for name, r in self.results.items()},
            "gateway_runs": [
                {k: v for k, v in run.items() if k != "rss_samples"} for run in self.runs
            ],
            "peak_rss_mb": max((run.get("peak_rss_mb", 0) for run in self.runs), default=0),
            "consumer_errors": dict(self.consumer_errors),
            "redelivered": self.deliveries.redelivered,
            "deliveries_not_from_load": {
                s: n for s, n in self.deliveries.senders.items() if s not in SENDERS
            },
            "unexpected_deliveries": self.deliveries.unexpected(),
        }
        stream, naive = self.results.get("stream"), self.results.get("naive")
        if stream and naive and naive.e2e_rate:
            out["ratio_stream_to_naive"] = round(stream.e2e_rate / naive.e2e_rate, 2)
        if self.soak_series:
            out["soak_rss_mb_by_accepted"] = thin(self.soak_series, 21)
        if self.profile:
            out["profile"] = self.profile
        out["rss_series_mb"] = rss_series(self.runs)
        return out


def _end_process(process: Any) -> None:
    process.join(10)
    if process.is_alive():
        process.terminate()
        process.join(5)
    if process.is_alive():
        process.kill()
        process.join()


def thin(series: Sequence[tuple[int, float]], points: int) -> list[tuple[int, float]]:
    if len(series) <= points:
        return [(n, round(mb, 1)) for n, mb in series]
    step = (len(series) - 1) / (points - 1)
    return [
        (series[round(i * step)][0], round(series[round(i * step)][1], 1)) for i in range(points)
    ]


def rss_series(runs: list[dict[str, Any]], points: int = 12) -> dict[str, list[float]]:
    """Per gateway run, RSS (MB) at evenly spaced moments of the run."""
    out = {}
    for index, run in enumerate(runs):
        samples = run.get("rss_samples") or []
        if samples:
            step = max(1, len(samples) // points)
            picked = [*samples[::step][: points - 1], samples[-1]]
            out[f"{index}:{run['settings']}"] = [round(kb / 1024, 1) for _, _, kb in picked]
    return out


def summarize_profile(path: Path, seconds: float, rate: int = PROFILE_RATE) -> dict[str, Any]:
    """Where the gateway's threads were active, from a py-spy raw (collapsed) profile.

    py-spy samples only the thread holding the GIL (``--gil``), so the shares
    are of the phase's wall time and add up to how busy the gateway's one
    Python core was (``gil``; 100 = never idle): per thread (numbered pool
    threads summed), per gateway function including what it calls, and per
    leaf function."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        threads[thread.rstrip("0123456789").rstrip("_-") or thread] += count
        if len(frames) > 1:
            own[_frame(frames[-1])] += count
        for name in {_frame(f) for f in frames[1:] if "gateway/" in f}:
            inclusive[name] += count
    possible = max(seconds * rate, 1.0)

    def share(counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(name, round(100 * n / possible, 1)) for name, n in counter.most_common(top)]

    return {
        "seconds": round(seconds, 1),
        "gil": round(100 * sum(threads.values()) / possible, 1),
        "threads": share(threads, 10),
        "gateway_functions": share(inclusive, 25),
        "leaf_functions": share(own, 15),
        "file": str(path),
    }


def _frame(frame: str) -> str:
    """'fn (path/to/module.py:123)' -> 'fn (module.py)'."""
    name, _, where = frame.partition(" (")
    module = where.rstrip(")").rsplit("/", 1)[-1].split(":")[0]
    return f"{name} ({module})" if module else name


# --- report ---------------------------------------------------------------------


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value else "—"


def fmt_ms(value: float) -> str:
    return "—" if value != value else f"{value * 1000:.1f}"


def report_tables(
    console: Any, figures: dict[str, dict[str, Any]], harnesses: list[Harness], host: dict[str, Any]
) -> None:
    from rich.table import Table

    for harness in harnesses:
        if not harness.results:
            continue
        table = Table(
            title=f"{harness.database} — gateway as its own process", title_justify="left"
        )
        for column, justify in (
            ("phase", "left"),
            ("accepted/sent", "right"),
            ("accepted msg/s", "right"),
            ("e2e msg/s", "right"),
            ("deliveries", "right"),
            ("dups", "right"),
            ("p50 ms", "right"),
            ("p99 ms", "right"),
            ("max ms", "right"),
            ("RSS MB min–max", "right"),
            ("CPU % gw / load / cons / pg / mq / other", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for r in harness.results.values():
            cpu = r.cpu
            table.add_row(
                r.name,
                f"{r.accepted:,}/{r.sent:,}" + ("" if r.sent == r.messages else "*"),
                fmt_rate(r.accept_rate),
                fmt_rate(r.e2e_rate),
                f"{r.delivered:,}/{r.deliveries:,}",
                str(r.duplicates),
                fmt_ms(r.percentile(50)) if r.latencies else "",
                fmt_ms(r.percentile(99)) if r.latencies else "",
                fmt_ms(max(r.latencies)) if r.latencies else "",
                f"{min(r.rss_kb, default=0) / 1024:.0f}–{max(r.rss_kb, default=0) / 1024:.0f}",
                " / ".join(
                    f"{cpu.get(k, 0):.0f}"
                    for k in ("gateway", "load", "consumer", "postgres", "rabbitmq", "other")
                ),
            )
        console.print(table)
        f = figures[harness.database]
        peak = f["peak_rss_mb"]
        console.print(
            f"  peak gateway RSS (VmHWM) {peak:.0f} MB; RSS through each run (MB): "
            + "; ".join(f"{k} {v}" for k, v in f["rss_series_mb"].items())
        )
        if "ratio_stream_to_naive" in f:
            console.print(f"  stream e2e ÷ naive e2e = {f['ratio_stream_to_naive']:.1f}×")
        if f.get("soak_rss_mb_by_accepted"):
            console.print(
                "  soak RSS (accepted → MB): "
                + ", ".join(f"{n:,}→{mb}" for n, mb in f["soak_rss_mb_by_accepted"])
            )
        extra = []
        if f["consumer_errors"]:
            extra.append(f"consumer errors {f['consumer_errors']}")
        if f["deliveries_not_from_load"]:
            extra.append(f"deliveries from other senders {f['deliveries_not_from_load']}")
        if f["redelivered"]:
            extra.append(f"redelivered flags {f['redelivered']}")
        for run in f["gateway_runs"]:
            levels = {
                k: v
                for k, v in run.get("log_levels", {}).items()
                if k in ("warning", "error", "critical")
            }
            if levels or run.get("exit_code") not in (0, None):
                extra.append(
                    f"gateway ({run['settings']}) exit {run.get('exit_code')}, log {levels}"
                )
        for line in extra:
            console.print(f"  [yellow]{line}[/]")
        for phase, prof in harness.profile.items():
            console.print(
                f"  py-spy over the {phase} phase ({prof['seconds']} s, {prof['file']}): "
                f"the GIL was held {prof['gil']:g} % of the time; % = share of the phase:"
            )
            for title, key, top in (
                ("threads", "threads", 8),
                ("gateway functions (incl. callees)", "gateway_functions", 16),
                ("leaf functions", "leaf_functions", 10),
            ):
                console.print(
                    f"    {title}: " + ", ".join(f"{n} {v:g}" for n, v in prof[key][:top])
                )
    console.print(
        f"machine: {host['nproc']} × {host['cpu_model']}, {host['memory_mb']:,} MB, "
        f"load average at start {host['load_average_at_start'][0]}, code {host['revision']}, "
        f"Linux {host['kernel']}, Python {host['python']}, "
        + ", ".join(f"{k} {v}" for k, v in host.get("services", {}).items())
    )


def verdicts(
    figures: dict[str, dict[str, Any]], soak: bool, rate_seconds: float
) -> list[tuple[str, bool | None, str]]:
    def phase(db: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = figures.get(db, {}).get("phases", {}).get(name) or {}
        return found

    lines: list[tuple[str, bool | None, str]] = []
    dbs = [db for db in ("sqlite", "postgresql") if db in figures]
    if not soak:
        stream = phase("postgresql", "stream")
        if stream:
            value = stream["e2e_messages_per_second"]
            others = "; ".join(
                f"{db} {phase(db, 'stream')['e2e_messages_per_second']:,.0f}"
                for db in dbs
                if db != "postgresql" and phase(db, "stream")
            )
            lines.append(
                (
                    f"≥ {TARGET_STREAM_E2E:,.0f} msg/s e2e via SubmitStream on PostgreSQL",
                    value >= TARGET_STREAM_E2E,
                    f"{value:,.0f} msg/s" + (f" ({others})" if others else ""),
                )
            )
        else:
            lines.append(
                (
                    f"≥ {TARGET_STREAM_E2E:,.0f} msg/s e2e via SubmitStream on PostgreSQL",
                    None,
                    "PostgreSQL not run",
                )
            )
        parts, met = [], []
        for db in dbs:
            rate, top = phase(db, "unary@rate"), phase(db, "unary max")
            if rate and top:
                p99 = rate["latency_ms"]["p99"]
                ok = top["accepted_per_second"] >= TARGET_UNARY and p99 < TARGET_P99_MS
                met.append(ok)
                parts.append(
                    f"{db} {top['accepted_per_second']:,.0f} msg/s max, p99 {p99:,.1f} ms "
                    f"at {rate['messages_planned'] / rate_seconds:,.0f} msg/s offered "
                    f"({rate['accepted']:,} of {rate['messages_planned']:,} accepted)"
                )
        lines.append(
            (
                f"≥ {TARGET_UNARY:,.0f} msg/s unary, p99 < {TARGET_P99_MS:.0f} ms at 500 msg/s",
                all(met) if met else None,
                "; ".join(parts),
            )
        )
        below = [
            f"{db} p50 {b['latency_ms']['p50']:,.1f} ms, p99 {b['latency_ms']['p99']:,.1f} ms "
            f"at {b['messages_planned'] / rate_seconds:,.0f} msg/s offered"
            for db in dbs
            if (b := phase(db, "unary@below"))
        ]
        if below:
            lines.append(("(for reference) unary latency below capacity", None, "; ".join(below)))
        parts, met = [], []
        for db in dbs:
            ratio = figures[db].get("ratio_stream_to_naive")
            if ratio:
                met.append(ratio >= TARGET_RATIO)
                parts.append(
                    f"{db} {ratio:.1f}× ({phase(db, 'stream')['e2e_messages_per_second']:,.0f}"
                    f" ÷ {phase(db, 'naive')['e2e_messages_per_second']:,.0f})"
                )
        lines.append(
            (
                f"≥ {TARGET_RATIO:.0f}× the naive path (stream e2e ÷ naive e2e)",
                all(met) if met else None,
                "; ".join(parts),
            )
        )
    parts, met = [], []
    for db in dbs:
        peak = figures[db]["peak_rss_mb"]
        met.append(peak < TARGET_RSS_MB)
        series = figures[db].get("soak_rss_mb_by_accepted")
        if series and len(series) >= 3:
            tenth = series[len(series) // 10][1]
            parts.append(
                f"{db} peak {peak:.0f} MB, {tenth:.0f}→{series[-1][1]:.0f} MB "
                f"from {series[len(series) // 10][0]:,} to {series[-1][0]:,} accepted"
            )
        else:
            parts.append(f"{db} peak {peak:.0f} MB")
    note = "" if soak else " (flatness over 1,000,000: run --soak)"
    lines.append(
        (
            f"gateway RSS < {TARGET_RSS_MB:.0f} MB{' and flat' if soak else ''}",
            all(met) if met else None,
            "; ".join(parts) + note,
        )
    )
    return lines


# --- main -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="\n\n".join(__doc__.split("\n\n")[:2]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Phases, figures and cleanup are described at the top of benchmarks/throughput.py.",
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--messages",
        type=int,
        default=40_000,
        help="messages in the SubmitStream run (default 40000), all signed before it starts",
    )
    parser.add_argument(
        "--stream-seconds",
        type=float,
        default=30.0,
        help="stop sending in the stream run after this long, if --messages are not all "
        "sent by then (default 30; keeps the default run under 10 minutes on a slow gateway)",
    )
    parser.add_argument(
        "--rate", type=float, default=500.0, help="offered unary rate, msg/s (default 500)"
    )
    parser.add_argument(
        "--rate-seconds", type=float, default=10.0, help="length of the fixed-rate run (default 10)"
    )
    parser.add_argument(
        "--below-fraction",
        type=float,
        default=0.5,
        help="offered rate of the below-capacity unary phase, as a fraction of the "
        "unary-max rate reached (default 0.5)",
    )
    parser.add_argument(
        "--rate-threads",
        type=int,
        default=16,
        help="client threads of the fixed-rate run (default 16)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="unary calls in flight in the max-throughput run (default 64)",
    )
    parser.add_argument(
        "--unary-messages",
        type=int,
        default=8_000,
        help="messages in the max-throughput unary run (default 8000)",
    )
    parser.add_argument(
        "--naive-messages",
        type=int,
        default=1_500,
        help="messages in the naive reference run (default 1500)",
    )
    parser.add_argument(
        "--cap-seconds",
        type=float,
        default=15.0,
        help="stop sending after this long in the unary-max and naive runs (default 15; "
        "the rate run stops sending at 2× --rate-seconds)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=120.0,
        help="wait at most this long after the last receipt for deliveries (default 120)",
    )
    parser.add_argument(
        "--soak",
        type=int,
        default=0,
        metavar="N",
        help="instead of the phases, stream N messages and follow the RSS",
    )
    parser.add_argument(
        "--readers", type=int, default=1, help="Receive streams per recipient inbox (default 1)"
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=500, help="Receive max_in_flight (default 500)"
    )
    parser.add_argument(
        "--ack-batch", type=int, default=200, help="delivery ids per Acknowledge call (default 200)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SILIAN_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="PostgreSQL to make a schema in (dropped at the end)",
    )
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("SILIAN_BENCH_AMQP_URL", DEFAULT_AMQP_URL),
        help="RabbitMQ",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record the gateway with py-spy (GIL holder only) during each measured phase",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the data directories (gateway logs) for inspection",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    args = parse_args(argv)
    console = Console(width=max(160, Console().width))
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    host = machine() | {"services": service_versions(args.postgres_url, args.amqp_url)}
    console.print(
        f"silian throughput benchmark: {', '.join(databases)}; "
        f"{host['nproc']} × {host['cpu_model']}"
    )

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    figures: dict[str, dict[str, Any]] = {}
    harnesses: list[Harness] = []
    started = time.monotonic()
    failed = False
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            for database in databases:
                harness = Harness(database, args, console)
                harnesses.append(harness)
                try:
                    with harness:
                        try:
                            harness.run(progress)
                        finally:
                            harness.stop_gateway()
                            figures[database] = harness.figures()
                except Exception as exc:  # report it, clean up, go on with the next database
                    failed = True
                    console.print(f"[red][{database}] failed: {exc!r}[/]")
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaned up[/]")
        return 130
    elapsed = time.monotonic() - started
    report_tables(console, figures, harnesses, host)
    console.print(f"\n[bold]targets[/] (issue 3), {elapsed / 60:.1f} min:")
    lines = verdicts(figures, bool(args.soak), args.rate_seconds)
    for target, met, detail in lines:
        mark = "[green]met[/]" if met else "[red]not met[/]" if met is False else "[dim]n/a[/]"
        console.print(f"  {mark:>18}  {target}: {detail}")
    if args.json:
        document = {
            "machine": host,
            "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "elapsed_seconds": round(elapsed, 1),
            "databases": figures,
            "targets": [{"target": t, "met": m, "detail": d} for t, m, d in lines],
        }
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False))
        console.print(f"figures written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One database's run: a data directory, database and broker prefix of its
own, the gateway as its own process, the load and consumer processes, and
the phases."""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import queue
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.throughput.consumer import consumer_process
from benchmarks.throughput.load import LoadSpec, load_process
from benchmarks.throughput.machine import (
    RssSampler,
    cpu_seconds,
    cpu_shares,
    machine_cpu_seconds,
    proc_status,
    process_tree,
    service_cpu_seconds,
    tree_cpu_seconds,
)
from benchmarks.throughput.mix import RECIPIENTS, SENDERS, LoadPayloads, expected_deliveries
from benchmarks.throughput.profile import Profiler
from benchmarks.throughput.results import Deliveries, PhaseResult, rss_series, thin
from gateway import bootstrap
from gateway.client import AgencyClient, build_envelope
from gateway.client.keys import gateway_keys
from gateway.config import Settings
from gateway.domain import kinds
from gateway.security import load_private_pem, private_to_pem
from gateway.testing import (
    GatewayProcess,
    delete_broker_names,
    postgres_schema,
    register_principals,
)

#: No progress for this long while waiting for deliveries ends the wait.
STALL_SECONDS = 60.0
#: The gateway's allowed clock skew in the benchmark (pre-signed messages age).
CLOCK_SKEW_SECONDS = 3600


class Harness:
    """One database: data dir, schema, prefix, gateway runs and the phases."""

    def __init__(self, database: str, args: argparse.Namespace, console: Any) -> None:
        self.database = database
        self.args = args
        self.console = console
        self.stack = contextlib.ExitStack()
        self.prefix = f"throughput-{uuid.uuid4().hex[:8]}"
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
        self.profiler = Profiler(Path(args.profile), database) if args.profile else None
        self.profile: dict[str, Any] = {}
        self.soak_series: list[tuple[int, float]] = []

    # setting up and tearing down ------------------------------------------------

    def __enter__(self) -> Harness:
        self.stack.callback(self._remove_data_dir)
        self.stack.callback(self._delete_broker_names)
        try:
            if self.database == "postgresql":
                self.database_url = self.stack.enter_context(
                    postgres_schema(self.args.postgres_url, "throughput")
                )
            else:
                self.database_url = f"sqlite:///{self.data_dir / 'silian.db'}"
            keys = register_principals(self._settings())
            self.pems = {agency: private_to_pem(keys[agency]) for agency in (*SENDERS, *RECIPIENTS)}
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_gateway()
        self.stack.close()

    def _delete_broker_names(self) -> None:
        agencies = bootstrap.recipients(bootstrap.load_policy(self._settings()))
        delete_broker_names(self.args.amqp_url, self.prefix, agencies)

    def _remove_data_dir(self) -> None:
        if self.args.keep:
            self.console.print(f"[dim]kept {self.data_dir}[/]")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            amqp_url=self.args.amqp_url,
            broker_prefix=self.prefix,
        )

    @staticmethod
    def env(naive: bool) -> dict[str, str]:
        """The gateway's settings beyond database and broker: the default ones, or
        the naive reference's (one commit and one blocking confirm per message)."""
        env = {
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

    def start_gateway(self, naive: bool = False, workers: int = 0) -> None:
        """Start ``silian serve`` (``--workers N`` when ``workers``) and the load
        and consumer processes."""
        label = "naive" if naive else f"{workers} workers" if workers else "default"
        self.runs.append({"settings": label})
        with self.console.status(f"[{self.database}] starting the gateway ({label} settings)"):
            self.gateway = GatewayProcess(
                self._settings(),
                self.env(naive),
                self.data_dir / f"gateway-{label.replace(' ', '-')}.log",
                args=["--workers", str(workers)] if workers else [],
            )
            self.gateway.start()
            self.sampler = RssSampler(self.gateway.pid)
            self._start_workers()
        self.runs[-1]["pid"] = self.gateway.pid

    def _start_workers(self) -> None:
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
            running = self.gateway.running()
            # With --workers: the largest peak of the supervisor and its workers
            # (the RSS target is per gateway process; the samples sum them).
            members = process_tree(self.gateway.pid) if running else []
            peak_kb = max((proc_status(m).get("VmHWM", 0) for m in members), default=0)
            code = self.gateway.stop(30.0)
            self.runs[-1] |= {
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "exit_code": code,
                "log_levels": dict(log_levels(self.gateway.log_path)),
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
            "gateway": tree_cpu_seconds(self.gateway.pid),
            "load": cpu_seconds(self.load.pid),
            "consumer": cpu_seconds(self.consumer.pid),
            "harness": cpu_seconds(os.getpid()),
            **service_cpu_seconds(),
            "machine": machine_cpu_seconds(),
        }

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
        recording = (
            self.profiler.start(self.gateway.pid, spec.phase)
            if self.profiler and spec.phase != "warm-up"
            else None
        )
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
        if (
            self.profiler
            and recording
            and (summary := self.profiler.stop(recording, spec.phase, wall))
        ):
            self.profile[spec.phase] = summary
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
            cpu=cpu_shares(cpu_before, cpu_after, wall),
            rss_kb=self.sampler.of_phase(spec.phase),
            errors=done.get("rejected") or done.get("errors") or {},
            latencies=done.get("latencies", []),
            service=done.get("service", []),
            delivery_latencies=[
                self.deliveries.first[k] - self.deliveries.receipted[k]
                for k in keys
                if k in self.deliveries.first and k in self.deliveries.receipted
            ],
            wall_seconds=wall,
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
                if self.gateway is not None and not self.gateway.running():
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

    def enrol_pool(self) -> None:
        """Enrol the roster pool (untimed, before any phase); its deliveries to
        the police and procuratorate count as unexpected, not as load."""
        assert self.gateway is not None
        key = load_private_pem(self.pems["judicial"])
        payloads = LoadPayloads(0)
        envelopes = [
            build_envelope("judicial", key, kinds.ROSTER_CHANGE, payloads.roster_change(person))
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

    def run_replicas(self, progress: Any) -> None:
        """The stream phase once per worker count of ``--workers`` (``serve
        --workers N`` on one port), each stream on a connection of its own."""
        args = self.args
        for number, workers in enumerate(args.workers):
            self.start_gateway(workers=workers)
            if number == 0:
                self.enrol_pool()
            self.phase(
                LoadSpec(f"warm-up ×{workers}", 30, "sequential", threads=3, seed=7), progress
            )
            self.phase(
                LoadSpec(
                    f"stream ×{workers}",
                    args.messages,
                    "stream",
                    seed=1 + 10 * workers,
                    cap_seconds=args.stream_seconds,
                    spread=True,
                ),
                progress,
            )
            self.stop_gateway()

    def run(self, progress: Any) -> None:
        args = self.args
        if args.workers:
            self.run_replicas(progress)
            return
        self.start_gateway()
        self.enrol_pool()
        self.phase(LoadSpec("warm-up", 30, "sequential", threads=3, seed=7), progress)
        if args.soak:
            self.phase(LoadSpec("soak", args.soak, "soak", seed=11), progress)
            self.stop_gateway()
            return
        # Latency at low load: a fixed, modest rate, open-loop, before anything
        # has filled queues or tables.
        self.phase(
            LoadSpec(
                "low",
                int(args.low_rate * args.low_seconds),
                "rate",
                rate=args.low_rate,
                threads=4,
                seed=6,
                cap_seconds=args.low_seconds * 2,
            ),
            progress,
        )
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


def log_levels(path: Path) -> Counter[str]:
    """The gateway's JSON log lines in ``path`` by level (warning, error …)."""
    counts: Counter[str] = Counter()
    with contextlib.suppress(OSError), path.open("rb") as handle:
        for line in handle:
            if line.startswith(b"{"):
                with contextlib.suppress(ValueError):
                    counts[json.loads(line).get("level", "?")] += 1
    return counts

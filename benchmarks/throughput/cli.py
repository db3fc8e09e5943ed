"""The command line: options, the run over the databases, the report and JSON."""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import benchmarks.throughput
from benchmarks.throughput.harness import Harness
from benchmarks.throughput.machine import machine, service_versions
from benchmarks.throughput.report import replica_line, report_tables, verdicts
from gateway.testing import LOCAL_AMQP_URL, LOCAL_POSTGRES_URL


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected counts like 1,2") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: counts must be at least 1")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options; ``--help`` shows the first two paragraphs of the package's docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput",
        description="\n\n".join((benchmarks.throughput.__doc__ or "").split("\n\n")[:2]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Phases, figures and cleanup are described in benchmarks/throughput/__init__.py.",
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
        "--low-rate",
        type=float,
        default=50.0,
        help="offered unary rate of the low-load latency phase 'low', msg/s (default 50)",
    )
    parser.add_argument(
        "--low-seconds", type=float, default=10.0, help="length of the 'low' phase (default 10)"
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
        "--workers",
        type=_counts,
        default=[],
        metavar="N[,N…]",
        help="instead of the phases, run the stream phase once per count, the gateway "
        "started as `silian serve --workers N` (N replicas on one port; PostgreSQL only), "
        "e.g. --workers 1,2 --database postgresql",
    )
    parser.add_argument(
        "--readers", type=int, default=1, help="Subscribe streams per recipient inbox (default 1)"
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=500, help="Subscribe max_in_flight (default 500)"
    )
    parser.add_argument(
        "--ack-batch", type=int, default=200, help="delivery ids per Acknowledge call (default 200)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SILIAN_BENCH_POSTGRES_URL", LOCAL_POSTGRES_URL),
        help="PostgreSQL to make a schema in (dropped at the end)",
    )
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("SILIAN_BENCH_AMQP_URL", LOCAL_AMQP_URL),
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
    """Run every database asked for, print the tables and verdicts, write the JSON;
    1 if a database's run failed, 130 on Ctrl-C."""
    args = parse_args(argv)
    console = Console(width=max(160, Console().width))
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    if args.workers and "sqlite" in databases:
        console.print("--workers runs replicas, which need PostgreSQL: --database postgresql")
        return 2
    host = machine() | {"services": service_versions(args.postgres_url, args.amqp_url)}
    console.print(
        f"silian throughput benchmark: {', '.join(databases)}; "
        f"{host['nproc']} × {host['cpu_model']}"
    )

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    for ending in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal too: clean up
        signal.signal(ending, interrupted)
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
    if args.workers:
        console.print(replica_line(figures.get("postgresql", {}), args.workers))
    console.print(f"\n[bold]targets[/] (issue 14), {elapsed / 60:.1f} min:")
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

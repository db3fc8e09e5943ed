"""``silian demo`` and ``silian report``: the simulated period and its report."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from gateway import logs
from gateway.cli.errors import one_line_errors
from gateway.cli.options import console, target_option
from gateway.cli.options import current_settings as _settings


@click.command()
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=30,
    show_default=True,
    help="Length of the simulated period (it ends today).",
)
@click.option(
    "--people",
    type=click.IntRange(13, 100_000),
    default=2000,
    show_default=True,
    help="People under supervision across the units.",
)
@click.option("--seed", type=int, help="Random seed (default: a new one, printed).")
@click.option(
    "--speed",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Simulated days per second (0: as fast as the gateway takes them).",
)
@target_option
@click.option("--verbose", is_flag=True, help="Show the gateway's log lines too.")
@one_line_errors
def demo(
    days: int, people: int, seed: int | None, speed: float, target: str | None, verbose: bool
) -> None:
    """Start the gateway (SQLite, local RabbitMQ) over mTLS, with a CA and
    certificates made in <data-dir>/tls, or use a running one (--target; over mTLS
    with the certificates there if there are any), register the five principals
    with fresh keys and play a compressed period of the four linkages for PEOPLE
    people across the units: roster, referrals, police checks, inspections, partner
    services. Prints the period's figures, verifies the
    audit log offline and writes report.html into the data directory; exits 1 if any
    message was refused or not delivered, or the audit log does not verify."""
    from gateway.demo import DemoOptions, run_demo

    if not verbose:
        logs.configure(_settings().log_format, level=logging.WARNING)
    options = DemoOptions(days=days, people=people, seed=seed, speed=speed, target=target)
    sys.exit(run_demo(_settings(), console, options))


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (default: report.html in the data directory).",
)
@click.option("--unit", help="Only this unit's messages (a configured unit code).")
@click.option(
    "--since", type=click.DateTime(), help="Only messages accepted since this time (UTC)."
)
@one_line_errors
def report(out: Path | None, unit: str | None, since: datetime | None) -> None:
    """Write the exchange report — messages by linkage and kind, alerts, inspection
    findings, partner services, police hits, delivery latency, the last audit
    checkpoint — as one self-contained HTML page (no scripts, no external assets)."""
    from gateway import bootstrap
    from gateway.reporting.html import write_report
    from gateway.reporting.period import summarize

    settings = _settings()
    units = bootstrap.load_units(settings)
    if unit is not None and unit not in units:
        valid = ", ".join(f"{u.code} {u.name}" for u in units)
        raise click.BadParameter(
            f"{unit!r} is not a configured unit; valid: {valid}", param_hint="--unit"
        )
    store = bootstrap.open_store(settings)
    summary = summarize(store, units, since=since and since.replace(tzinfo=UTC), unit=unit)
    path = write_report(summary, out or settings.data_dir / "report.html")
    console.print(f"wrote {path} ({summary.accepted} messages)")

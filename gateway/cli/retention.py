"""``silian retention run``: purge the payloads of people whose supervision
ended more than ``retention_years`` ago (the gateway does it daily too)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click

from gateway.cli.errors import one_line_errors
from gateway.cli.options import console
from gateway.cli.options import current_settings as _settings


@click.group()
def retention() -> None:
    """Retention of personal data (setting retention_years)."""


@retention.command("run")
@click.option(
    "--years",
    type=click.IntRange(1, 100),
    default=None,
    help="Purge data of people whose supervision ended more than this many years ago "
    "(default: the retention_years setting).",
)
@click.option(
    "--dry-run", is_flag=True, help="Only say how many people and messages it would purge."
)
@one_line_errors
def retention_run(years: int | None, dry_run: bool) -> None:
    """Purge the payloads (and delivery bodies, pseudonyms and linkage state) of
    people released or terminated more than --years ago and not enrolled again.
    A message naming anyone else is kept. Receipts, digests and the audit log stay:
    each purge is an audit entry, and the log still verifies."""
    from gateway import bootstrap
    from gateway.domain.calendar import local_date
    from gateway.service import retention as service

    settings = _settings()
    years = years or settings.retention_years
    if years <= 0:
        raise click.ClickException("retention is off (retention_years = 0); pass --years N")
    store = bootstrap.open_store(settings)
    now = datetime.now(UTC)
    purged = service.run(
        store,
        subject_key=bootstrap.subject_keys(settings),
        years=years,
        today=local_date(now, ZoneInfo(settings.timezone)),
        now=now,
        dry_run=dry_run,
    )
    verb = "would purge" if dry_run else "purged"
    console.print(
        f"{verb} {purged.messages} messages of {purged.people} people whose supervision "
        f"ended more than {years} years ago",
        highlight=False,
    )

"""``silian status``: the exchange at a glance for a person — replicas, lease
holders, outbox lag, dead letters, the audit log's last checkpoint."""

from __future__ import annotations

import click
from rich.table import Table

from gateway import metrics
from gateway.cli.errors import one_line_errors
from gateway.cli.options import console
from gateway.cli.options import current_settings as _settings


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@click.command()
@one_line_errors
def status() -> None:
    """Show the exchange at a glance: the gateway replicas seen in the last 10 s, which
    replica holds each duty that runs once (relay, sweep, checkpoint), outbox rows not
    yet published and the oldest one's age, each agency's dead letters, and the audit
    log's size and last checkpoint, and a warning when PostgreSQL runs without
    autovacuum. Reads the database and the broker of the settings; needs no running
    gateway."""
    from gateway import bootstrap
    from gateway.broker.topology import Names
    from gateway.rpc.observe import take_snapshot
    from gateway.store import db

    settings = _settings()
    store = bootstrap.open_store(settings, migrate=False)
    agencies = bootstrap.recipients(bootstrap.load_policy(settings))
    snapshot = take_snapshot(store, settings.amqp_url, Names(settings.broker_prefix), agencies)
    vacuum_off = db.autovacuum_off(store.engine)
    store.engine.dispose()

    replicas = Table(title=f"Replicas seen ({len(snapshot.replicas)})")
    for column in ("replica", "listen", "started", "last seen"):
        replicas.add_column(column)
    for replica in snapshot.replicas:
        replicas.add_row(
            replica.id,
            replica.listen,
            f"{replica.started_at:%Y-%m-%d %H:%M:%S}",
            f"{_age(replica.age_seconds)} ago",
        )
    console.print(replicas)

    duties = Table(title="Leases (duties that run once)")
    for column in ("duty", "holder", "epoch", "state"):
        duties.add_column(column)
    for lease in snapshot.leases:
        duties.add_row(
            lease.name, lease.holder, str(lease.epoch), "expired" if lease.expired else "held"
        )
    console.print(duties)

    figures = Table(title="Lags and depths", show_header=False)
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    figures.add_row("outbox rows not yet published", str(snapshot.outbox_pending))
    figures.add_row("oldest of them", _age(snapshot.outbox_oldest_seconds))
    for agency, depth in sorted(snapshot.dead_letters.items()):
        figures.add_row(f"dead letters of {agency}", str(depth))
    figures.add_row("audit log entries", str(snapshot.audit_size))
    if snapshot.checkpoint_size is None:
        figures.add_row("last checkpoint", "none yet")
    else:
        figures.add_row(
            "last checkpoint",
            f"size {snapshot.checkpoint_size}, {_age(metrics.since(snapshot.checkpoint_made))} ago"
            f" ({snapshot.audit_size - snapshot.checkpoint_size} entries since)",
        )
    console.print(figures)
    if vacuum_off:
        console.print(f"[yellow]warning:[/] {db.AUTOVACUUM_OFF}")
    for source, problem in snapshot.errors.items():
        console.print(f"[red]{source} unreachable:[/red] {problem}")
    if snapshot.errors:
        raise SystemExit(1)

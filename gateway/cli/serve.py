"""``silian serve`` and ``silian db``: run the gateway, migrate its database."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from gateway.cli.errors import one_line_errors
from gateway.cli.options import console
from gateway.cli.options import current_settings as _settings
from gateway.config import load_settings


@click.command()
@click.option("--listen", help="Address to listen on (default 127.0.0.1:7443).")
@click.option("--database-url", help="SQLAlchemy URL (env SILIAN_DATABASE_URL).")
@click.option("--amqp-url", help="RabbitMQ URL (env SILIAN_AMQP_URL).")
@click.option("--broker-prefix", help="Prefix of all exchange and queue names.")
@click.option(
    "--tls-cert",
    help="Server certificate chain (PEM); enables TLS. Re-read when it changes or on SIGHUP.",
)
@click.option("--tls-key", help="Server private key (PEM).")
@click.option("--client-ca", help="CA bundle of client certificates; requires mTLS.")
@click.option(
    "--insecure-plaintext-on-network",
    is_flag=True,
    help="Serve without TLS on an address other hosts can reach (refused otherwise). "
    "Identities and tokens then cross the network in clear: a closed test network only.",
)
@click.option("--reflection/--no-reflection", default=None, help="Serve gRPC reflection.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Run N gateway processes sharing the listen port (SO_REUSEPORT), to use "
    "every core of this host; needs PostgreSQL. Each is a replica like a gateway "
    "on another host.",
)
@one_line_errors
def serve(workers: int | None, **options: Any) -> None:
    """Run the gateway: gRPC Exchange, health, outbox relay. Stops on Ctrl-C/SIGTERM,
    draining calls in flight.

    Any number of gateways (replicas) may share one PostgreSQL database, one
    broker and one keys/ directory; the duties that must run once (relay,
    sweep, checkpoints) move to another replica within seconds when one dies.
    On SQLite only one gateway process may serve the database file."""
    from gateway.rpc.tls import check_listen

    # Not given is not "False": the setting in config.toml still counts.
    options["insecure_plaintext_on_network"] = options["insecure_plaintext_on_network"] or None
    settings = load_settings(_settings().data_dir, log_format=_settings().log_format, **options)
    check_listen(settings)
    if workers is not None:
        from gateway.cli.workers import run_workers

        given = {f"SILIAN_{k.upper()}": str(v) for k, v in options.items() if v is not None}
        raise SystemExit(run_workers(settings, workers, given))
    from gateway import bootstrap
    from gateway.rpc.server import serve as run_server

    gateway = bootstrap.build(settings)
    asyncio.run(run_server(gateway))


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply migrations up to the newest schema (idempotent); personal data
    already stored is encrypted with the data key on the way (0004)."""
    from gateway import bootstrap
    from gateway.store import db as database

    settings = _settings()
    store = bootstrap.open_store(settings, migrate=False)
    engine = store.engine
    database.upgrade(engine, data_keys=store.data_keys)
    console.print(f"schema at revision {database.current_revision(engine)}")

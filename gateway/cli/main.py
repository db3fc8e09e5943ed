"""The ``silian`` command line. Every command explains itself with --help."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway import logs
from gateway.config import Settings, load_settings
from gateway.domain import kinds
from gateway.domain.errors import GatewayError
from gateway.security import keys as keyring
from gateway.security.keyfiles import write_new_key

F = TypeVar("F", bound=Callable[..., Any])
# Tables stay readable when the output is a pipe or a CI log (80 columns otherwise).
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)

ROLES = ("agency", "auditor")
#: Import names of the packages of the `server` extra (pyproject.toml): an
#: agency's install lacks them, and the gateway's commands say so.
SERVER_PACKAGES = frozenset({"sqlalchemy", "alembic", "psycopg", "pika", "grpc_health"})
SERVER_INSTALL = "pip install 'silian-gateway[server]'"


def _fail(message: str) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    sys.exit(1)


def describe_rpc_error(err: grpc.RpcError) -> str:
    """One readable line: status, reason and every field violation."""
    status = rpc_status.from_call(err)
    text = f"{err.code().name}: {err.details()}"
    for detail in status.details if status else []:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            text += f" [{info.reason}]"
        elif detail.Unpack(bad):
            text += "".join(f"\n  {v.field}: {v.description}" for v in bad.field_violations)
    return text


def _server_missing(err: ModuleNotFoundError) -> str | None:
    """What to tell someone running a gateway command where only the agency side
    is installed; None if ``err`` is about something else."""
    if (err.name or "").split(".")[0] not in SERVER_PACKAGES:
        return None
    return f"{err.name} is not installed, and this is a gateway command: {SERVER_INSTALL}"


def friendly_errors(fn: F) -> F:
    """Report expected failures as one clear line, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ModuleNotFoundError as err:
            message = _server_missing(err)
            if message is None:
                raise
            _fail(message)
        except GatewayError as err:
            _fail(f"{err.reason}: {err.message}")
        except grpc.RpcError as err:
            _fail(describe_rpc_error(err))
        except (OSError, ValueError) as err:
            _fail(str(err))

    return wrapper  # type: ignore[return-value]


class _LazyGroup(click.Group):
    """A group whose command modules are imported only when one is run (or help
    lists them): ``silian <agency> …`` on an agency's front-end processor then
    loads no server dependency (SQLAlchemy, pika, Alembic), and a gateway command
    where they are not installed says so."""

    #: Command name → "module:attribute" of its click command.
    LAZY: ClassVar[dict[str, str]] = {
        "audit": "gateway.cli.audit:audit",
        "send": "gateway.cli.messages:send",
        "receive": "gateway.cli.messages:receive",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.LAZY:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.LAZY[cmd_name].partition(":")
        try:
            command = getattr(importlib.import_module(module), attribute)
        except ModuleNotFoundError as err:
            message = _server_missing(err)
            if message is None:
                raise
            return click.Command(
                cmd_name,
                help=f"(not installed here: {SERVER_INSTALL})",
                callback=lambda: _fail(message),
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            )
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SILIAN_HOME",
    default=None,
    help="Folder with config.toml, policy.toml, keys and the SQLite file "
    "(env SILIAN_HOME; default ./.silian).",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "console"]),
    default=None,
    help="Log lines as JSON (production) or for a console.",
)
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, log_format: str | None) -> None:
    """Silian (四联) gateway: signed data exchange between the judicial bureau and
    the police, procuratorate, NGO and detox centre of Baoji."""
    try:
        settings = load_settings(data_dir, log_format=log_format)
    except ValueError as err:
        _fail(str(err))
    logs.configure(settings.log_format)
    ctx.obj = settings


def _settings() -> Settings:
    settings = click.get_current_context().obj
    assert isinstance(settings, Settings)
    return settings


# --- serve and db -------------------------------------------------------------


@main.command()
@click.option("--listen", help="Address to listen on (default 127.0.0.1:7443).")
@click.option("--database-url", help="SQLAlchemy URL (env SILIAN_DATABASE_URL).")
@click.option("--amqp-url", help="RabbitMQ URL (env SILIAN_AMQP_URL).")
@click.option("--broker-prefix", help="Prefix of all exchange and queue names.")
@click.option("--tls-cert", help="Server certificate (PEM); enables TLS.")
@click.option("--tls-key", help="Server private key (PEM).")
@click.option("--client-ca", help="CA of client certificates; requires mTLS.")
@click.option("--reflection/--no-reflection", default=None, help="Serve gRPC reflection.")
@friendly_errors
def serve(**options: Any) -> None:
    """Run the gateway: gRPC Exchange, health, outbox relay. Stops on Ctrl-C/SIGTERM,
    draining calls in flight."""
    from gateway import bootstrap
    from gateway.rpc.server import serve as run_server

    settings = load_settings(_settings().data_dir, log_format=_settings().log_format, **options)
    gateway = bootstrap.build(settings)
    asyncio.run(run_server(gateway))


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply migrations up to the newest schema (idempotent)."""
    from gateway.store import db as database

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = database.make_engine(settings.effective_database_url)
    database.upgrade(engine)
    console.print(f"schema at revision {database.current_revision(engine)}")


# --- agencies and keys ----------------------------------------------------------


def _new_key(
    settings: Settings, agency: str, public_key: Path | None, generate: bool
) -> tuple[bytes, str, Path | None]:
    if bool(public_key) == generate:
        raise ValueError("give exactly one of --public-key FILE or --generate-key")
    if public_key:
        public = keyring.load_public_pem(public_key.read_bytes())
        return public, keyring.kid_for(public), None
    key, kid, path = write_new_key(settings, agency)
    return keyring.public_raw(key), kid, path


@main.group()
def agency() -> None:
    """Register agencies and manage their signing keys."""


@agency.command("add")
@click.argument("agency_id")
@click.option("--name", default="", help="Display name.")
@click.option("--role", type=click.Choice(ROLES), default="agency", show_default=True)
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The agency's Ed25519 public key (PEM).",
)
@click.option(
    "--generate-key",
    is_flag=True,
    help="Make a key pair here; the private key is written under "
    "<data-dir>/agency-keys/ID/ for the agency's front-end processor.",
)
@friendly_errors
def agency_add(
    agency_id: str, name: str, role: str, public_key: Path | None, generate_key: bool
) -> None:
    """Register AGENCY_ID (it must be a principal in policy.toml) with a first key."""
    from gateway import bootstrap
    from gateway.service import provision

    settings = _settings()
    policy = bootstrap.load_policy(settings)
    principal = policy.principal(agency_id)
    if principal is None:
        known = ", ".join(p.id for p in policy.principals())
        raise ValueError(
            f"{agency_id!r} is not a principal in {settings.policy_file} (known: {known})"
        )
    store = bootstrap.open_store(settings)
    public, kid, path = _new_key(settings, agency_id, public_key, generate_key)
    provision.add_agency(store, agency_id, name or principal.display_name, role, "operator")
    provision.add_key(store, agency_id, kid, public, "operator")
    console.print(f"registered {agency_id} with key {kid}")
    if path:
        console.print(f"private key: {path}")


@agency.command("add-key")
@click.argument("agency_id")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--generate-key", is_flag=True, help="Make a key pair here (see agency add).")
@friendly_errors
def agency_add_key(agency_id: str, public_key: Path | None, generate_key: bool) -> None:
    """Add another active key to AGENCY_ID (rotation: old keys stay valid until revoked)."""
    from gateway import bootstrap
    from gateway.service import provision

    settings = _settings()
    store = bootstrap.open_store(settings)
    public, kid, path = _new_key(settings, agency_id, public_key, generate_key)
    provision.add_key(store, agency_id, kid, public, "operator")
    console.print(f"added key {kid} to {agency_id}")
    if path:
        console.print(f"private key: {path}")


@agency.command("revoke-key")
@click.argument("agency_id")
@click.argument("kid")
@friendly_errors
def agency_revoke_key(agency_id: str, kid: str) -> None:
    """Revoke KID of AGENCY_ID: tokens and signatures by it are refused from now on."""
    from gateway import bootstrap
    from gateway.service import provision

    provision.revoke_key(bootstrap.open_store(_settings()), agency_id, kid, "operator")
    console.print(f"revoked key {kid} of {agency_id}")


@agency.command("list")
@friendly_errors
def agency_list() -> None:
    """List registered agencies and their keys."""
    from gateway import bootstrap

    store = bootstrap.open_store(_settings())
    table = Table("agency", "role", "name", "key id", "added", "revoked")
    for row in store.agencies():
        for key in [*store.keys_of(row.id)] or [None]:  # type: ignore[list-item]
            table.add_row(
                row.id,
                row.role,
                row.display_name,
                key.kid if key else "-",
                f"{key.created_at:%Y-%m-%d %H:%M}" if key else "",
                f"{key.revoked_at:%Y-%m-%d %H:%M}" if key and key.revoked_at else "",
            )
    console.print(table)


@main.group()
def keys() -> None:
    """The gateway's own keys."""


@keys.command("gateway")
@friendly_errors
def keys_gateway() -> None:
    """Print the gateway's public JWKS (verifies receipts and deliveries)."""
    from gateway import bootstrap

    click.echo(json.dumps(bootstrap.gateway_signer(_settings()).jwks(), indent=2))


# --- the bureau's feed --------------------------------------------------------------


@main.group()
def feed() -> None:
    """The bureau's feed of every accepted message and alert (RabbitMQ topic
    exchange <prefix>.feed and stream <prefix>.feed.stream)."""


def _choice(value: str | None, valid: list[str], what: str) -> str | None:
    if value is not None and value not in valid:
        raise click.BadParameter(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value


def _start(value: str | None) -> int | datetime | str | None:
    if value is None or value in ("first", "last", "next"):
        return value
    if value.isdigit():
        return int(value)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an offset, an ISO time (2026-11-27T08:00), first, last or next"
        ) from None


@feed.command("tail")
@click.option("--unit", help="Only this unit's messages (a county-level code such as 610302).")
@click.option("--kind", help="Only this kind (roster.change, alert, …).")
@click.option(
    "--from",
    "start",
    metavar="OFFSET|TIME|first|last",
    help="Replay the stream from an offset or a time; default: live from now.",
)
@click.option("--max", "limit", type=int, default=0, help="Stop after N messages (0: no limit).")
@click.option(
    "--idle",
    type=float,
    default=0.0,
    help="Stop after this many seconds without a message (0: never).",
)
@friendly_errors
def feed_tail(
    unit: str | None, kind: str | None, start: str | None, limit: int, idle: float
) -> None:
    """Print the feed readably: time, kind, unit, sender, message id, and whether
    the gateway's signature verifies."""
    import threading
    import time

    from gateway import bootstrap
    from gateway.broker.feed import FeedMessage, tail
    from gateway.broker.topology import Names

    settings = _settings()
    _choice(unit, bootstrap.load_units(settings).codes(), "unit")
    _choice(kind, kinds.known_kinds(), "kind")
    public = bootstrap.gateway_signer(settings).public
    stop = threading.Event()
    seen = 0
    last = time.monotonic()

    def show(message: FeedMessage) -> None:
        nonlocal seen, last
        accepted = message.delivery.accepted_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        mark = "✓" if message.verified else "✗ BAD SIGNATURE"
        where = "" if message.offset is None else f"#{message.offset} "
        click.echo(
            f"{where}{accepted}  {message.kind:<26} {message.unit:<7} "
            f"{message.sender:<14} {message.delivery.mid}  {mark}"
        )
        seen += 1
        last = time.monotonic()
        if limit and seen >= limit:
            stop.set()

    def watchdog() -> None:
        while not stop.wait(0.5):
            if idle and time.monotonic() - last > idle:
                stop.set()

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        tail(
            settings.amqp_url,
            Names(settings.broker_prefix),
            public,
            show,
            stop,
            kind=kind,
            unit=unit,
            start=_start(start),
            idle_seconds=0.5,
        )
    except KeyboardInterrupt:
        stop.set()


# --- dead letters ------------------------------------------------------------------


@main.group()
def dlq() -> None:
    """Deliveries a recipient gave back more often than the delivery limit
    (the dead-letter queue of each inbox)."""


def _recipients(agency: str | None) -> list[str]:
    from gateway import bootstrap

    known = bootstrap.recipients(bootstrap.load_policy(_settings()))
    if agency is None:
        return known
    if agency not in known:
        raise ValueError(f"{agency!r} has no inbox; recipients are: {', '.join(known)}")
    return [agency]


@dlq.command("list")
@click.option("--agency", help="Only this recipient's dead letters (default: all).")
@click.option("--limit", type=int, default=100, show_default=True, help="Most shown per agency.")
@friendly_errors
def dlq_list(agency: str | None, limit: int) -> None:
    """Show dead letters (left in place): recipient, message id, kind, sender, deaths."""
    from gateway.broker import consumer, topology
    from gateway.proto.silian.v1 import envelope_pb2

    settings = _settings()
    names = topology.Names(settings.broker_prefix)
    table = Table("recipient", "mid", "kind", "sender", "accepted", "delivery count")
    for recipient in _recipients(agency):
        for letter in consumer.dead_letters(settings.amqp_url, names, recipient, limit):
            delivery = envelope_pb2.Delivery.FromString(letter.body)
            table.add_row(
                recipient,
                letter.mid,
                letter.kind,
                delivery.sender,
                delivery.accepted_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
                str(letter.delivery_count),
            )
    console.print(table)


@dlq.command("replay")
@click.argument("agency")
@click.option("--limit", type=int, default=1000, show_default=True, help="Most moved.")
@friendly_errors
def dlq_replay(agency: str, limit: int) -> None:
    """Move AGENCY's dead letters back into its inbox, to be delivered again."""
    from gateway.broker import consumer, topology

    settings = _settings()
    (recipient,) = _recipients(agency)
    moved = consumer.replay_dead_letters(
        settings.amqp_url, topology.Names(settings.broker_prefix), recipient, limit
    )
    console.print(f"moved {moved} dead letters back into {recipient}'s inbox")


_target = click.option("--target", help="Gateway address (default: the listen setting).")


@main.command()
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
@_target
@click.option("--verbose", is_flag=True, help="Show the gateway's log lines too.")
@friendly_errors
def demo(
    days: int, people: int, seed: int | None, speed: float, target: str | None, verbose: bool
) -> None:
    """Start the gateway (SQLite, local RabbitMQ) or use a running one (--target),
    register the five principals with fresh keys and play a compressed period of
    the four linkages for PEOPLE people across the units: roster, referrals, police
    checks, inspections, partner services. Prints the period's figures, verifies the
    audit log offline and writes report.html into the data directory; exits 1 if any
    message was refused or not delivered, or the audit log does not verify."""
    from gateway.demo import DemoOptions, run_demo

    if not verbose:
        logs.configure(_settings().log_format, level=logging.WARNING)
    options = DemoOptions(days=days, people=people, seed=seed, speed=speed, target=target)
    sys.exit(run_demo(_settings(), console, options))


@main.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (default: report.html in the data directory).",
)
@click.option("--unit", help="Only this unit's messages (a configured unit code).")
@click.option(
    "--since", type=click.DateTime(), help="Only messages accepted since this time (UTC)."
)
@friendly_errors
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


#: Entry-point group through which linkage adapters add command groups
#: (``silian police …``); the core never imports an adapter.
COMMANDS_ENTRY_POINT_GROUP = "silian.commands"


def _add_adapter_commands() -> None:
    for point in entry_points(group=COMMANDS_ENTRY_POINT_GROUP):
        command = point.load()
        if not isinstance(command, click.Command):
            raise TypeError(f"entry point {point.value} is not a click command")
        main.add_command(command, point.name)


_add_adapter_commands()

"""``silian feed`` and ``silian dlq``: the bureau's feed and the dead letters."""

from __future__ import annotations

from datetime import datetime

import click
from rich.table import Table

from gateway.cli.errors import one_line_errors
from gateway.cli.options import console
from gateway.cli.options import current_settings as _settings
from gateway.domain import kinds


@click.group()
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
@one_line_errors
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


@feed.command("grant")
@click.argument("name")
@one_line_errors
def feed_grant(name: str) -> None:
    """Create (or renew) RabbitMQ user NAME for a bureau system that reads the feed.

    NAME may declare and bind queues of its own — server-named, or named
    <prefix>.reader.NAME.… — to the feed exchange and read the feed stream; it
    cannot bind to the inbox exchange, read an inbox or publish anywhere. Give
    bureau systems only such users, never the gateway's own. Uses the management
    API when it answers (broker_management_url), else rabbitmqctl on this host.
    Run again to issue a new password. The last line printed is the user's AMQP
    URL with its generated password: hand it over securely; it is not kept."""
    from gateway.broker import users
    from gateway.broker.topology import Names

    settings = _settings()
    users.check_name(name)
    try:
        admin = users.admin_for(settings.amqp_url, settings.broker_management_url)
        url = users.grant_feed_reader(admin, settings.amqp_url, Names(settings.broker_prefix), name)
    except users.BrokerAdminError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"feed reader {name}: may read {settings.broker_prefix}.feed and its stream")
    click.echo(url)


@feed.command("revoke")
@click.argument("name")
@one_line_errors
def feed_revoke(name: str) -> None:
    """Remove the RabbitMQ user NAME made by `silian feed grant`: it can no longer connect."""
    from gateway.broker import users

    settings = _settings()
    users.check_name(name)
    try:
        admin = users.admin_for(settings.amqp_url, settings.broker_management_url)
        users.revoke_feed_reader(admin, name)
    except users.BrokerAdminError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"feed reader {name} removed")


@click.group()
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
@one_line_errors
def dlq_list(agency: str | None, limit: int) -> None:
    """Show dead letters (left in place): recipient, message id, kind, sender, deaths."""
    from google.protobuf.message import DecodeError

    from gateway.broker import consumer, topology
    from gateway.proto.silian.v1 import envelope_pb2

    settings = _settings()
    names = topology.Names(settings.broker_prefix)
    table = Table("recipient", "mid", "kind", "sender", "accepted", "delivery count")
    for recipient in _recipients(agency):
        for letter in consumer.dead_letters(settings.amqp_url, names, recipient, limit):
            try:
                delivery = envelope_pb2.Delivery.FromString(letter.body)
                sender = delivery.sender
                accepted = delivery.accepted_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
            except DecodeError:  # slipped into the inbox; the gateway dead-lettered it
                sender, accepted = "(not a delivery)", ""
            table.add_row(
                recipient, letter.mid, letter.kind, sender, accepted, str(letter.delivery_count)
            )
    console.print(table)


@dlq.command("replay")
@click.argument("agency")
@click.option("--limit", type=int, default=1000, show_default=True, help="Most moved.")
@one_line_errors
def dlq_replay(agency: str, limit: int) -> None:
    """Move AGENCY's dead letters back into its inbox, to be delivered again."""
    from gateway.broker import consumer, topology

    settings = _settings()
    (recipient,) = _recipients(agency)
    moved = consumer.replay_dead_letters(
        settings.amqp_url, topology.Names(settings.broker_prefix), recipient, limit
    )
    console.print(f"moved {moved} dead letters back into {recipient}'s inbox")

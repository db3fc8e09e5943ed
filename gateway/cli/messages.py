"""``silian send`` / ``silian receive``: trying an exchange by hand, as an agency.

Both are agency-side commands: they go through ``gateway.client`` (submit with
retries; the one inbox reader, which checks the gateway's signature of every
delivery) and load no server dependency.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from google.protobuf import json_format

from gateway.cli.errors import one_line_errors
from gateway.cli.options import (
    connect,
    err_console,
    gateway_jwks_option,
    key_option,
    target_option,
    tls_options,
)
from gateway.client.inbox import describe_refusals
from gateway.domain import kinds


@click.command()
@click.option("--as", "agency_id", required=True, help="Sending agency id.")
@click.option("--kind", required=True, help=f"Message kind: {', '.join(kinds.known_kinds())}.")
@click.argument("payload", type=click.File("r"))
@click.option("--mid", help="Message id (default: a new UUID).")
@key_option
@target_option
@tls_options
@one_line_errors
def send(
    agency_id: str,
    kind: str,
    payload: Any,
    mid: str | None,
    key: Path | None,
    target: str | None,
    **tls: Path | None,
) -> None:
    """Sign and submit one message whose payload is JSON in PAYLOAD ('-' for stdin),
    in the protobuf JSON form of the kind's message. Prints the receipt. A gateway
    that says "try later" is asked again (same message id) a few times."""
    message = kinds.payload_type(kind)()
    try:
        json_format.Parse(payload.read(), message)
    except json_format.ParseError as err:
        raise ValueError(f"{payload.name}: not a valid {kind} payload: {err}") from None
    client = connect(agency_id, key=key, target=target, **tls)
    receipt = client.submit(kind, message, mid)
    click.echo(json_format.MessageToJson(receipt))


@click.command()
@click.option("--as", "agency_id", required=True, help="Receiving agency id.")
@click.option("--max", "limit", type=int, default=0, help="Stop after N deliveries (0: no limit).")
@click.option(
    "--idle",
    type=float,
    default=5.0,
    show_default=True,
    help="Stop after this many seconds without a delivery (0: wait forever).",
)
@click.option("--no-ack", is_flag=True, help="Do not acknowledge (they come back later).")
@gateway_jwks_option
@key_option
@target_option
@tls_options
@one_line_errors
def receive(
    agency_id: str,
    limit: int,
    idle: float,
    no_ack: bool,
    gateway_jwks: Path | None,
    key: Path | None,
    target: str | None,
    **tls: Path | None,
) -> None:
    """Print deliveries from AGENCY's inbox as JSON lines and acknowledge them.
    A delivery whose gateway signature does not verify is not printed but given
    back and reported; the command then exits 1."""
    from gateway.proto.silian.v1 import payloads_pb2  # noqa: F401  (JSON of payloads)

    client = connect(agency_id, key=key, target=target, gateway_jwks=gateway_jwks, **tls)
    count = 0
    with client.inbox(idle_seconds=idle, limit=limit) as inbox:
        for delivery in inbox:
            view = kinds.decode(delivery.kind, delivery.payload, allow_unknown=True)
            document = json_format.MessageToDict(delivery)
            document["payload"] = json_format.MessageToDict(view)
            click.echo(json.dumps(document, ensure_ascii=False))
            if not no_ack:
                inbox.acknowledge(delivery)
            count += 1
        inbox.flush()
    err_console.print(f"{count} deliveries")
    for line in describe_refusals(inbox.refused):
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)
    if inbox.refused:
        sys.exit(1)

"""``silian agency`` and ``silian keys``: principals, their keys, the gateway's own."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from gateway.cli.errors import one_line_errors
from gateway.cli.options import console
from gateway.cli.options import current_settings as _settings
from gateway.config import Settings
from gateway.security import keys as keyring
from gateway.security.keyfiles import write_new_key

ROLES = ("agency", "auditor")


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


@click.group()
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
@one_line_errors
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
@one_line_errors
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


# A key id is base64url and may begin with "-": take it as the argument it is.
@agency.command("revoke-key", context_settings={"ignore_unknown_options": True})
@click.argument("agency_id")
@click.argument("kid")
@one_line_errors
def agency_revoke_key(agency_id: str, kid: str) -> None:
    """Revoke KID of AGENCY_ID: tokens and signatures by it are refused from now on."""
    from gateway import bootstrap
    from gateway.service import provision

    provision.revoke_key(bootstrap.open_store(_settings()), agency_id, kid, "operator")
    console.print(f"revoked key {kid} of {agency_id}")


@agency.command("list")
@one_line_errors
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


@click.group()
def keys() -> None:
    """The gateway's own keys."""


@keys.command("gateway")
@one_line_errors
def keys_gateway() -> None:
    """Print the gateway's public JWKS (verifies receipts and deliveries)."""
    from gateway import bootstrap

    click.echo(json.dumps(bootstrap.gateway_signer(_settings()).jwks(), indent=2))


@keys.command("rotate-data-key")
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=500,
    show_default=True,
    help="Rows re-encrypted per transaction (small batches keep the gateway's commits short).",
)
@click.option(
    "--switch-seconds",
    type=click.FloatRange(0, 600),
    default=5.0,
    show_default=True,
    help="How long to let running gateways take up the new key before re-encrypting.",
)
@one_line_errors
def keys_rotate_data_key(batch: int, switch_seconds: float) -> None:
    """Make a new data key and re-encrypt all personal data under it, in batches,
    while the gateway runs (it takes up the new key within seconds). Older keys
    stay in keys/data/ so nothing becomes unreadable; back up keys/data/ after."""
    import time

    from gateway import bootstrap
    from gateway.store import rekey

    store = bootstrap.open_store(_settings())
    previous = store.data_keys.current
    kid = store.data_keys.rotate()
    console.print(f"data key {kid} is current (was {previous}); re-encrypting …")
    time.sleep(switch_seconds)  # running gateways re-read keys/data/current every 2 s

    def progress(column: str, done: int) -> None:
        if done:
            console.print(f"  {column}: {done}", highlight=False)

    total = rekey.reseal(store, batch=batch, on_batch=progress)
    console.print(
        f"re-encrypted {total} values; {rekey.stale_count(store)} remain under older keys"
    )

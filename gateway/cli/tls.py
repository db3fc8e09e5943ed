"""``silian tls``: a private CA and the certificates for TLS and mTLS."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.errors import one_line_errors
from gateway.cli.options import console
from gateway.cli.options import current_settings as _settings


@click.group()
def tls() -> None:
    """Certificates for TLS and mTLS between the gateway and the agencies."""


@tls.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="A DNS name or IP address agencies reach the gateway at (repeatable); "
    "localhost, 127.0.0.1 and ::1 are always in the certificate.",
)
@click.option("--renew", is_flag=True, help="Issue every certificate again (the CA is kept).")
@one_line_errors
def tls_init(folder: Path, hosts: tuple[str, ...], renew: bool) -> None:
    """Make a private CA in FOLDER and issue from it the gateway's server
    certificate and a client certificate for every principal of the policy
    (common name: the principal's id). Existing files are kept unless --renew;
    private keys are written 0600. For evaluation and small deployments — an
    organisation's own CA can issue the same certificates instead (README)."""
    from gateway import bootstrap
    from gateway.security import pki

    settings = _settings()
    policy = bootstrap.load_policy(settings)
    principals = [p.id for p in policy.principals() if p.role != "gateway"]
    written = pki.init_pki(
        folder, principals, gateway_name=settings.gateway_id, hosts=hosts, renew=renew
    )
    for path in written:
        console.print(f"wrote {path}", markup=False, highlight=False)
    if not written:
        console.print("every certificate is there already (--renew issues them again)")
    where = folder.resolve()
    console.print(
        "\nThe gateway's config.toml:\n"
        f'  tls_cert = "{where / "gateway.pem"}"\n'
        f'  tls_key = "{where / "gateway.key"}"\n'
        f'  client_ca = "{where / "ca.pem"}"\n'
        "An agency's config.toml (copy ca.pem and its own .pem/.key to it):\n"
        '  ca_bundle = "ca.pem"\n  client_cert = "police.pem"\n  client_key = "police.key"',
        markup=False,
        highlight=False,
    )

"""What the ``silian`` commands share: consoles, the settings, common options."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from gateway.config import Settings, load_settings

if TYPE_CHECKING:
    from gateway.client import AgencyClient

F = TypeVar("F", bound=Callable[..., Any])

# Tables stay readable when the output is a pipe or a CI log (80 columns otherwise).
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)


def current_settings() -> Settings:
    """The settings of the running ``silian`` invocation (``--data-dir`` …)."""
    found = click.get_current_context().find_object(Settings)
    return found if found is not None else load_settings()


target_option = click.option("--target", help="Gateway address (default: the listen setting).")
key_option = click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The agency's private key (PEM; default: newest under <data-dir>/agency-keys/AGENCY).",
)
gateway_jwks_option = click.option(
    "--gateway-jwks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The gateway's public keys (JWKS, as `silian keys gateway` prints them); every "
    "delivery's signature is checked against them (default: the gateway_jwks setting, "
    "else the gateway key in the data directory).",
)

_pem_file = click.Path(exists=True, dir_okay=False, path_type=Path)
_tls_options = (
    click.option(
        "--ca-bundle",
        type=_pem_file,
        help="CA certificates (PEM) the gateway's certificate is checked against; "
        "connects over TLS (default: the ca_bundle setting; neither: plaintext).",
    ),
    click.option(
        "--client-cert",
        type=_pem_file,
        help="Client certificate (PEM) for mTLS, issued for this agency "
        "(default: the client_cert setting).",
    ),
    click.option(
        "--client-key",
        type=_pem_file,
        help="Private key (PEM) of --client-cert (default: the client_key setting).",
    ),
)


def tls_options(fn: F) -> F:
    """``--ca-bundle``, ``--client-cert`` and ``--client-key``: how a command
    reaches the gateway over TLS or mTLS (see ``connect``)."""
    for option in reversed(_tls_options):
        fn = option(fn)
    return fn


def connect(
    agency: str,
    *,
    key: Path | None,
    target: str | None,
    gateway_jwks: Path | None = None,
    ca_bundle: Path | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
) -> AgencyClient:
    """The client of ``agency`` an agency command uses: options first, then the
    settings (``listen``, ``gateway_jwks``, ``ca_bundle``, ``client_cert``,
    ``client_key``), the signing key from ``--key`` or the data directory."""
    from gateway.client import AgencyClient, ClientTls
    from gateway.client.keys import gateway_keys
    from gateway.security.keyfiles import load_agency_key

    settings = current_settings()
    tls = ClientTls.from_settings(settings, ca_bundle, client_cert, client_key)
    return AgencyClient.connect(
        target or settings.listen,
        agency=agency,
        key=load_agency_key(settings, agency, key),
        gateway_id=settings.gateway_id,
        gateway_keys=gateway_keys(settings, gateway_jwks),
        credentials=tls.credentials(),
    )

"""What the ``silian`` commands share: consoles, the settings, common options."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from gateway.config import Settings, load_settings

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

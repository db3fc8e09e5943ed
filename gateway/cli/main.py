"""The ``silian`` command line. Every command explains itself with --help.

The group loads a command's module only when that command runs (or ``--help``
lists it), so ``silian <agency> …`` on an agency's front-end processor loads
no server dependency (SQLAlchemy, pika, Alembic), and a gateway command where
they are not installed says so in one line. Each agency's command group comes
from its adapter through the registry (entry points ``silian.commands``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from gateway import logs
from gateway.cli.errors import SERVER_INSTALL, one_line, server_missing
from gateway.config import load_settings
from gateway.domain import registry
from gateway.security.files import private_process

#: Command name → "module:attribute" of its click command.
COMMANDS: dict[str, str] = {
    "serve": "gateway.cli.serve:serve",
    "db": "gateway.cli.serve:db",
    "status": "gateway.cli.status:status",
    "agency": "gateway.cli.agency:agency",
    "keys": "gateway.cli.agency:keys",
    "tls": "gateway.cli.tls:tls",
    "feed": "gateway.cli.feed:feed",
    "dlq": "gateway.cli.feed:dlq",
    "demo": "gateway.cli.demo:demo",
    "report": "gateway.cli.demo:report",
    "alerts": "gateway.cli.alerts:alerts",
    "audit": "gateway.cli.audit:audit",
    "retention": "gateway.cli.retention:retention",
    "send": "gateway.cli.messages:send",
    "receive": "gateway.cli.messages:receive",
}


class _LazyGroup(click.Group):
    """A group of the commands in ``COMMANDS`` and the adapters' groups, each
    imported when it is needed."""

    def _known(self) -> dict[str, str]:
        adapters = {point.name: point.value for point in registry.command_entry_points()}
        return {**adapters, **COMMANDS}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._known())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self._known().get(cmd_name)
        if where is None:
            return None
        module, _, attribute = where.partition(":")
        try:
            command = getattr(importlib.import_module(module), attribute)
        except ModuleNotFoundError as err:
            message = server_missing(err)
            if message is None:
                raise
            return _unavailable(cmd_name, message)
        if not isinstance(command, click.Command):
            raise TypeError(f"{where} is not a click command")
        return command


def _unavailable(name: str, message: str) -> click.Command:
    def fail() -> None:
        raise click.ClickException(message)

    return click.Command(
        name,
        help=f"(not installed here: {SERVER_INSTALL})",
        callback=fail,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


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
    private_process()  # what any command writes (database, keys, exports) is 0600
    try:
        settings = load_settings(data_dir, log_format=log_format)
    except ValueError as err:
        raise click.ClickException(one_line(err) or str(err)) from None
    logs.configure(settings.log_format)
    ctx.obj = settings

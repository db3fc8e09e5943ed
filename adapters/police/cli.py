"""``silian police …``: the police's connector commands (entry point ``silian.commands``)."""

from __future__ import annotations

from adapters.police import AGENCY
from adapters.police.formats import EXPORTS, VerificationMapper
from gateway.cli.alerts import campaigns
from gateway.client.connectors import connector_commands

police = connector_commands(
    "police",
    agency=AGENCY,
    help="Police (公安) connector: import verification results, export the roster "
    "and verification requests, watch an inbox folder.",
    mapper=VerificationMapper,
    exports=EXPORTS,
)
# The bureau's view of its verification campaigns (a gateway command: reads the database).
police.add_command(campaigns)

"""``silian ngo …``: the NGO's connector commands (entry point ``silian.commands``)."""

from __future__ import annotations

from adapters.ngo import AGENCY
from adapters.ngo.formats import record_mapper
from adapters.partner_services.exports import PARTNER_EXPORTS
from gateway.client.connectors import connector_commands

ngo = connector_commands(
    "ngo",
    agency=AGENCY,
    help="NGO (民盟 黄丝带) connector: import service records (CSV/XLSX), export the "
    "referrals received, watch an inbox folder.",
    mapper=record_mapper,
    exports=PARTNER_EXPORTS,
)

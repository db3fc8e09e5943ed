"""``silian detox …``: the detox centre's connector commands (entry point ``silian.commands``)."""

from __future__ import annotations

from adapters.detox import AGENCY
from adapters.detox.formats import record_mapper
from adapters.partner_services.exports import PARTNER_EXPORTS
from gateway.client.connectors import connector_commands

detox = connector_commands(
    "detox",
    agency=AGENCY,
    help="Detox centre (新航驿站) connector: import the activity ledger (CSV/XLSX), export "
    "the referrals received, watch an inbox folder.",
    mapper=record_mapper,
    exports=PARTNER_EXPORTS,
)

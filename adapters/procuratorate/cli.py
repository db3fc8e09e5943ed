"""``silian procuratorate …``: the procuratorate's connector commands
(entry point ``silian.commands``)."""

from __future__ import annotations

from adapters.procuratorate import AGENCY
from adapters.procuratorate.formats import EXPORTS, LedgerMapper
from gateway.client.connectors import connector_commands

procuratorate = connector_commands(
    "procuratorate",
    agency=AGENCY,
    help="Procuratorate (检察院) connector: import findings and closures from the "
    "supervision ledger, export rectification reports, roster changes and alerts, "
    "watch an inbox folder.",
    mapper=LedgerMapper,
    exports=EXPORTS,
)

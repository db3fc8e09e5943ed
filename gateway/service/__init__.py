"""The exchange service: authenticate → prepare → group commit → finish;
alerts, receipts, deliveries and admission."""

"""The tamper-evident audit log (DESIGN §4)."""

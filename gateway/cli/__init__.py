"""The ``silian`` command line (``silian --help`` lists every command)."""

from gateway.cli.main import describe_rpc_error, friendly_errors, main

__all__ = ["describe_rpc_error", "friendly_errors", "main"]

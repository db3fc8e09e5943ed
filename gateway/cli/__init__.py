"""The ``silian`` command line (``silian --help`` lists every command)."""

from gateway.cli.main import main

__all__ = ["main"]

"""The connector toolkit: what an agency's front-end processor (前置机) does with
its native files, for any agency.

- ``files``: read a CSV (UTF-8, UTF-8 with BOM or GB18030, detected) or XLSX
  file into numbered rows through a ``NativeFormat`` (Chinese or English headers);
- ``fields``: typed cell reading (dates, times, IDs, units, labels) that
  collects every bad cell of a row;
- ``labels``: the Chinese words for the payload enums;
- ``imports``: rows → messages (a ``RowMapper``) → the gateway over
  SubmitStream, with a per-row ``ImportReport`` (line, column, reason, code);
- ``exports``: drain an inbox into native CSV files, acknowledging what is on disk;
- ``standard``: the roster-change and alert export formats;
- ``watch``: import files dropped into a folder (done/ and failed/);
- ``commands``: the ``silian <agency> import|export|watch|columns`` group.

An adapter writes a ``NativeFormat`` and a ``RowMapper`` for its files and
``ExportFormat``s for what it receives, and registers
``connector_commands(...)`` under the ``silian.commands`` entry points.
"""

from __future__ import annotations

from gateway.client.connectors.commands import connector_commands
from gateway.client.connectors.exports import ExportFormat, ExportSummary, export_inbox
from gateway.client.connectors.fields import Cells, FieldError, local_text
from gateway.client.connectors.files import (
    Column,
    FileProblem,
    NativeFile,
    NativeFormat,
    Row,
    RowProblem,
    read_native,
)
from gateway.client.connectors.imports import ImportReport, Outgoing, RowMapper, import_file
from gateway.client.connectors.labels import Labels
from gateway.client.connectors.watch import watch

__all__ = [
    "Cells",
    "Column",
    "ExportFormat",
    "ExportSummary",
    "FieldError",
    "FileProblem",
    "ImportReport",
    "Labels",
    "NativeFile",
    "NativeFormat",
    "Outgoing",
    "Row",
    "RowMapper",
    "RowProblem",
    "connector_commands",
    "export_inbox",
    "import_file",
    "local_text",
    "read_native",
    "watch",
]

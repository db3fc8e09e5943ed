"""Exporting an agency's inbox into native CSV files.

``export_inbox`` reads the agency's inbox until it has been idle for a while
(or ``limit`` deliveries), writes each delivery as rows of the CSV file of its
kind (``<stem>-<time>.csv`` in the output folder, one file per kind per run)
and acknowledges a delivery only once its rows are on disk (flushed and
fsynced). Mids written are kept in the folder's ledger (``.exported-mids``),
so a delivery that comes back — because the run stopped between writing and
acknowledging — is acknowledged without being written twice. Deliveries of
kinds the agency has no format for are left in the inbox and counted. The inbox
is read by ``gateway.client.inbox``: a delivery whose gateway signature does not
verify is given back, never written, and listed in the summary.

Headers are Chinese; every row ends with the columns 消息编号 (the message
id), 发送方 (sender) and 网关接收时间 (when the gateway accepted the message,
China Standard Time).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from google.protobuf.message import Message
from rich.progress import Progress

from gateway.client.connectors.fields import local_text
from gateway.client.inbox import Connection, InboxReader, Refusal
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security.files import create_private

LEDGER = ".exported-mids"
TRAILING_HEADERS = ("消息编号", "发送方", "网关接收时间")
#: Encodings an export may be written in (UTF-8 with BOM opens well in Excel).
ENCODINGS = {"utf-8": "utf-8-sig", "gb18030": "gb18030"}


@dataclass(frozen=True)
class ExportFormat:
    """How deliveries of ``kind`` are written: the file's name stem, headers,
    and the rows of one message (usually one; a request naming three people
    may give three)."""

    kind: str
    stem: str
    headers: tuple[str, ...]
    rows: Callable[[Message], Iterable[Sequence[str]]]


@dataclass
class ExportSummary:
    """Rows written per file, deliveries acknowledged, and what was left."""

    files: dict[Path, int] = field(default_factory=dict)
    acknowledged: int = 0
    already_exported: int = 0
    left_by_kind: dict[str, int] = field(default_factory=dict)
    #: Deliveries whose gateway signature did not verify (given back, not written).
    refused: list[Refusal] = field(default_factory=list)


@dataclass
class _Output:
    path: Path
    handle: IO[str]
    writer: Any  # a csv writer


class _Writers:
    """The CSV files of one run (one per kind, opened on first use) and the ledger."""

    def __init__(self, out_dir: Path, encoding: str, stamp: str) -> None:
        self.out_dir, self.encoding, self.stamp = out_dir, encoding, stamp
        self._outputs: dict[str, _Output] = {}
        ledger = out_dir / LEDGER
        self.exported = set(ledger.read_text("ascii").split()) if ledger.exists() else set()
        self._ledger = create_private(ledger).open("a", encoding="ascii")

    def write(self, export: ExportFormat, rows: list[list[str]], summary: ExportSummary) -> None:
        output = self._outputs.get(export.kind)
        if output is None:
            path = self.out_dir / f"{export.stem}-{self.stamp}.csv"
            handle = create_private(path).open("w", encoding=self.encoding, newline="")
            output = self._outputs[export.kind] = _Output(path, handle, csv.writer(handle))
            output.writer.writerow((*export.headers, *TRAILING_HEADERS))
        output.writer.writerows(rows)
        summary.files[output.path] = summary.files.get(output.path, 0) + len(rows)

    def remember(self, mid: str) -> None:
        self.exported.add(mid)
        self._ledger.write(mid + "\n")

    def _handles(self) -> list[IO[str]]:
        return [output.handle for output in self._outputs.values()] + [self._ledger]

    def sync(self) -> None:
        """Everything written so far is on disk."""
        for handle in self._handles():
            handle.flush()
            os.fsync(handle.fileno())

    def close(self) -> None:
        for handle in self._handles():
            handle.close()


def export_inbox(
    client: Connection,
    out_dir: Path,
    formats: Sequence[ExportFormat],
    *,
    encoding: str = "utf-8",
    idle_seconds: float = 3.0,
    limit: int = 0,
    batch: int = 100,
    progress: Progress | None = None,
) -> ExportSummary:
    """Drain the inbox into ``out_dir``; see the module docstring.

    Stops after ``idle_seconds`` without a delivery or after ``limit``
    deliveries (0: no limit). Raises grpc.RpcError if the gateway fails.
    """
    by_kind = {export.kind: export for export in formats}
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    writers = _Writers(out_dir, ENCODINGS[encoding], stamp)
    summary = ExportSummary()
    task = progress.add_task("exporting", total=None) if progress else None
    written: list[envelope_pb2.Delivery] = []
    inbox = InboxReader(
        client, max_in_flight=batch, idle_seconds=idle_seconds, limit=limit, batch=batch
    )

    def settle() -> None:
        """What was written is on disk, then acknowledged."""
        if written:
            writers.sync()
            for delivery in written:
                inbox.acknowledge(delivery)
            summary.acknowledged += len(written)
            written.clear()

    try:
        for delivery in inbox:
            if _handle(delivery, by_kind, writers, summary):
                written.append(delivery)
            if not inbox.waiting():
                settle()
            if progress is not None and task is not None:
                progress.advance(task)
        settle()
        inbox.flush()
    finally:
        inbox.close()
        writers.close()
        summary.refused = inbox.refused
    return summary


def _handle(
    delivery: envelope_pb2.Delivery,
    by_kind: dict[str, ExportFormat],
    writers: _Writers,
    summary: ExportSummary,
) -> bool:
    """Write one delivery; whether it may be acknowledged."""
    export = by_kind.get(delivery.kind)
    if export is None:
        summary.left_by_kind[delivery.kind] = summary.left_by_kind.get(delivery.kind, 0) + 1
        return False
    if delivery.mid in writers.exported:
        summary.already_exported += 1
        return True
    message = kinds.decode(delivery.kind, delivery.payload, allow_unknown=True)
    accepted = local_text(delivery.accepted_at.ToDatetime(tzinfo=UTC))
    trailing = [delivery.mid, delivery.sender, accepted]
    writers.write(export, [[*row, *trailing] for row in export.rows(message)], summary)
    writers.remember(delivery.mid)
    return True

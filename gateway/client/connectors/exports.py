"""Exporting an agency's inbox into native CSV files.

``export_inbox`` reads the agency's inbox until it has been idle for a while
(or ``limit`` deliveries), writes each delivery as rows of the CSV file of its
kind (``<stem>-<time>.csv`` in the output folder, one file per kind per run)
and acknowledges a delivery only once its rows are on disk (flushed and
fsynced). Mids written are kept in the folder's ledger (``.exported-mids``),
so a delivery that comes back — because the run stopped between writing and
acknowledging — is acknowledged without being written twice. Deliveries of
kinds the agency has no format for are left in the inbox and counted.

Headers are Chinese; every row ends with the columns 消息编号 (the message
id), 发送方 (sender) and 网关接收时间 (when the gateway accepted the message,
China Standard Time).
"""

from __future__ import annotations

import csv
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import grpc
from google.protobuf.message import Message
from rich.progress import Progress

from gateway.client.connectors.fields import local_text
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2

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


class Receiver(Protocol):
    """What exporting needs of a client (``gateway.client.AgencyClient`` is one)."""

    def receive(self, max_in_flight: int = 100, timeout: float | None = None) -> grpc.Future: ...

    def acknowledge(
        self, delivery_ids: Iterable[str], rejected: Iterable[str] = ()
    ) -> exchange_pb2.AcknowledgeResponse: ...


@dataclass
class ExportSummary:
    """Rows written per file, deliveries acknowledged, and what was left."""

    files: dict[Path, int] = field(default_factory=dict)
    acknowledged: int = 0
    already_exported: int = 0
    left_by_kind: dict[str, int] = field(default_factory=dict)


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
        self._ledger = ledger.open("a", encoding="ascii")

    def write(self, export: ExportFormat, rows: list[list[str]], summary: ExportSummary) -> None:
        output = self._outputs.get(export.kind)
        if output is None:
            path = self.out_dir / f"{export.stem}-{self.stamp}.csv"
            handle = path.open("w", encoding=self.encoding, newline="")
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
    receiver: Receiver,
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
    stream = receiver.receive(max_in_flight=batch)
    inbox: queue.Queue[envelope_pb2.Delivery | BaseException | None] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(stream, inbox), daemon=True)
    pump.start()
    settled: list[str] = []

    def settle() -> None:
        if settled:
            writers.sync()
            receiver.acknowledge(settled)
            summary.acknowledged += len(settled)
            settled.clear()

    try:
        seen = 0
        while not limit or seen < limit:
            if inbox.empty():
                settle()
            try:
                item = inbox.get(timeout=idle_seconds)
            except queue.Empty:
                break
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            seen += 1
            if _handle(item, by_kind, writers, summary):
                settled.append(item.delivery_id)
            if progress is not None and task is not None:
                progress.advance(task)
        settle()
    finally:
        stream.cancel()
        pump.join(5)
        writers.close()
    return summary


def _pump(
    stream: grpc.Future, inbox: queue.Queue[envelope_pb2.Delivery | BaseException | None]
) -> None:
    try:
        for response in stream:
            inbox.put(response.delivery)
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.CANCELLED:
            inbox.put(err)
    finally:
        inbox.put(None)


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
    message = kinds.decode(delivery.kind, delivery.payload)
    accepted = local_text(delivery.accepted_at.ToDatetime(tzinfo=UTC))
    trailing = [delivery.mid, delivery.sender, accepted]
    writers.write(export, [[*row, *trailing] for row in export.rows(message)], summary)
    writers.remember(delivery.mid)
    return True

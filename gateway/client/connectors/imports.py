"""Importing a native file: rows become signed messages sent to the gateway.

``import_file`` reads the file, maps each row to a message with the format's
``RowMapper``, drops duplicate rows, sends the rest over ``SubmitStream`` and
returns an ``ImportReport``: one ``RowProblem`` per rejected cell or row —
unreadable, invalid, duplicate, or refused by the gateway (with its status and
reason, and the column of the field it named) — while every valid row goes
through.

Message ids derive from the sender, kind and the record's key (uuid5), so
importing a file again sends nothing twice: the gateway answers rows it
already accepted with their original receipts. Refusals that mean "try later"
(RESOURCE_EXHAUSTED, UNAVAILABLE) are retried with the same ids
(``gateway.client.submit``).
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
from google.protobuf.message import Message
from rich.progress import Progress

from gateway.client.connectors.fields import FieldError
from gateway.client.connectors.files import NativeFormat, Row, RowProblem, read_native
from gateway.client.submit import Submitter, submit_many
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.security.files import create_private

#: Codes of problems found before sending.
INVALID = "INVALID"
DUPLICATE = "DUPLICATE"
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_MID_NAMESPACE = uuid.UUID("5a1d3c0e-7d4f-4d55-9b0e-2f6c1e7a4b21")
REPORT_HEADERS = ("line", "column", "reason", "code")


@dataclass(frozen=True)
class Outgoing:
    """The message a row becomes.

    ``key`` names the record in the agency's own terms (``记录编号 GA-1``):
    rows with one key are duplicates, and the message id derives from it.
    It must not contain personal data (ids end up in the audit log).
    """

    kind: str
    payload: Message
    key: str

    def mid(self, sender: str) -> str:
        """The message id of this record when ``sender`` sends it (stable)."""
        return str(uuid.uuid5(_MID_NAMESPACE, f"{sender}\n{self.kind}\n{self.key}"))


class RowMapper(Protocol):
    """Turns rows of one native format into messages."""

    @property
    def native(self) -> NativeFormat:
        """The format of the files this mapper reads."""
        ...

    def map_row(self, row: Row) -> Outgoing | list[FieldError]:
        """The row's message, or every error found in its cells (never empty)."""
        ...


class Sender(Submitter, Protocol):
    """What sending needs of a client (``gateway.client.AgencyClient`` is one)."""

    agency: str

    def envelope(
        self, kind: str, message: Message, mid: str | None = None
    ) -> envelope_pb2.Envelope: ...


@dataclass
class ImportReport:
    """The outcome of one file: rows read, (line, mid) accepted, problems."""

    path: Path
    encoding: str
    rows: int = 0
    accepted: list[tuple[int, str]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def rejected_lines(self) -> list[int]:
        return sorted({problem.line for problem in self.problems})

    def write(self, path: Path) -> None:
        """The problems as CSV (UTF-8 with BOM, so spreadsheet programs show the
        Chinese), by line: line, column, reason, code."""
        with create_private(path).open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(REPORT_HEADERS)
            for problem in sorted(self.problems, key=lambda p: p.line):
                writer.writerow((problem.line, problem.column, problem.reason, problem.code))


def import_file(
    path: Path, mapper: RowMapper, sender: Sender, *, progress: Progress | None = None
) -> ImportReport:
    """Read, map, deduplicate and send ``path``; see the module docstring.

    Raises FileProblem when the file cannot be used at all (nothing is sent),
    and grpc.RpcError when the gateway cannot be reached (safe to run again).
    """
    native_file = read_native(path, mapper.native)
    report = ImportReport(path, native_file.encoding, problems=list(native_file.problems))
    report.rows = len(native_file.rows) + len(report.rejected_lines)
    ready: list[tuple[Row, Outgoing]] = []
    first_line: dict[str, int] = {}
    for row in native_file.rows:
        mapped = mapper.map_row(row)
        if not isinstance(mapped, Outgoing):
            report.problems += [
                RowProblem(row.line, mapper.native.column(e.field).label, e.reason, INVALID)
                for e in mapped
            ]
        elif mapped.key in first_line:
            reason = f"duplicates line {first_line[mapped.key]} (same {mapped.key})"
            report.problems.append(RowProblem(row.line, "", reason, DUPLICATE))
        else:
            first_line[mapped.key] = row.line
            ready.append((row, mapped))
    task = progress.add_task(f"sending {path.name}", total=len(ready)) if progress else None

    def advance() -> None:
        if progress is not None and task is not None:
            progress.advance(task)

    _send(sender, ready, mapper.native, report, advance)
    return report


def _send(
    sender: Sender,
    items: Sequence[tuple[Row, Outgoing]],
    native: NativeFormat,
    report: ImportReport,
    advance: Callable[[], None],
) -> None:
    envelopes = [sender.envelope(o.kind, o.payload, o.mid(sender.agency)) for _, o in items]
    answers = submit_many(sender, envelopes, on_answer=lambda _: advance())
    for (row, outgoing), answer in zip(items, answers, strict=True):
        if answer.HasField("receipt"):
            report.accepted.append((row.line, answer.mid))
        else:
            report.problems += refusal_problems(row.line, outgoing, answer.rejection, native)


def refusal_problems(
    line: int, outgoing: Outgoing, rejection: exchange_pb2.Rejection, native: NativeFormat
) -> list[RowProblem]:
    """The gateway's refusal of a row as problems, one per field it named
    (reported against the column that fills that field)."""
    code = f"{_STATUS_NAMES.get(rejection.code, str(rejection.code))}/{rejection.reason}"
    if rejection.reason == "MID_REUSED":
        reason = (
            f"{outgoing.key} was sent before with different content; "
            "a corrected record needs a new id"
        )
        return [RowProblem(line, "", reason, code)]
    if not rejection.field_violations:
        return [RowProblem(line, "", rejection.message, code)]
    problems = []
    for violation in rejection.field_violations:
        column = native.column_for_path(violation.field)
        name = column.label if column else violation.field
        problems.append(RowProblem(line, name, violation.description, code))
    return problems

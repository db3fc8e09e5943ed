"""The connector commands of an agency: ``silian <agency> import|export|watch|columns``.

``connector_commands`` builds the click group an adapter registers under the
``silian.commands`` entry-point group. Every failure is one line naming the
file, line and column where there is one — never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click
import grpc
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gateway.cli.errors import one_line_errors, tls_hint
from gateway.cli.options import (
    connect,
    console,
    current_settings,
    err_console,
    gateway_jwks_option,
    key_option,
    target_option,
    tls_options,
)
from gateway.client.connectors import watch as watching
from gateway.client.connectors.exports import ENCODINGS, ExportFormat, export_inbox
from gateway.client.connectors.imports import ImportReport, RowMapper, import_file
from gateway.client.inbox import Refusal, describe_refusals
from gateway.domain.units import Units

#: Problems printed after an import; the report holds them all.
SHOWN_PROBLEMS = 20


def _say(text: str) -> None:
    """Print ``text`` as it is (file names and reasons may hold brackets)."""
    console.print(text, markup=False, highlight=False)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def _units() -> Units:
    return Units.for_data_dir(current_settings().data_dir)


def connector_commands(
    name: str,
    *,
    agency: str,
    help: str,
    mapper: Callable[[Units], RowMapper],
    exports: Sequence[ExportFormat],
) -> click.Group:
    """The command group ``silian NAME`` for ``agency``: import files read by
    ``mapper(units)``, export deliveries in ``exports``, watch a folder, and
    show the import columns."""

    @click.group(name=name, help=help)
    def group() -> None:
        pass

    @group.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--report",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Where to write the rejected rows (default: FILE.report.csv beside FILE).",
    )
    @key_option
    @target_option
    @tls_options
    @one_line_errors
    def import_command(
        file: Path, report: Path | None, key: Path | None, target: str | None, **tls: Path | None
    ) -> None:
        """Send the rows of FILE (CSV in UTF-8 or GB18030, or XLSX) as signed messages.

        Valid rows go through; rejected ones (line, column, reason) are listed and
        written to the report. Exits 1 if any row was rejected. Running it again on
        the same file sends nothing twice."""
        row_mapper = mapper(_units())
        sender = connect(agency, key=key, target=target, **tls)
        try:
            with _progress() as progress:
                result = import_file(file, row_mapper, sender, progress=progress)
        finally:
            sender.close()
        report_path = report or file.with_name(file.name + ".report.csv")
        _print_import(result, report_path)
        if result.problems:
            result.write(report_path)
            sys.exit(1)

    @group.command("export")
    @click.option(
        "--out",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder to write the CSV files into (created if missing).",
    )
    @click.option(
        "--encoding",
        type=click.Choice(sorted(ENCODINGS)),
        default="utf-8",
        show_default=True,
        help="Encoding of the files (utf-8 is written with a BOM for Excel).",
    )
    @click.option(
        "--idle",
        type=float,
        default=3.0,
        show_default=True,
        help="Stop after this many seconds without a delivery.",
    )
    @click.option("--max", "limit", type=int, default=0, help="Stop after N deliveries.")
    @key_option
    @target_option
    @gateway_jwks_option
    @tls_options
    @one_line_errors
    def export_command(
        out: Path,
        encoding: str,
        idle: float,
        limit: int,
        key: Path | None,
        target: str | None,
        gateway_jwks: Path | None,
        **tls: Path | None,
    ) -> None:
        """Write what the inbox holds as CSV files (one per kind) and acknowledge it.
        Exits 1 if a delivery's gateway signature did not verify (it is given back)."""
        receiver = connect(agency, key=key, target=target, gateway_jwks=gateway_jwks, **tls)
        try:
            with _progress() as progress:
                summary = export_inbox(
                    receiver,
                    out,
                    exports,
                    encoding=encoding,
                    idle_seconds=idle,
                    limit=limit,
                    progress=progress,
                )
        finally:
            receiver.close()
        for path, count in summary.files.items():
            _say(f"wrote {count} rows to {path}")
        _say(f"acknowledged {summary.acknowledged} deliveries")
        if summary.already_exported:
            _say(f"{summary.already_exported} were exported before; not written again")
        for kind, count in summary.left_by_kind.items():
            _say(f"left in the inbox: {count} {kind} (no export format for this kind)")
        if summary.refused:
            _print_refused(summary.refused)
            sys.exit(1)

    @group.command("watch")
    @click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
    @click.option("--once", is_flag=True, help="Process the files there now, then stop.")
    @click.option("--max-files", type=int, default=0, help="Stop after N files (0: never).")
    @click.option(
        "--poll", type=float, default=5.0, show_default=True, help="Seconds between looks."
    )
    @click.option(
        "--settle",
        type=float,
        default=2.0,
        show_default=True,
        help="Take a file once it has not changed for this many seconds.",
    )
    @key_option
    @target_option
    @tls_options
    @one_line_errors
    def watch_command(
        folder: Path,
        once: bool,
        max_files: int,
        poll: float,
        settle: float,
        key: Path | None,
        target: str | None,
        **tls: Path | None,
    ) -> None:
        """Import every CSV/XLSX file dropped into FOLDER; move each to done/ (all rows
        accepted) or failed/ with its report. Runs until stopped unless --once/--max-files."""
        row_mapper = mapper(_units())
        sender = connect(agency, key=key, target=target, **tls)

        def process(path: Path) -> ImportReport:
            with _progress() as progress:
                return import_file(path, row_mapper, sender, progress=progress)

        def show(outcome: watching.Outcome) -> None:
            result = outcome.result
            text = f"{result.path.name}: {len(result.accepted)} accepted, "
            text += f"{len(result.rejected_lines)} rejected → {outcome.moved_to}"
            _say(text + (f" (report {outcome.report})" if outcome.report else ""))

        def retry(path: Path, err: grpc.RpcError) -> None:
            why = f"{err.code().name}{tls_hint(err)}"
            line = f"{path.name}: gateway unavailable ({why}); will retry"
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)

        try:
            watching.watch(
                folder,
                process,
                once=once,
                max_files=max_files,
                poll_seconds=poll,
                settle_seconds=settle,
                on_outcome=show,
                on_retry=retry,
            )
        finally:
            sender.close()

    @group.command("columns")
    def columns_command() -> None:
        """List the columns the import reads (Chinese or English headers)."""
        native = mapper(Units.default()).native
        table = Table("中文表头", "English header", "required", "content", title=native.name)
        for column in native.columns:
            headers = column.headers
            table.add_row(headers[0], headers[1], "yes" if column.required else "", column.help)
        console.print(table)

    return group


def _print_refused(refused: Sequence[Refusal]) -> None:
    for line in describe_refusals(refused):
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_import(result: ImportReport, report_path: Path) -> None:
    rejected = result.rejected_lines
    summary = (
        f"{result.path.name} ({result.encoding}): {result.rows} rows — "
        f"{len(result.accepted)} accepted, {len(rejected)} rejected"
    )
    _say(summary + (f"; report: {report_path}" if rejected else ""))
    for problem in sorted(result.problems, key=lambda p: p.line)[:SHOWN_PROBLEMS]:
        where = f"line {problem.line}" + (f", {problem.column}" if problem.column else "")
        _say(f"  {where}: {problem.reason} [{problem.code}]")
    if len(result.problems) > SHOWN_PROBLEMS:
        _say(f"  … and {len(result.problems) - SHOWN_PROBLEMS} more in the report")

"""Watching an inbox folder: import each file dropped into it.

A file is taken once it has not changed for ``settle_seconds`` (so one being
copied in is not read half-written); names starting with ``.`` or ``~$``
(Excel's lock files) and other types than .csv/.xlsx are ignored. After
import a file moves to ``done/`` when every row was accepted, otherwise to
``failed/``, with its report beside it (``<name>.report.csv``). A file the
gateway could not be reached for stays where it is and is tried again on the
next poll. Moved files never overwrite earlier ones of the same name.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc

from gateway.client.connectors.files import FileProblem, RowProblem
from gateway.client.connectors.imports import ImportReport

SUFFIXES = frozenset({".csv", ".xlsx"})
DONE, FAILED = "done", "failed"


@dataclass(frozen=True)
class Outcome:
    """What became of one file: where it went, its report (if any), and the import."""

    moved_to: Path
    report: Path | None
    result: ImportReport


def watch(
    folder: Path,
    process: Callable[[Path], ImportReport],
    *,
    once: bool = False,
    max_files: int = 0,
    poll_seconds: float = 5.0,
    settle_seconds: float = 2.0,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
    on_retry: Callable[[Path, grpc.RpcError], None] = lambda path, err: None,
) -> int:
    """Import files arriving in ``folder`` until stopped; returns how many were processed.

    ``once``: process what is there, then return (a gateway error is raised
    rather than retried). ``max_files``: return after that many (0: no limit).
    """
    for name in (DONE, FAILED):
        (folder / name).mkdir(parents=True, exist_ok=True)
    processed = 0
    while True:
        for path in ready_files(folder, settle_seconds):
            try:
                outcome = _process(folder, path, process)
            except grpc.RpcError as err:
                if once:
                    raise
                on_retry(path, err)
                break
            processed += 1
            on_outcome(outcome)
            if max_files and processed >= max_files:
                return processed
        if once:
            return processed
        time.sleep(poll_seconds)


def ready_files(folder: Path, settle_seconds: float) -> list[Path]:
    """Files to import now, oldest first."""
    now = time.time()
    found = [
        path
        for path in folder.iterdir()
        if path.is_file()
        and path.suffix.lower() in SUFFIXES
        and not path.name.startswith((".", "~$"))
        and now - path.stat().st_mtime >= settle_seconds
    ]
    return sorted(found, key=lambda path: (path.stat().st_mtime, path.name))


def _process(folder: Path, path: Path, process: Callable[[Path], ImportReport]) -> Outcome:
    try:
        result = process(path)
    except FileProblem as problem:
        result = ImportReport(path, "")
        result.problems.append(RowProblem(problem.line, problem.column, problem.reason, "FILE"))
    target = _free_name(folder / (DONE if not result.problems else FAILED) / path.name)
    shutil.move(path, target)
    report = None
    if result.problems:
        report = target.with_name(target.name + ".report.csv")
        result.write(report)
    return Outcome(target, report, result)


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return path.with_name(f"{path.stem}.{stamp}{path.suffix}")

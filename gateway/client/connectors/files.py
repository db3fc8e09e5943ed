"""Reading an agency's native files (CSV or XLSX) into rows of named fields.

A ``NativeFormat`` lists the columns of one file format; each column has a
field name (what the mapping code uses) and the header spellings accepted for
it — Chinese as the agency's system writes it, and English. Headers are
matched ignoring spaces, ``_``, ``-``, ``*`` required-marks and letter case, so
``身份证号``, `` 身份证号* `` and ``Resident ID`` all name one column.

CSV files may be UTF-8 (with or without a byte-order mark) or GB18030, the
encoding Chinese office software writes; the encoding is detected per file
(the one most of its lines are in). A line in the other encoding — a row
pasted in from another file — is reported on its own (``RowProblem``) while
the other lines are read. XLSX workbooks are read with
openpyxl (first sheet; dates, times and numbers become text).

Contract: ``read_native`` returns every data row with its line number (the
header is line 1 unless blank lines precede it) plus the rows it could not
read; it raises ``FileProblem`` — one message naming the file, line and
column — when the file as a whole cannot be used: unknown type, not readable,
no header, or required columns missing (listed once, with the expected headers).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

#: Codes of the problems found while reading (the code column of a report).
UNREADABLE = "UNREADABLE"
MALFORMED = "MALFORMED"

#: Excel keeps 15 significant digits of a number: an 18-digit ID typed as a
#: number has lost its last digits.
_EXACT_DIGITS = 15
_IGNORED_IN_HEADERS = re.compile(r"[\s*＊_-]")


def normalize_header(text: str) -> str:
    """The form headers (and labels) are compared in: no spaces, ``_``, ``-`` or
    ``*`` (a required mark), case-folded."""
    return _IGNORED_IN_HEADERS.sub("", text.lstrip("\ufeff")).casefold()


@dataclass(frozen=True)
class Column:
    """One column of a native format.

    ``headers`` are the accepted spellings: the Chinese one, the English one,
    then any others; ``path`` is the payload field the column fills (e.g.
    ``subject.resident_id``), so that a gateway refusal naming that field is
    reported against this column.
    """

    field: str
    headers: tuple[str, ...]
    required: bool = True
    path: str = ""
    help: str = ""

    @property
    def label(self) -> str:
        """How reports and errors name the column: ``身份证号/resident_id``."""
        return "/".join(self.headers[:2])


@dataclass(frozen=True)
class NativeFormat:
    """The columns of one native file format (order does not matter in files)."""

    name: str
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for column in self.columns:
            if len(column.headers) < 2:
                raise ValueError(
                    f"{self.name}: {column.field} needs a Chinese and an English header"
                )
            for header in column.headers:
                key = normalize_header(header)
                if seen.setdefault(key, column.field) != column.field:
                    raise ValueError(f"{self.name}: header {header!r} names two columns")

    def column(self, field_name: str) -> Column:
        """The column of ``field_name``; KeyError if the format has none."""
        for column in self.columns:
            if column.field == field_name:
                return column
        raise KeyError(f"{self.name} has no column {field_name!r}")

    def column_for_path(self, path: str) -> Column | None:
        """The column filling payload field ``path`` (list indexes ignored)."""
        plain = re.sub(r"\[\d+\]", "", path.removeprefix("payload."))
        return next((c for c in self.columns if c.path and c.path == plain), None)

    def expected_headers(self) -> str:
        """Every column as ``中文/english``, optional ones marked, for error messages."""
        return ", ".join(c.label + ("" if c.required else " (optional)") for c in self.columns)

    def _match(self, headers: Sequence[str]) -> dict[int, Column]:
        by_header = {normalize_header(h): c for c in self.columns for h in c.headers}
        return {
            i: by_header[normalize_header(h)]
            for i, h in enumerate(headers)
            if h.strip() and normalize_header(h) in by_header
        }


@dataclass(frozen=True)
class Row:
    """One data row: its line number and the text of each known column."""

    line: int
    values: Mapping[str, str]

    def get(self, field_name: str) -> str:
        """The stripped text of ``field_name`` ("" if empty or not in the file)."""
        return self.values.get(field_name, "")


@dataclass(frozen=True)
class RowProblem:
    """Why a row was not accepted: line, column (as named in reports), reason,
    and a code — a local one (UNREADABLE, INVALID, DUPLICATE …) or the
    gateway's status and reason (``NOT_FOUND/SUBJECT_NOT_ON_ROSTER``)."""

    line: int
    column: str
    reason: str
    code: str


class FileProblem(ValueError):
    """The file as a whole cannot be used; ``str()`` is the one-line message."""

    def __init__(self, path: Path, reason: str, *, line: int = 0, column: str = "") -> None:
        self.path, self.line, self.column, self.reason = path, line, column, reason
        where = [str(path)] + ([f"line {line}"] if line else []) + ([column] if column else [])
        super().__init__(f"{', '.join(where)}: {reason}")


@dataclass
class NativeFile:
    """What ``read_native`` found: the encoding (or "XLSX"), rows, unreadable rows."""

    path: Path
    encoding: str
    rows: list[Row] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def read_native(path: Path, native: NativeFormat) -> NativeFile:
    """Read ``path`` (``.csv`` or ``.xlsx``) as ``native``; see the module contract."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        encoding, lines = _csv_lines(path)
    elif suffix == ".xlsx":
        encoding, lines = "XLSX", _xlsx_lines(path)
    elif suffix == ".xls":
        raise FileProblem(path, "old Excel (.xls) files are not read; save it as .xlsx or .csv")
    else:
        raise FileProblem(path, f"unknown file type {suffix or '(none)'}; expected .csv or .xlsx")
    result = NativeFile(path, encoding)
    header: dict[int, Column] | None = None
    width = 0
    for line, cells, problem, cell_problems in lines:
        if header is None:
            if problem:
                raise FileProblem(path, problem, line=line)
            if not any(cell.strip() for cell in cells):
                continue
            header, width = _header(path, native, line, cells), len(cells)
            continue
        if problem:
            result.problems.append(RowProblem(line, "", problem, UNREADABLE))
        elif any(cell.strip() for cell in cells):
            _add_row(result, header, width, line, cells, cell_problems)
    if header is None:
        raise FileProblem(path, f"no header row; expected headers: {native.expected_headers()}")
    return result


def _header(path: Path, native: NativeFormat, line: int, cells: Sequence[str]) -> dict[int, Column]:
    matched = native._match(cells)
    by_field: dict[str, int] = {}
    for index, column in matched.items():
        if column.field in by_field:
            raise FileProblem(
                path,
                f"columns {by_field[column.field] + 1} and {index + 1} both hold {column.label}",
                line=line,
            )
        by_field[column.field] = index
    missing = [c.label for c in native.columns if c.required and c.field not in by_field]
    if missing:
        raise FileProblem(
            path,
            f"missing columns {', '.join(missing)}; expected headers: {native.expected_headers()}",
            line=line,
        )
    return matched


def _add_row(
    result: NativeFile,
    header: dict[int, Column],
    width: int,
    line: int,
    cells: Sequence[str],
    cell_problems: Mapping[int, str],
) -> None:
    extra = [c for c in cells[width:] if c.strip()]
    if extra:
        reason = f"has {width + len(extra)} cells; the header has {width}"
        result.problems.append(RowProblem(line, "", reason, MALFORMED))
        return
    unreadable = [
        RowProblem(line, header[i].label, reason, UNREADABLE)
        for i, reason in cell_problems.items()
        if i in header
    ]
    if unreadable:
        result.problems += unreadable
        return
    values = {column.field: cells[i].strip() for i, column in header.items() if i < len(cells)}
    result.rows.append(Row(line, values))


# --- CSV: encodings ------------------------------------------------------------

#: (line number, cells, problem of the line or "", problems of cells by index)
_Line = tuple[int, list[str], str, dict[int, str]]


def _csv_lines(path: Path) -> tuple[str, Iterator[_Line]]:
    """The file's encoding and its records, each with its first line number.

    The encoding is UTF-8 if the file has a BOM, or if at least as many of its
    non-ASCII lines are valid UTF-8 as are not; GB18030 otherwise. A line in
    the other encoding becomes a problem: in a UTF-8 file one that is not
    valid UTF-8, in a GB18030 file one that is (Chinese text in GB18030 is
    practically never valid UTF-8, while UTF-8 usually decodes as GB18030,
    into gibberish).
    """
    data = path.read_bytes()
    bom = data.startswith(b"\xef\xbb\xbf")
    raw_lines = data[3 if bom else 0 :].splitlines(keepends=True)
    in_utf8 = [line.isascii() or _decodes(line, "utf-8") for line in raw_lines]
    non_ascii = [ok for line, ok in zip(raw_lines, in_utf8, strict=True) if not line.isascii()]
    utf8 = bom or non_ascii.count(True) >= non_ascii.count(False)
    name = "UTF-8 (BOM)" if bom else "UTF-8" if utf8 else "GB18030"
    texts: list[str] = []
    bad: set[int] = set()
    for number, (raw, ok) in enumerate(zip(raw_lines, in_utf8, strict=True), start=1):
        foreign = not ok if utf8 else (ok and not raw.isascii()) or not _decodes(raw, "gb18030")
        if foreign:
            bad.add(number)
        texts.append(raw.decode("utf-8" if utf8 else "gb18030", errors="replace"))
    return name, _records(texts, bad, name)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _records(texts: list[str], bad: set[int], encoding: str) -> Iterator[_Line]:
    reader = csv.reader(io.StringIO("".join(texts), newline=""))
    first = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield first, [], f"not valid CSV: {err}", {}
            first = reader.line_num + 1
            continue
        spanned = set(range(first, reader.line_num + 1))
        problem = ""
        if spanned & bad:
            problem = (
                f"is in another encoding than the rest of the file ({encoding}); "
                f"re-save the file as {encoding}"
            )
        yield first, cells, problem, {}
        first = reader.line_num + 1


# --- XLSX --------------------------------------------------------------------


def _xlsx_lines(path: Path) -> Iterator[_Line]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many types for a damaged file
        raise FileProblem(path, f"not a readable XLSX workbook ({type(err).__name__})") from None
    try:
        sheet = book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [cell_text(value) for value in values]
            yield number, cells, "", _rounded_numbers(values)
    finally:
        book.close()


def _rounded_numbers(values: Iterable[object]) -> dict[int, str]:
    """Cells holding numbers too long for Excel to keep exactly (IDs typed as numbers)."""
    return {
        index: f"holds the number {value:.0f}, which Excel rounds to {_EXACT_DIGITS} digits; "
        "format the column as text and type it again"
        for index, value in enumerate(values)
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and abs(value) >= 10**_EXACT_DIGITS
    }


def cell_text(value: object) -> str:
    """A spreadsheet value as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()

"""Reading typed values out of a row, collecting one error per bad cell.

``Cells`` wraps a ``Row``: each accessor returns the parsed value (or a
neutral value) and records a ``FieldError`` when the cell is missing or
cannot be read, so a mapping reports every bad cell of a row at once::

    cells = Cells(row)
    resident_id = cells.resident_id("resident_id")
    observed_at = cells.moment("observed_at")
    if cells.errors:
        return cells.errors

Dates accept ``2026-03-05``, ``2026/3/5``, ``2026.3.5``, ``20260305`` and
``2026年3月5日``; times are China Standard Time (UTC+8, no daylight saving)
unless they carry an offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import TypeVar

from gateway.client.connectors.files import Row
from gateway.client.connectors.labels import Labels
from gateway.domain.calendar import BUREAU_TIME, today
from gateway.domain.units import Units
from gateway.domain.validation import canonical_resident_id, resident_id_problem

_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TIME = re.compile(r"(\d{1,2})[:：时](\d{1,2})分?(?:[:：]?(\d{1,2})(?:\.\d+)?秒?)?")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
_SEPARATORS = re.compile(r"[;；,，、\s]+")

V = TypeVar("V")


@dataclass(frozen=True)
class FieldError:
    """A cell that could not become part of the message: its field and why."""

    field: str
    reason: str


@dataclass
class Cells:
    """Typed access to one row's cells; see the module docstring."""

    row: Row
    errors: list[FieldError] = field(default_factory=list)

    def fail(self, field_name: str, reason: str) -> None:
        self.errors.append(FieldError(field_name, reason))

    def text(self, field_name: str, *, required: bool = False, because: str = "") -> str:
        value = self.row.get(field_name)
        if required and not value:
            self.fail(field_name, f"is required{because}")
        return value

    def items(self, field_name: str) -> list[str]:
        """A list cell: values separated by ``;``, ``,``, ``、`` or spaces."""
        return [item for item in _SEPARATORS.split(self.row.get(field_name)) if item]

    def choice(
        self, field_name: str, labels: Labels[V], *, required: bool = True, because: str = ""
    ) -> V | None:
        """The value whose label (Chinese, English or enum name) the cell holds."""
        value = self.text(field_name, required=required, because=because)
        if not value:
            return None
        found = labels.parse(value)
        if found is None:
            self.fail(field_name, f"unknown value {value!r}; expected one of {labels.choices()}")
        return found

    def date(self, field_name: str, *, required: bool = True, because: str = "") -> date | None:
        value = self.text(field_name, required=required, because=because)
        if not value:
            return None
        parsed, problem = parse_date(value)
        if problem:
            self.fail(field_name, problem)
        return parsed

    def moment(self, field_name: str, *, required: bool = True) -> datetime | None:
        """A date and time (China Standard Time unless an offset is given), in UTC."""
        value = self.text(field_name, required=required)
        if not value:
            return None
        parsed, problem = parse_moment(value)
        if problem:
            self.fail(field_name, problem)
        return parsed

    def resident_id(self, field_name: str, *, required: bool = True) -> str:
        """A resident ID (居民身份证号) with a valid check character, upper-case."""
        value = self.text(field_name, required=required).replace(" ", "")
        return self._resident_id(field_name, value) if value else ""

    def resident_ids(self, field_name: str) -> list[str]:
        """A list cell of resident IDs, each checked as by ``resident_id``."""
        return [self._resident_id(field_name, value) for value in self.items(field_name)]

    def _resident_id(self, field_name: str, value: str) -> str:
        problem = resident_id_problem(value, today=today())
        if problem:
            self.fail(field_name, f"{value} is not a valid resident ID: {problem}")
        return canonical_resident_id(value)

    def unit(self, field_name: str, units: Units) -> str:
        """A unit as its 6-digit code, given the code or the unit's name (渭滨区).

        An unknown 6-digit code passes (the gateway's units decide); an
        unknown name does not.
        """
        value = self.text(field_name, required=True)
        if not value or re.fullmatch(r"\d{6}", value):
            return value
        code = _unit_named(units, value)
        if code is None:
            names = "、".join(unit.name for unit in units)
            self.fail(
                field_name, f"unknown unit {value!r}; give its 6-digit code or one of {names}"
            )
            return ""
        return code


def _unit_named(units: Units, name: str) -> str | None:
    wanted = name.removesuffix("司法局")
    return next((unit.code for unit in units if unit.name == wanted), None)


def parse_date(value: str) -> tuple[date | None, str]:
    """(date, "") or (None, the reason ``value`` is not a date)."""
    parts = _date_parts(value.strip())
    if parts is None:
        return None, f"{value!r} is not a date (write it as YYYY-MM-DD)"
    try:
        return date(*parts), ""
    except ValueError:
        return None, f"{value!r} is not a date that exists"


def _date_parts(text: str) -> tuple[int, int, int] | None:
    match = _DATE.fullmatch(text) or _COMPACT_DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups())
    return year, month, day


def parse_moment(value: str) -> tuple[datetime | None, str]:
    """(UTC datetime, "") or (None, the reason ``value`` is not a date and time)."""
    text = value.strip().replace("T", " ")
    offset = _OFFSET.search(text)
    zone: tzinfo = BUREAU_TIME  # times without an offset are Beijing time
    if offset:
        zone = _zone(offset.group(1))
        text = text[: offset.start()].strip()
    day_text, _, time_text = text.partition(" ")
    parts = _date_parts(day_text)
    match = _TIME.fullmatch(time_text.strip())
    if parts is None or match is None:
        return None, f"{value!r} is not a date and time (write it as YYYY-MM-DD HH:MM[:SS])"
    hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        local = datetime(*parts, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None, f"{value!r} is not a date and time that exists"
    return local.astimezone(UTC), ""


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def local_text(moment: datetime) -> str:
    """``moment`` as China Standard Time text, the way agencies' files hold it."""
    return moment.astimezone(BUREAU_TIME).strftime("%Y-%m-%d %H:%M:%S")

"""A partner's service-record spreadsheet (服务记录表) → ``service.record`` messages.

Both partners keep one row per service: an individual session (个别) names one
person, a group event (集体) names every referred person who attended and
gives the head count (参加人数, which may include people not referred). People
are named only by the pseudonyms (服务对象编号, ``P-`` and 20 letters or
digits) the partner received with its referrals; several are separated by
``;``, ``；``, ``、``, ``,`` or spaces.

``ServiceRecordMapper`` reads any partner's columns (``record_columns`` builds
them from the partner's own Chinese headers; the English headers are the same
for every partner) with the partner's vocabulary of service types. A row with
cells it cannot read is rejected with one problem per bad cell; what only
the gateway knows (a pseudonym never issued to this partner, a unit code not
configured, a date in the future) comes back as the gateway's refusal of that
row. The record id (记录编号, or the partner's own word for it) keys the row: the
same id twice in a file is a duplicate, and importing a file again sends
nothing twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.partner_services.labels import EVENT_KINDS, SERVICE_OUTCOMES
from gateway.client.connectors import Cells, Column, FieldError, Labels, NativeFormat, Outgoing, Row
from gateway.domain.kinds import SERVICE_RECORD
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

PSEUDONYM = re.compile(r"P-[A-Z2-7]{20}")
_WHOLE_NUMBER = re.compile(r"(\d{1,6})\s*(分钟|分|min|人|名)?", re.IGNORECASE)


@dataclass(frozen=True)
class Headers:
    """A partner's Chinese headers of the record columns, each with further
    accepted spellings (the first is written in reports and ``columns``)."""

    record_id: tuple[str, ...]
    pseudonyms: tuple[str, ...]
    unit: tuple[str, ...]
    service_type: tuple[str, ...]
    event_kind: tuple[str, ...]
    service_date: tuple[str, ...]
    duration: tuple[str, ...]
    attendance: tuple[str, ...]
    outcome: tuple[str, ...]
    provider: tuple[str, ...]
    notes: tuple[str, ...]


def record_columns(name: str, chinese: Headers, service_types: Labels[int]) -> NativeFormat:
    """The native format ``name`` of a partner's records, headed as in ``chinese``."""

    def column(field: str, english: str, path: str, help: str, required: bool = True) -> Column:
        spellings: tuple[str, ...] = getattr(chinese, field)
        headers = (spellings[0], english, *spellings[1:])
        return Column(field, headers, required=required, path=path, help=help)

    return NativeFormat(
        name,
        (
            column("record_id", "record_id", "record_id", "the partner's id of the record"),
            column(
                "pseudonyms",
                "subject_pseudonyms",
                "subject_pseudonyms",
                "P-… of each person served, as received with the referral; ';' between several",
            ),
            column("unit", "unit_code", "unit_code", "county unit: code (610302) or name (渭滨区)"),
            column("service_type", "service_type", "service_type", service_types.choices()),
            column("event_kind", "event_kind", "event_kind", EVENT_KINDS.choices()),
            column("service_date", "service_date", "service_date", "YYYY-MM-DD"),
            column(
                "duration",
                "duration_minutes",
                "duration_minutes",
                "minutes, whole number (may be empty if nobody came)",
                required=False,
            ),
            column(
                "attendance",
                "attendance",
                "attendance",
                "head count of a group event (集体); may be empty for an individual one",
                required=False,
            ),
            column("outcome", "outcome", "outcome", SERVICE_OUTCOMES.choices()),
            column("provider", "provider", "provider", "who provided it", required=False),
            column("notes", "notes", "notes", "notes for the bureau", required=False),
        ),
    )


class ServiceRecordMapper:
    """Rows of a partner's record format → ``service.record`` messages."""

    def __init__(self, native: NativeFormat, service_types: Labels[int], units: Units) -> None:
        self.native = native
        self.service_types = service_types
        self.units = units

    def map_row(self, row: Row) -> Outgoing | list[FieldError]:
        """The row's record, or every bad cell of it."""
        cells = Cells(row)
        record_id = cells.text("record_id", required=True)
        record = pb.ServiceRecord(
            record_id=record_id,
            subject_pseudonyms=_pseudonyms(cells),
            unit_code=cells.unit("unit", self.units),
            service_type=cells.choice("service_type", self.service_types) or 0,  # type: ignore[arg-type]
            event_kind=cells.choice("event_kind", EVENT_KINDS) or 0,  # type: ignore[arg-type]
            duration_minutes=_whole_number(cells, "duration"),
            attendance=_whole_number(cells, "attendance"),
            outcome=cells.choice("outcome", SERVICE_OUTCOMES) or 0,  # type: ignore[arg-type]
            provider=cells.text("provider"),
            notes=cells.text("notes"),
        )
        served = cells.date("service_date")
        record.service_date = served.isoformat() if served else ""
        if record.event_kind == pb.EVENT_KIND_INDIVIDUAL and not record.attendance:
            record.attendance = 1
        if cells.errors:
            return cells.errors
        return Outgoing(SERVICE_RECORD, record, key=f"{self.record_id_header} {record_id}")

    @property
    def record_id_header(self) -> str:
        """The partner's name of its record ids (记录编号, 活动编号), which keys its rows."""
        return self.native.column("record_id").headers[0]


def _pseudonyms(cells: Cells) -> list[str]:
    found = [item.upper() for item in cells.items("pseudonyms")]
    if not found:
        cells.fail("pseudonyms", "is required: the P-… of each person served")
    for item in found:
        if not PSEUDONYM.fullmatch(item):
            cells.fail("pseudonyms", f"{item!r} is not a pseudonym (P- and 20 letters or digits)")
    return found


def _whole_number(cells: Cells, field: str) -> int:
    text = cells.text(field)
    match = _WHOLE_NUMBER.fullmatch(text)
    if text and match is None:
        cells.fail(field, f"{text!r} is not a whole number (at most 6 digits)")
    return int(match.group(1)) if match else 0

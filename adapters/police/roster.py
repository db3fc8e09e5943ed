"""The people under supervision (矫正对象) as the police linkage tracks them from
``roster.change``: unit, approved absences, absconding, leaving the roster, and
the last successful police check.

Approved absence: a leave granted (外出请假) or frequent cross-county travel
approved (经常性跨市县活动) covers every calendar day (China Standard Time) from
its start to its end date, inclusive, wherever the person is (the destination
is free text and not compared). A leave ended early (销假, LEAVE_ENDED) ends
the leave that began on the same start date at the ended message's end date.

A person is on the roster from enrolment (接收入矫) until released (解除矫正),
terminated (终止矫正) or transferred to a place of execution outside the city;
a new enrolment after that starts a new record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

_ABSENCES = frozenset(
    {pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED, pb.ROSTER_CHANGE_TYPE_FREQUENT_TRAVEL_APPROVED}
)
_LEAVING = frozenset(
    {
        pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED,
        pb.ROSTER_CHANGE_TYPE_RELEASED_PARDONED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_REVOKED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_IMPRISONED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_DEATH,
    }
)


@dataclass
class Absence:
    """An approved absence from the city (leave or frequent travel), dates inclusive."""

    start: str
    end: str
    mid: str

    def covers(self, day: date) -> bool:
        return date.fromisoformat(self.start) <= day <= date.fromisoformat(self.end)


@dataclass
class Supervised:
    """One person under supervision (state of the police linkage, stored as JSON).

    Times are ISO 8601 strings in UTC. ``due_from`` is when checks became due
    — the enrolment, or the end of an absconding: message ``due_mid`` — and
    ``silence_alerted_for`` the start of the silence last alerted about, so one
    silence raises one alert.
    """

    resident_id: str
    name: str
    unit_code: str
    due_from: str
    due_mid: str
    absences: list[Absence] = field(default_factory=list)
    absconded: bool = False
    left_on: str = ""
    last_check_at: str = ""
    last_check_mid: str = ""
    silence_alerted_for: str = ""

    @classmethod
    def enrol(cls, change: pb.RosterChange, mid: str, accepted_at: datetime) -> Supervised:
        return cls(
            resident_id=change.subject.resident_id.upper(),
            name=change.subject.name,
            unit_code=change.unit_code,
            due_from=accepted_at.astimezone(UTC).isoformat(),
            due_mid=mid,
        )

    @classmethod
    def from_state(cls, value: dict[str, Any]) -> Supervised:
        absences = [Absence(**item) for item in value.get("absences", [])]
        return cls(**{**value, "absences": absences})

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    def on_roster(self, day: date) -> bool:
        """Whether the person was under supervision here on ``day`` (not yet left)."""
        return not self.left_on or day <= date.fromisoformat(self.left_on)

    def absence_covering(self, day: date) -> Absence | None:
        return next((a for a in self.absences if a.covers(day)), None)

    def silence(self) -> tuple[datetime, str]:
        """Since when no successful check is known, and the message showing it:
        the last check, or what made checks due if that is later."""
        due = datetime.fromisoformat(self.due_from)
        last = datetime.fromisoformat(self.last_check_at) if self.last_check_at else None
        if last is not None and last > due:
            return last, self.last_check_mid
        return due, self.due_mid

    def checked(self, observed_at: datetime, mid: str) -> None:
        """Record a successful check (kept if it is the latest one)."""
        last = datetime.fromisoformat(self.last_check_at) if self.last_check_at else None
        if last is None or observed_at > last:
            self.last_check_at = observed_at.astimezone(UTC).isoformat()
            self.last_check_mid = mid

    def apply(self, change: pb.RosterChange, mid: str, accepted_at: datetime, units: Units) -> None:
        """Update for a roster change other than an enrolment."""
        kind = change.change_type
        if kind in _ABSENCES:
            self.absences.append(Absence(change.leave_start_date, change.leave_end_date, mid))
        elif kind == pb.ROSTER_CHANGE_TYPE_LEAVE_ENDED:
            for absence in self.absences:
                if absence.start == change.leave_start_date:
                    absence.end = min(absence.end, change.leave_end_date)
        elif kind == pb.ROSTER_CHANGE_TYPE_ABSCONDED:
            self.absconded = True
        elif kind == pb.ROSTER_CHANGE_TYPE_ABSCONDING_RESOLVED:
            self.absconded = False
            self.due_from, self.due_mid = accepted_at.astimezone(UTC).isoformat(), mid
        elif kind == pb.ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED:
            if change.new_unit_code in units:
                self.unit_code = change.new_unit_code
            else:
                self.left_on = change.effective_date
        elif kind in _LEAVING:
            self.left_on = change.effective_date

"""The lifecycle of an inspection finding (检察建议 / 纠正违法 / 口头纠正).

    ISSUED ──rectification──▶ RECTIFICATION_REPORTED ──closure CLOSED──▶ CLOSED
                                  ▲      │  ▲   │
                 rectification ───┘      │  └───┘ rectification (a supplementary report)
                                         ▼
                                     REOPENED ──rectification──▶ RECTIFICATION_REPORTED

ACKNOWLEDGED — the bureau has received the finding — is not a state here: the
bureau acknowledges the finding's *delivery*, which the gateway records in
the audit log and reports to the procuratorate through ``GetStatus``
(ACKNOWLEDGED); linkage rules do not see deliveries, and a rectification
report implies receipt. So the first rectification moves ISSUED straight to
RECTIFICATION_REPORTED.

CLOSED is final: a rectification or a closure of a closed finding is
refused, as is a closure (either decision) of a finding without a
rectification report since it was issued or reopened. A finding is overdue
when it has a deadline, today (China Standard Time) is after it, and it waits
for a rectification (ISSUED or REOPENED).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from gateway.domain.errors import FailedPrecondition, FieldViolation
from gateway.proto.silian.v1 import payloads_pb2 as pb


class State(StrEnum):
    ISSUED = "ISSUED"
    RECTIFICATION_REPORTED = "RECTIFICATION_REPORTED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"


class Step(StrEnum):
    RECTIFICATION = "rectification"
    CLOSURE = "closure"
    REOPENING = "reopening"


#: (state, step) → next state; any other pair is out of order.
TRANSITIONS: dict[tuple[State, Step], State] = {
    (State.ISSUED, Step.RECTIFICATION): State.RECTIFICATION_REPORTED,
    (State.REOPENED, Step.RECTIFICATION): State.RECTIFICATION_REPORTED,
    (State.RECTIFICATION_REPORTED, Step.RECTIFICATION): State.RECTIFICATION_REPORTED,
    (State.RECTIFICATION_REPORTED, Step.CLOSURE): State.CLOSED,
    (State.RECTIFICATION_REPORTED, Step.REOPENING): State.REOPENED,
}
_AWAITING_RECTIFICATION = frozenset({State.ISSUED, State.REOPENED})


@dataclass
class Event:
    """One step of a finding's history: the state it led to, message and time."""

    state: str
    mid: str
    at: str


@dataclass
class Finding:
    """One finding as the linkage tracks it (stored as JSON)."""

    finding_id: str
    inspection_id: str
    unit_code: str
    category: int
    deadline: str
    state: State
    history: list[Event] = field(default_factory=list)
    overdue_alerted_for: str = ""

    @classmethod
    def issue(cls, finding: pb.InspectionFinding, mid: str, at: datetime) -> Finding:
        return cls(
            finding_id=finding.finding_id,
            inspection_id=finding.inspection_id,
            unit_code=finding.unit_code,
            category=finding.category,
            deadline=finding.rectification_deadline,
            state=State.ISSUED,
            history=[Event(State.ISSUED, mid, at.isoformat())],
        )

    @classmethod
    def from_state(cls, value: dict[str, Any]) -> Finding:
        history = [Event(**item) for item in value["history"]]
        return cls(**{**value, "state": State(value["state"]), "history": history})

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    def advance(self, step: Step, mid: str, at: datetime) -> None:
        """Take ``step``; FailedPrecondition (FINDING_OUT_OF_ORDER) if the
        finding's state does not allow it."""
        following = TRANSITIONS.get((self.state, step))
        if following is None:
            allowed = ", ".join(state for (state, s) in TRANSITIONS if s == step)
            raise FailedPrecondition(
                "FINDING_OUT_OF_ORDER",
                f"finding {self.finding_id} is {self.state}; a {step} is allowed only "
                f"when it is {allowed}",
                [FieldViolation("payload.finding_id", f"finding is {self.state}")],
            )
        self.state = following
        self.history.append(Event(following, mid, at.isoformat()))

    def overdue(self, today: date) -> bool:
        """Past its deadline, waiting for a rectification, and not yet alerted
        about for this deadline."""
        return (
            bool(self.deadline)
            and self.state in _AWAITING_RECTIFICATION
            and today > date.fromisoformat(self.deadline)
            and self.overdue_alerted_for != self.deadline
        )

    def evidence(self) -> list[str]:
        """The issuing message, and the reopening one if it was reopened since."""
        mids = [self.history[0].mid]
        if self.state == State.REOPENED:
            mids.append(self.history[-1].mid)
        return mids


def unknown_finding(finding_id: str, step: Step) -> FailedPrecondition:
    return FailedPrecondition(
        "UNKNOWN_FINDING",
        f"no finding {finding_id!r} was issued through the gateway; a {step} needs one",
        [FieldViolation("payload.finding_id", "no such finding")],
    )


def repeated_finding(finding: Finding) -> FailedPrecondition:
    return FailedPrecondition(
        "FINDING_EXISTS",
        f"finding {finding.finding_id} was already issued (it is {finding.state}); "
        "give a new finding a new id",
        [FieldViolation("payload.finding_id", "already issued")],
    )

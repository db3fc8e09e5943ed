"""The lifecycle of an alert as the units dispose of it (闭环).

    RAISED ──verification started──▶ VERIFYING ──disposed──▶ DISPOSED ──closed──▶ CLOSED
                                        ▲                      │                   │
                                        │ verification      reopened            reopened
                                        │ started              ▼                   │
                                        └──────────────── REOPENED ◀───────────────┘

Every step is an ``alert.disposition`` from the bureau, named by a responsible
officer with a time. A step the alert's state does not allow is refused with
FailedPrecondition: disposing of an alert nobody verified, closing one not
disposed, closing twice (ALERT_ALREADY_CLOSED), reopening one still being
verified. A disposition of an alert the gateway never raised is refused
(UNKNOWN_ALERT), as is one whose type or unit differ from the alert's
(ALERT_MISMATCH) or whose time is before the alert or the previous step
(DISPOSITION_BEFORE_PREVIOUS_STEP).

Deadlines (``gateway.domain.deadlines``) run from the moment the alert was
raised — or reopened: a reopened alert gets fresh deadlines. The disposal
rate (处置率) counts an alert disposed within deadline when its *first*
disposal came by the disposal deadline.

Pure: the store keeps ``AlertCase`` rows; the service applies the steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from gateway.domain.deadlines import Deadline, Deadlines
from gateway.domain.errors import FailedPrecondition, FieldViolation
from gateway.domain.validation import enum_name
from gateway.proto.silian.v1 import payloads_pb2 as pb


class State(StrEnum):
    RAISED = "RAISED"
    VERIFYING = "VERIFYING"
    DISPOSED = "DISPOSED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"


#: (state, step) → next state; any other pair is out of order.
TRANSITIONS: dict[tuple[State, int], State] = {
    (State.RAISED, pb.DISPOSITION_STEP_VERIFICATION_STARTED): State.VERIFYING,
    (State.REOPENED, pb.DISPOSITION_STEP_VERIFICATION_STARTED): State.VERIFYING,
    (State.VERIFYING, pb.DISPOSITION_STEP_DISPOSED): State.DISPOSED,
    (State.DISPOSED, pb.DISPOSITION_STEP_CLOSED): State.CLOSED,
    (State.DISPOSED, pb.DISPOSITION_STEP_REOPENED): State.REOPENED,
    (State.CLOSED, pb.DISPOSITION_STEP_REOPENED): State.REOPENED,
}
#: States in which an alert still waits for the unit.
OPEN_STATES = frozenset({State.RAISED, State.VERIFYING, State.REOPENED})

#: A disposition with one of these findings or actions expects a roster change of
#: this type for the alert's subject (脱管 → ABSCONDED, 训诫, 警告).
FOLLOW_UPS: dict[tuple[str, int], int] = {
    ("finding", pb.DISPOSITION_FINDING_ABSCONDING_CONFIRMED): pb.ROSTER_CHANGE_TYPE_ABSCONDED,
    ("action", pb.DISPOSITION_ACTION_REPRIMAND): pb.ROSTER_CHANGE_TYPE_REPRIMAND,
    ("action", pb.DISPOSITION_ACTION_WARNING): pb.ROSTER_CHANGE_TYPE_WARNING,
}


@dataclass
class AlertCase:
    """One alert's disposal as the gateway tracks it (a row of ``alert_cases``)."""

    alert_id: str
    mid: str  # the alert message's id
    alert_type: int
    severity: int
    unit_code: str
    subject_key: str
    raised_at: datetime
    state: State = State.RAISED
    #: Deadlines of the current round (from raising, or from the last reopening).
    verify_due: datetime | None = None
    dispose_due: datetime | None = None
    #: First verification and first disposal (the figures of the report).
    verified_at: datetime | None = None
    disposed_at: datetime | None = None
    disposed_in_time: bool | None = None
    closed_at: datetime | None = None
    last_step_at: datetime | None = None
    last_mid: str = ""
    officer: str = ""
    method: int = 0
    finding: int = 0
    action: int = 0
    reopened: int = 0
    #: Escalations already raised for the current round.
    escalated_verify: bool = False
    escalated_dispose: bool = False
    #: The roster change a disposition expects, by when, and whether it came or
    #: was reminded of.
    expected_change: int = 0
    expected_by: datetime | None = None
    expected_done: bool = False

    @classmethod
    def raised(
        cls, alert: pb.Alert, mid: str, subject_key: str, at: datetime, deadline: Deadline | None
    ) -> AlertCase:
        case = cls(
            alert_id=alert.alert_id,
            mid=mid,
            alert_type=alert.alert_type,
            severity=alert.severity,
            unit_code=alert.unit_code,
            subject_key=subject_key,
            raised_at=at,
        )
        case._set_deadlines(at, deadline)
        return case

    def _set_deadlines(self, start: datetime, deadline: Deadline | None) -> None:
        if deadline is None:
            self.verify_due = self.dispose_due = None
            return
        self.verify_due = start + deadline.verify
        self.dispose_due = start + deadline.dispose
        self.escalated_verify = self.escalated_dispose = False

    def apply(self, disposition: pb.AlertDisposition, mid: str, deadlines: Deadlines) -> None:
        """Take the disposition's step; FailedPrecondition if it makes no sense here."""
        self._check_matches(disposition)
        step = disposition.step
        following = TRANSITIONS.get((self.state, step))
        if following is None:
            raise self._out_of_order(step)
        at = disposition.occurred_at.ToDatetime(tzinfo=UTC)
        previous = self.last_step_at or self.raised_at
        if at < previous:
            raise FailedPrecondition(
                "DISPOSITION_BEFORE_PREVIOUS_STEP",
                f"alert {self.alert_id}'s previous step was at {previous.isoformat()}; "
                f"this {_step_name(step)} says {at.isoformat()}",
                [FieldViolation("payload.occurred_at", "is before the alert's previous step")],
            )
        self.state = following
        self.last_step_at = at
        self.last_mid = mid
        self.officer = disposition.officer
        if step == pb.DISPOSITION_STEP_VERIFICATION_STARTED:
            self.method = disposition.method
            self.verified_at = self.verified_at or at
        elif step == pb.DISPOSITION_STEP_DISPOSED:
            self._disposed(disposition, at, deadlines)
        elif step == pb.DISPOSITION_STEP_CLOSED:
            self.closed_at = at
        elif step == pb.DISPOSITION_STEP_REOPENED:
            self.reopened += 1
            self.closed_at = None
            self._set_deadlines(at, deadlines.for_alert(self.alert_type, self.severity))

    def _disposed(
        self, disposition: pb.AlertDisposition, at: datetime, deadlines: Deadlines
    ) -> None:
        self.method = disposition.method or self.method
        self.finding = disposition.finding
        self.action = disposition.action
        if self.disposed_at is None:
            self.disposed_at = at
            self.disposed_in_time = self.dispose_due is None or at <= self.dispose_due
        expected = FOLLOW_UPS.get(("finding", disposition.finding)) or FOLLOW_UPS.get(
            ("action", disposition.action)
        )
        if expected:
            self.expected_change = expected
            self.expected_by = at + deadlines.follow_up(expected)
            self.expected_done = False

    def _check_matches(self, disposition: pb.AlertDisposition) -> None:
        violations = []
        if disposition.alert_type != self.alert_type:
            violations.append(
                FieldViolation(
                    "payload.alert_type", f"the alert is {enum_name(pb.AlertType, self.alert_type)}"
                )
            )
        if disposition.unit_code != self.unit_code:
            violations.append(
                FieldViolation("payload.unit_code", f"the alert is of {self.unit_code}")
            )
        if violations:
            raise FailedPrecondition(
                "ALERT_MISMATCH",
                f"alert {self.alert_id} is {enum_name(pb.AlertType, self.alert_type)} of unit "
                f"{self.unit_code}; the disposition says otherwise",
                violations,
            )

    def _out_of_order(self, step: int) -> FailedPrecondition:
        if self.state == State.CLOSED and step == pb.DISPOSITION_STEP_CLOSED:
            return FailedPrecondition(
                "ALERT_ALREADY_CLOSED",
                f"alert {self.alert_id} is already closed; reopen it first",
                [FieldViolation("payload.step", "the alert is CLOSED")],
            )
        allowed = ", ".join(state for (state, s) in TRANSITIONS if s == step)
        return FailedPrecondition(
            "DISPOSITION_OUT_OF_ORDER",
            f"alert {self.alert_id} is {self.state}; a {_step_name(step)} is allowed only "
            f"when it is {allowed}",
            [FieldViolation("payload.step", f"the alert is {self.state}")],
        )

    # --- time-driven rules ------------------------------------------------------

    def verification_overdue(self, now: datetime) -> bool:
        """Past the verification deadline with no verification started, not yet escalated."""
        return (
            self.verify_due is not None
            and self.state in (State.RAISED, State.REOPENED)
            and now > self.verify_due
            and not self.escalated_verify
        )

    def disposal_overdue(self, now: datetime) -> bool:
        """Past the disposal deadline and still open, not yet escalated."""
        return (
            self.dispose_due is not None
            and self.state in OPEN_STATES
            and now > self.dispose_due
            and not self.escalated_dispose
        )

    def follow_up_missing(self, now: datetime) -> bool:
        """A roster change was expected by now and did not come (not yet reminded)."""
        return (
            bool(self.expected_change)
            and not self.expected_done
            and self.expected_by is not None
            and now > self.expected_by
        )

    def overdue(self, now: datetime) -> bool:
        """Open and past a deadline of the current round (for lists and reports)."""
        if self.state not in OPEN_STATES:
            return False
        if self.state != State.VERIFYING and self.verify_due and now > self.verify_due:
            return True
        return bool(self.dispose_due and now > self.dispose_due)


def unknown_alert(alert_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "UNKNOWN_ALERT",
        f"the gateway raised no alert {alert_id!r}; a disposition must name one it raised",
        [FieldViolation("payload.alert_id", "no such alert")],
    )


def _step_name(step: int) -> str:
    name = enum_name(pb.DispositionStep, step).removeprefix("DISPOSITION_STEP_")
    return name.lower().replace("_", " ")

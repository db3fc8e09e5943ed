"""Closing the loop (闭环): the gateway keeps the lifecycle of every alert it
raises (``gateway.domain.disposal``) and of every verification campaign
(``gateway.domain.campaigns``), inside the transaction of the message or
sweep that changes them.

- an alert raised → a case with its deadlines;
- ``alert.disposition`` → the case's step, or a refusal (FAILED_PRECONDITION);
- ``roster.change`` → settles a disposition's expected roster change;
- ``verification.request`` / ``verification.result`` → the campaign's counts;
- the sweep → DISPOSAL_OVERDUE (not verified / not disposed by the deadline,
  once per deadline), ROSTER_CHANGE_MISSING (the roster change a disposition
  called for did not follow), CAMPAIGN_UNANSWERED (people unanswered past the
  request's deadline). Their evidence is the alert, disposition or request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from gateway.domain import kinds
from gateway.domain.calendar import BUREAU_TIME
from gateway.domain.campaigns import Campaign, repeated_campaign
from gateway.domain.deadlines import Deadlines
from gateway.domain.disposal import FOLLOW_UPS, AlertCase, unknown_alert
from gateway.domain.linkage import Accepted, AlertDraft
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.service.alerts import GATEWAY_PRINCIPAL
from gateway.store import disposal as stored
from gateway.store import sealed
from gateway.store.models import StoredMessage

#: The kinds whose acceptance changes an alert case or a campaign.
KINDS = frozenset(
    {
        kinds.ALERT_DISPOSITION,
        kinds.ROSTER_CHANGE,
        kinds.VERIFICATION_REQUEST,
        kinds.VERIFICATION_RESULT,
    }
)
#: The roster changes a disposition may wait for (the others cost no query).
_EXPECTED_CHANGES = frozenset(FOLLOW_UPS.values())


class Disposal:
    """Alert cases and campaigns, kept by the acceptance and the sweep."""

    def __init__(self, deadlines: Deadlines, subject_key: Callable[[str], str]) -> None:
        self.deadlines = deadlines
        self._subject_key = subject_key

    def _key(self, subject: pb.Subject) -> str:
        return self._subject_key(subject.resident_id) if subject.resident_id else ""

    def on_raised(self, session: Session, alert: pb.Alert, mid: str, at: datetime) -> None:
        """Open the case of an alert the gateway just raised."""
        deadline = self.deadlines.for_alert(alert.alert_type, alert.severity)
        case = AlertCase.raised(alert, mid, self._key(alert.subject), at, deadline)
        stored.save_case(session, case)
        session.flush()

    def on_accepted(self, session: Session, accepted: Accepted) -> None:
        """Apply an accepted message; raises FailedPrecondition before changing
        anything when it makes no sense for the case or campaign it names."""
        message = accepted.message
        if isinstance(message, pb.AlertDisposition):
            case = stored.load_case(session, message.alert_id)
            if case is None:
                raise unknown_alert(message.alert_id)
            case.apply(message, accepted.mid, self.deadlines)
            stored.save_case(session, case)
        elif isinstance(message, pb.RosterChange) and message.change_type in _EXPECTED_CHANGES:
            key = self._key(message.subject)
            for case in stored.cases_expecting(session, key, message.change_type) if key else ():
                case.expected_done = True
                stored.save_case(session, case)
        elif isinstance(message, pb.VerificationRequest):
            existing = stored.load_campaign(session, message.request_id)
            if existing is not None:
                raise repeated_campaign(existing)
            asked = [self._key(subject) for subject in message.subjects]
            campaign = Campaign.requested(message, accepted.mid, asked, accepted.accepted_at)
            stored.save_campaign(session, campaign)
            session.flush()
        elif isinstance(message, pb.VerificationResult) and message.request_id:
            found = stored.load_campaign(session, message.request_id)
            if found is not None:
                found.answer(self._key(message.subject), message.outcome)
                stored.save_campaign(session, found)

    def sweep(self, session: Session, now: datetime) -> list[AlertDraft]:
        """Escalations and reminders due at ``now``, each raised once."""
        drafts: list[AlertDraft] = []
        for case in stored.cases_due(session, now):
            if case.disposal_overdue(now):
                case.escalated_dispose = case.escalated_verify = True
                drafts.append(self._overdue(session, case, "disposed of", case.dispose_due))
            elif case.verification_overdue(now):
                case.escalated_verify = True
                drafts.append(self._overdue(session, case, "verified", case.verify_due))
            if case.follow_up_missing(now):
                case.expected_done = True  # reminded once
                drafts.append(self._missing_change(session, case))
            stored.save_case(session, case)
        for campaign in stored.campaigns_due(session, now):
            if campaign.overdue(now):
                campaign.unanswered_alerted = True
                stored.save_campaign(session, campaign)
                drafts.append(_unanswered(campaign))
        return drafts

    def _overdue(
        self, session: Session, case: AlertCase, what: str, due: datetime | None
    ) -> AlertDraft:
        name = pb.AlertType.Name(case.alert_type).removeprefix("ALERT_TYPE_")  # type: ignore[arg-type]
        return AlertDraft(
            alert_type=pb.ALERT_TYPE_DISPOSAL_OVERDUE,
            severity=pb.SEVERITY_HIGH,
            unit_code=case.unit_code,
            description=(
                f"处置超期 alert {case.alert_id} ({name}, raised {_local(case.raised_at)}) "
                f"was not {what} by {_local(due)}; it is {case.state}"
            ),
            evidence_mids=[m for m in (case.mid, case.last_mid) if m],
            subject=_subject_of(session, case),
        )

    def _missing_change(self, session: Session, case: AlertCase) -> AlertDraft:
        change = pb.RosterChangeType.Name(case.expected_change)  # type: ignore[arg-type]
        return AlertDraft(
            alert_type=pb.ALERT_TYPE_ROSTER_CHANGE_MISSING,
            severity=pb.SEVERITY_HIGH,
            unit_code=case.unit_code,
            description=(
                f"alert {case.alert_id} was disposed of ({_finding_and_action(case)}) but no "
                f"roster.change {change.removeprefix('ROSTER_CHANGE_TYPE_')} followed by "
                f"{_local(case.expected_by)}"
            ),
            evidence_mids=[m for m in (case.mid, case.last_mid) if m],
            subject=_subject_of(session, case),
        )


def _unanswered(campaign: Campaign) -> AlertDraft:
    return AlertDraft(
        alert_type=pb.ALERT_TYPE_CAMPAIGN_UNANSWERED,
        severity=pb.SEVERITY_MEDIUM,
        unit_code=campaign.unit_code,
        description=(
            f"核查未反馈 verification request {campaign.request_id}: {campaign.unanswered} of "
            f"{len(campaign.asked)} people unanswered by the deadline {_local(campaign.deadline)}"
        ),
        evidence_mids=[campaign.mid],
    )


def _subject_of(session: Session, case: AlertCase) -> pb.Subject | None:
    """The person of the case's alert, from the alert as the gateway stored it."""
    row = session.get(StoredMessage, (GATEWAY_PRINCIPAL, case.mid))
    if row is None:
        return None
    if not row.payload:  # purged under the retention rules
        return None
    opened = sealed.keys_of(session).open(row.payload, sealed.message_row(row.sender, row.mid))
    alert = kinds.decode(kinds.ALERT, opened, allow_unknown=True)
    assert isinstance(alert, pb.Alert)
    return (
        pb.Subject(resident_id=alert.subject.resident_id, name=alert.subject.name)
        if (alert.subject.resident_id)
        else None
    )


def _finding_and_action(case: AlertCase) -> str:
    finding = pb.DispositionFinding.Name(case.finding)  # type: ignore[arg-type]
    action = pb.DispositionAction.Name(case.action)  # type: ignore[arg-type]
    return (
        f"{finding.removeprefix('DISPOSITION_FINDING_')}, "
        f"{action.removeprefix('DISPOSITION_ACTION_')}"
    )


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(BUREAU_TIME).strftime("%Y-%m-%d %H:%M")

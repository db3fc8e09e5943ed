"""The rules of alert disposal without a gateway: the lifecycle, deadlines,
follow-up roster changes, campaigns and the payload rules of a disposition."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gateway.domain import kinds
from gateway.domain.campaigns import Campaign
from gateway.domain.deadlines import Deadlines
from gateway.domain.disposal import AlertCase, State
from gateway.domain.errors import FailedPrecondition
from gateway.domain.units import Units
from gateway.domain.validation import validate
from gateway.proto.silian.v1 import payloads_pb2 as pb

RAISED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
DEADLINES = Deadlines()


def _case(alert_type: int = pb.ALERT_TYPE_OUT_OF_BOUNDS) -> AlertCase:
    alert = pb.Alert(
        alert_id="AL-1", alert_type=alert_type, severity=pb.SEVERITY_HIGH, unit_code="610303"
    )
    deadline = DEADLINES.for_alert(alert.alert_type, alert.severity)
    return AlertCase.raised(alert, "mid-alert", "subject-key", RAISED, deadline)


def _step(step: int, hours: float, **fields: object) -> pb.AlertDisposition:
    disposition = pb.AlertDisposition(
        disposition_id=f"AD-{step}-{hours}",
        alert_id="AL-1",
        alert_type=pb.ALERT_TYPE_OUT_OF_BOUNDS,
        unit_code="610303",
        step=step,  # type: ignore[arg-type]
        officer="王矫正官",
        **fields,  # type: ignore[arg-type]
    )
    disposition.occurred_at.FromDatetime(RAISED + timedelta(hours=hours))
    return disposition


VERIFY = pb.DISPOSITION_STEP_VERIFICATION_STARTED
DISPOSE = pb.DISPOSITION_STEP_DISPOSED
CLOSE = pb.DISPOSITION_STEP_CLOSED
REOPEN = pb.DISPOSITION_STEP_REOPENED


def _refusal(case: AlertCase, disposition: pb.AlertDisposition) -> FailedPrecondition:
    with pytest.raises(FailedPrecondition) as raised:
        case.apply(disposition, "mid", DEADLINES)
    return raised.value


def test_an_alert_goes_raised_verifying_disposed_closed_with_its_first_times() -> None:
    case = _case()
    case.apply(_step(VERIFY, 1), "m1", DEADLINES)
    case.apply(_step(DISPOSE, 3, finding=pb.DISPOSITION_FINDING_FALSE_ALARM), "m2", DEADLINES)
    case.apply(_step(CLOSE, 4), "m3", DEADLINES)
    assert case.state == State.CLOSED
    assert case.verified_at == RAISED + timedelta(hours=1)
    assert case.disposed_at == RAISED + timedelta(hours=3)
    assert case.disposed_in_time is True
    assert case.last_mid == "m3"


def test_closing_twice_is_refused_as_already_closed() -> None:
    case = _case()
    for step, hours in ((VERIFY, 1), (DISPOSE, 2), (CLOSE, 3)):
        case.apply(_step(step, hours), "m", DEADLINES)
    assert _refusal(case, _step(CLOSE, 4)).reason == "ALERT_ALREADY_CLOSED"


@pytest.mark.parametrize(
    ("done", "step", "state"),
    [
        ((), DISPOSE, "RAISED"),
        ((), CLOSE, "RAISED"),
        ((), REOPEN, "RAISED"),
        ((VERIFY,), VERIFY, "VERIFYING"),
        ((VERIFY,), CLOSE, "VERIFYING"),
        ((VERIFY, DISPOSE), DISPOSE, "DISPOSED"),
    ],
)
def test_a_step_out_of_order_is_refused_naming_the_state(
    done: tuple[int, ...], step: int, state: str
) -> None:
    case = _case()
    for hours, earlier in enumerate(done, start=1):
        case.apply(_step(earlier, hours), "m", DEADLINES)
    refused = _refusal(case, _step(step, 5))
    assert refused.reason == "DISPOSITION_OUT_OF_ORDER"
    assert f"is {state}" in refused.message


def test_a_disposition_of_another_type_or_unit_or_before_the_alert_is_refused() -> None:
    case = _case()
    wrong_type = _step(VERIFY, 1)
    wrong_type.alert_type = pb.ALERT_TYPE_NEW_OFFENCE
    assert _refusal(case, wrong_type).reason == "ALERT_MISMATCH"
    wrong_unit = _step(VERIFY, 1)
    wrong_unit.unit_code = "610302"
    assert _refusal(case, wrong_unit).reason == "ALERT_MISMATCH"
    assert _refusal(case, _step(VERIFY, -1)).reason == "DISPOSITION_BEFORE_PREVIOUS_STEP"
    assert case.state == State.RAISED


def test_reopening_starts_fresh_deadlines_and_keeps_the_first_disposal() -> None:
    case = _case()
    for step, hours in ((VERIFY, 1), (DISPOSE, 30)):
        case.apply(_step(step, hours), "m", DEADLINES)
    assert case.disposed_in_time is False  # 越界: dispose within 24 hours
    case.apply(_step(REOPEN, 40, reason="复核发现未请假"), "m", DEADLINES)
    assert case.state == State.REOPENED and case.reopened == 1
    assert case.verify_due == RAISED + timedelta(hours=44)
    assert case.disposed_at == RAISED + timedelta(hours=30)
    case.apply(_step(VERIFY, 41), "m", DEADLINES)
    assert case.state == State.VERIFYING


def test_deadlines_escalate_verification_then_disposal_once() -> None:
    case = _case()
    assert not case.verification_overdue(RAISED + timedelta(hours=4))
    assert case.verification_overdue(RAISED + timedelta(hours=5))
    case.escalated_verify = True
    assert not case.verification_overdue(RAISED + timedelta(hours=6))
    assert case.disposal_overdue(RAISED + timedelta(hours=25))
    case.apply(_step(VERIFY, 26), "m", DEADLINES)
    case.apply(_step(DISPOSE, 27), "m", DEADLINES)
    assert not case.disposal_overdue(RAISED + timedelta(hours=28))


def test_confirmed_absconding_expects_the_absconded_roster_change_in_time() -> None:
    case = _case(pb.ALERT_TYPE_OUT_OF_BOUNDS)
    case.apply(_step(VERIFY, 1), "m", DEADLINES)
    found = _step(
        DISPOSE,
        2,
        finding=pb.DISPOSITION_FINDING_ABSCONDING_CONFIRMED,
        action=pb.DISPOSITION_ACTION_REVOCATION_REQUESTED,
    )
    case.apply(found, "m", DEADLINES)
    assert case.expected_change == pb.ROSTER_CHANGE_TYPE_ABSCONDED
    assert case.expected_by == RAISED + timedelta(hours=2 + 24)
    assert not case.follow_up_missing(RAISED + timedelta(hours=25))
    assert case.follow_up_missing(RAISED + timedelta(hours=27))


def test_the_escalations_themselves_have_no_deadline_and_types_can_be_configured() -> None:
    assert DEADLINES.for_alert(pb.ALERT_TYPE_DISPOSAL_OVERDUE, pb.SEVERITY_HIGH) is None
    configured = Deadlines.from_mapping(
        {
            "deadlines": {
                "NEW_OFFENCE/URGENT": {"verify_hours": 0.5, "dispose_hours": 6},
                "OUT_OF_BOUNDS": {"verify_hours": 2, "dispose_hours": 12},
            },
            "follow_up": {"absconded_hours": 12},
        }
    )
    urgent = configured.for_alert(pb.ALERT_TYPE_NEW_OFFENCE, pb.SEVERITY_URGENT)
    assert urgent is not None and urgent.verify == timedelta(minutes=30)
    high = configured.for_alert(pb.ALERT_TYPE_NEW_OFFENCE, pb.SEVERITY_HIGH)
    assert high is not None and high.dispose == timedelta(hours=12)  # the shipped type default
    assert configured.follow_up(pb.ROSTER_CHANGE_TYPE_ABSCONDED) == timedelta(hours=12)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"deadlines": {"OUT_OF_BOUND": {"verify_hours": 1, "dispose_hours": 2}}}, "OUT_OF_BOUND"),
        ({"deadlines": {"OUT_OF_BOUNDS/HUGE": {"verify_hours": 1, "dispose_hours": 2}}}, "HUGE"),
        ({"deadlines": {"default": {"verify_hours": 0, "dispose_hours": 2}}}, "verify_hours"),
        ({"deadlines": {"default": {"verify_hours": 5, "dispose_hours": 2}}}, "less than"),
        ({"follow_up": {"sanction_hours": "3"}}, "sanction_hours"),
        ({"deadline": {}}, "unknown section"),
    ],
)
def test_a_wrong_disposal_file_is_refused_naming_the_entry(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Deadlines.from_mapping(data)


def test_a_campaign_counts_people_answered_and_hits_and_alerts_once_past_its_deadline() -> None:
    request = pb.VerificationRequest(request_id="VQ-1", unit_code="610303", reason="专项")
    request.response_deadline.FromDatetime(RAISED + timedelta(days=2))
    campaign = Campaign.requested(request, "mid", ["a", "b", "c"], RAISED)
    campaign.answer("a", pb.CHECK_OUTCOME_HIT)
    campaign.answer("a", pb.CHECK_OUTCOME_NO_HIT)
    campaign.answer("z", pb.CHECK_OUTCOME_NO_HIT)  # not asked: counted as a result only
    assert (len(campaign.answered), campaign.results, campaign.hits) == (1, 3, 1)
    assert campaign.state(RAISED + timedelta(days=1)) == "OPEN"
    assert campaign.overdue(RAISED + timedelta(days=3))
    assert campaign.state(RAISED + timedelta(days=3)) == "OVERDUE"
    campaign.answer("b", pb.CHECK_OUTCOME_NO_HIT)
    campaign.answer("c", pb.CHECK_OUTCOME_NO_HIT)
    assert campaign.state(RAISED + timedelta(days=3)) == "COMPLETE"
    assert not campaign.overdue(RAISED + timedelta(days=3))


def _violations(disposition: pb.AlertDisposition) -> dict[str, str]:
    found = validate(
        kinds.ALERT_DISPOSITION, disposition, units=Units.default(), today=date(2026, 5, 2)
    )
    return {v.field: v.description for v in found}


def test_each_step_must_say_what_it_needs() -> None:
    assert _violations(_step(VERIFY, 1)) == {
        "payload.method": "is required for DISPOSITION_STEP_VERIFICATION_STARTED "
        "(must not be VERIFICATION_METHOD_UNSPECIFIED)"
    }
    assert set(_violations(_step(DISPOSE, 1))) == {"payload.finding", "payload.action"}
    assert _violations(_step(REOPEN, 1)) == {
        "payload.reason": "is required for DISPOSITION_STEP_REOPENED"
    }
    blank = pb.AlertDisposition(unit_code="610303", step=CLOSE)
    assert {"payload.alert_id", "payload.officer", "payload.occurred_at"} <= set(_violations(blank))


def test_a_reprimand_or_warning_expects_its_roster_change_within_the_sanction_time() -> None:
    for action, change in (
        (pb.DISPOSITION_ACTION_REPRIMAND, pb.ROSTER_CHANGE_TYPE_REPRIMAND),
        (pb.DISPOSITION_ACTION_WARNING, pb.ROSTER_CHANGE_TYPE_WARNING),
    ):
        case = _case()
        case.apply(_step(VERIFY, 1), "m", DEADLINES)
        found = pb.DISPOSITION_FINDING_VIOLATION_CONFIRMED
        case.apply(_step(DISPOSE, 2, finding=found, action=action), "m", DEADLINES)
        assert (case.expected_change, case.expected_by) == (change, RAISED + timedelta(hours=74))
    talked = _case()
    talked.apply(_step(VERIFY, 1), "m", DEADLINES)
    talked.apply(_step(DISPOSE, 2, action=pb.DISPOSITION_ACTION_TALK), "m", DEADLINES)
    assert talked.expected_change == 0 and not talked.follow_up_missing(RAISED + timedelta(days=9))


def test_a_disposal_file_that_is_not_toml_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "disposal.toml"
    assert Deadlines.load(path) == Deadlines()  # no file: the defaults
    path.write_text("[deadlines.OUT_OF_BOUNDS\nverify_hours = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"disposal\.toml"):
        Deadlines.load(path)
    path.write_text("[deadlines.OUT_OF_BOUNDS]\nverify_hours = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"deadlines\.OUT_OF_BOUNDS\.dispose_hours"):
        Deadlines.load(path)

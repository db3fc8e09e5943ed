from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.domain import kinds, validation
from gateway.domain.errors import FieldViolation
from gateway.domain.units import Units
from gateway.domain.validation import (
    ValidationContext,
    check_character,
    register_validator,
    resident_id_problem,
    validate,
)
from gateway.proto.silian.v1 import payloads_pb2 as pb

TODAY = date(2025, 6, 1)
UNITS = Units.default()


def resident_id(born: str = "19900101", sequence: str = "123", region: str = "610302") -> str:
    """A valid ID; an odd ``sequence`` (17th digit) is a man, an even one a woman."""
    body = f"{region}{born}{sequence}"
    return body + check_character(body)


ID = resident_id()
ID_WITH_X = next(
    candidate
    for candidate in (resident_id(sequence=f"{n:03d}") for n in range(1000))
    if candidate.endswith("X")
)

WRONG_CHECK = ID[:17] + ("0" if ID[17] != "0" else "1")


def at(year: int, month: int, day: int, hour: int = 9) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(year, month, day, hour, tzinfo=UTC))
    return stamp


def fields(kind: str, message: Message) -> list[str]:
    return [violation.field for violation in validate(kind, message, units=UNITS, today=TODAY)]


def descriptions(kind: str, message: Message) -> dict[str, str]:
    violations = validate(kind, message, units=UNITS, today=TODAY)
    return {violation.field: violation.description for violation in violations}


# --- valid examples, one per kind -------------------------------------------------


def enrolment() -> pb.RosterChange:
    return pb.RosterChange(
        change_id="RC-1",
        change_type=pb.ROSTER_CHANGE_TYPE_ENROLMENT,
        subject=pb.Subject(resident_id=ID, name="张三", gender=pb.GENDER_MALE),
        unit_code="610302",
        category=pb.CORRECTION_CATEGORY_PROBATION,
        supervision_level=pb.SUPERVISION_LEVEL_ORDINARY,
        effective_date="2025-03-01",
        term_start_date="2025-03-01",
        term_end_date="2026-02-28",
        offence="盗窃罪",
    )


def roster_change(change_type: int, **values: object) -> pb.RosterChange:
    return pb.RosterChange(
        change_id="RC-2",
        change_type=change_type,
        subject=pb.Subject(resident_id=ID),
        unit_code="610302",
        effective_date="2025-05-01",
        **values,
    )


def verification_request() -> pb.VerificationRequest:
    return pb.VerificationRequest(
        request_id="VQ-1",
        unit_code="610303",
        subjects=[pb.Subject(resident_id=ID), pb.Subject(resident_id=ID_WITH_X)],
        check_types=[pb.CHECK_TYPE_HOTEL_STAY, pb.CHECK_TYPE_TRAVEL],
        reason="大数据核查",
    )


def verification_result() -> pb.VerificationResult:
    return pb.VerificationResult(
        result_id="VR-1",
        subject=pb.Subject(resident_id=ID),
        unit_code="610303",
        check_type=pb.CHECK_TYPE_HOTEL_STAY,
        outcome=pb.CHECK_OUTCOME_HIT,
        observed_at=at(2025, 5, 30),
        place="西安市某酒店",
        place_region_code="610113",
    )


def inspection_finding() -> pb.InspectionFinding:
    return pb.InspectionFinding(
        inspection_id="IN-2025-01",
        finding_id="F-1",
        unit_code="610304",
        category=pb.FINDING_CATEGORY_PROCURATORIAL_SUGGESTION,
        severity=pb.SEVERITY_MEDIUM,
        finding="请假审批材料不全",
        recommendation="完善审批档案",
        issued_date="2025-05-20",
        rectification_deadline="2025-06-20",
    )


def inspection_rectification() -> pb.InspectionRectification:
    return pb.InspectionRectification(
        finding_id="F-1",
        unit_code="610304",
        actions="补齐档案",
        evidence_refs=["DOC-7"],
        reported_date="2025-05-28",
    )


def inspection_closure() -> pb.InspectionClosure:
    return pb.InspectionClosure(
        finding_id="F-1",
        unit_code="610304",
        decision=pb.CLOSURE_DECISION_CLOSED,
        decided_date="2025-05-31",
    )


def service_referral() -> pb.ServiceReferral:
    return pb.ServiceReferral(
        referral_id="SR-1",
        subject=pb.Subject(resident_id=ID),
        unit_code="610371",
        needs=[pb.SERVICE_TYPE_COUNSELLING],
    )


def service_record() -> pb.ServiceRecord:
    return pb.ServiceRecord(
        record_id="REC-1",
        unit_code="610371",
        service_type=pb.SERVICE_TYPE_COUNSELLING,
        event_kind=pb.EVENT_KIND_INDIVIDUAL,
        service_date="2025-05-30",
        duration_minutes=60,
        subject_pseudonyms=["p-1"],
        outcome=pb.SERVICE_OUTCOME_COMPLETED,
    )


def alert() -> pb.Alert:
    return pb.Alert(
        alert_id="AL-1",
        alert_type=pb.ALERT_TYPE_OUT_OF_BOUNDS,
        severity=pb.SEVERITY_HIGH,
        unit_code="610303",
        subject=pb.Subject(resident_id=ID),
        description="hotel stay in 610113 with no approved leave",
        evidence_mids=[str(uuid.uuid4())],
        raised_at=at(2025, 5, 31),
    )


def alert_disposition() -> pb.AlertDisposition:
    return pb.AlertDisposition(
        disposition_id="AD-1",
        alert_id="AL-1",
        alert_type=pb.ALERT_TYPE_OUT_OF_BOUNDS,
        unit_code="610303",
        step=pb.DISPOSITION_STEP_DISPOSED,
        method=pb.VERIFICATION_METHOD_VIDEO_CALL,
        finding=pb.DISPOSITION_FINDING_APPROVED_LEAVE,
        action=pb.DISPOSITION_ACTION_NONE,
        officer="王矫正官",
        occurred_at=at(2025, 5, 31),
    )


VALID: dict[str, Callable[[], Message]] = {
    kinds.ROSTER_CHANGE: enrolment,
    kinds.VERIFICATION_REQUEST: verification_request,
    kinds.VERIFICATION_RESULT: verification_result,
    kinds.INSPECTION_FINDING: inspection_finding,
    kinds.INSPECTION_RECTIFICATION: inspection_rectification,
    kinds.INSPECTION_CLOSURE: inspection_closure,
    kinds.SERVICE_REFERRAL: service_referral,
    kinds.SERVICE_RECORD: service_record,
    kinds.ALERT: alert,
    kinds.ALERT_DISPOSITION: alert_disposition,
}


def test_there_is_a_valid_example_of_every_kind() -> None:
    assert sorted(VALID) == kinds.known_kinds()


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_complete_message_of_each_kind_is_valid(kind: str) -> None:
    assert validate(kind, VALID[kind](), units=UNITS, today=TODAY) == []


@pytest.mark.parametrize("kind", sorted(VALID))
def test_an_empty_message_of_each_kind_names_its_required_unit(kind: str) -> None:
    assert "payload.unit_code" in fields(kind, kinds.payload_type(kind)())


def test_a_payload_of_the_wrong_type_is_a_caller_bug() -> None:
    with pytest.raises(TypeError, match="RosterChange"):
        validate(kinds.ROSTER_CHANGE, alert(), units=UNITS, today=TODAY)


# --- resident identity numbers ----------------------------------------------------


def test_a_valid_resident_id_has_no_problem() -> None:
    assert resident_id_problem(ID) is None
    assert resident_id_problem(ID_WITH_X) is None


def test_a_lower_case_check_x_is_accepted() -> None:
    assert resident_id_problem(ID_WITH_X.lower()) is None


def test_check_character_follows_iso_7064_mod_11_2() -> None:
    # The example of GB 11643-1999.
    assert check_character("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (ID[:17], "must be 18 characters, got 17"),
        (ID + "1", "must be 18 characters, got 19"),
        ("61030219900101A23" + "4", "first 17 characters must be digits"),
        ("６１０３０２１９９００１０１１２３"[:17] + "4", "first 17 characters must be digits"),
        (ID[:17] + "Y", "last character must be a digit or X"),
        ("610302199913401234", "birth date 19991340 is not a date"),
        ("610302199902301234", "birth date 19990230 is not a date"),
        (resident_id(born="20250602"), "birth date 20250602 is in the future"),
        (WRONG_CHECK, f"check character should be {ID[17]}"),
    ],
)
def test_an_invalid_resident_id_has_a_specific_problem(value: str, problem: str) -> None:
    assert resident_id_problem(value, today=TODAY) == problem


def test_a_single_digit_typo_breaks_the_check_character() -> None:
    typo = ID[:3] + str((int(ID[3]) + 1) % 10) + ID[4:]
    assert resident_id_problem(typo) == f"check character should be {check_character(typo[:17])}"


# --- subjects, wherever they appear -----------------------------------------------


def test_an_invalid_resident_id_is_reported_at_its_subject() -> None:
    message = enrolment()
    message.subject.resident_id = WRONG_CHECK
    assert descriptions(kinds.ROSTER_CHANGE, message) == {
        "payload.subject.resident_id": f"check character should be {ID[17]}"
    }


def test_an_invalid_resident_id_in_a_list_is_reported_with_its_index() -> None:
    message = verification_request()
    message.subjects.append(pb.Subject(resident_id="610302199913401234"))
    assert descriptions(kinds.VERIFICATION_REQUEST, message) == {
        "payload.subjects[2].resident_id": "birth date 19991340 is not a date"
    }


def test_birth_date_and_gender_must_agree_with_the_resident_id() -> None:
    message = enrolment()
    message.subject.birth_date = "1990-01-02"
    message.subject.gender = pb.GENDER_FEMALE
    assert descriptions(kinds.ROSTER_CHANGE, message) == {
        "payload.subject.birth_date": "does not match the resident ID's birth date 1990-01-01",
        "payload.subject.gender": "does not match the resident ID (GENDER_MALE)",
    }


def test_senders_may_not_set_pseudonym_or_age_band() -> None:
    message = service_referral()
    message.subject.pseudonym = "guess"
    message.subject.age_band = "30-39"
    assert fields(kinds.SERVICE_REFERRAL, message) == [
        "payload.subject.pseudonym",
        "payload.subject.age_band",
    ]


def test_the_same_subject_twice_in_a_request_is_reported() -> None:
    message = verification_request()
    message.subjects.append(pb.Subject(resident_id=ID_WITH_X.lower()))
    assert descriptions(kinds.VERIFICATION_REQUEST, message) == {
        "payload.subjects[2]": "repeats subjects[1]"
    }


# --- roster.change ----------------------------------------------------------------


def test_an_enrolment_needs_name_category_and_term() -> None:
    message = enrolment()
    message.subject.name = ""
    message.ClearField("category")
    message.ClearField("term_start_date")
    message.ClearField("term_end_date")
    assert descriptions(kinds.ROSTER_CHANGE, message) == {
        "payload.category": "is required for ROSTER_CHANGE_TYPE_ENROLMENT "
        "(must not be CORRECTION_CATEGORY_UNSPECIFIED)",
        "payload.term_start_date": "is required for ROSTER_CHANGE_TYPE_ENROLMENT",
        "payload.term_end_date": "is required for ROSTER_CHANGE_TYPE_ENROLMENT",
        "payload.subject.name": "is required for ROSTER_CHANGE_TYPE_ENROLMENT",
    }


def test_every_roster_change_needs_id_type_subject_unit_and_date() -> None:
    assert fields(kinds.ROSTER_CHANGE, pb.RosterChange()) == [
        "payload.change_id",
        "payload.subject.resident_id",
        "payload.change_type",
        "payload.unit_code",
        "payload.effective_date",
    ]


def test_a_term_may_not_end_before_it_starts() -> None:
    message = enrolment()
    message.term_end_date = "2025-02-28"
    assert descriptions(kinds.ROSTER_CHANGE, message) == {
        "payload.term_end_date": "must not be before term_start_date (2025-03-01)"
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2025/03/01", "must be a date in the form YYYY-MM-DD, got '2025/03/01'"),
        ("20250301", "must be a date in the form YYYY-MM-DD, got '20250301'"),
        ("2025-02-30", "2025-02-30 is not a date"),
    ],
)
def test_dates_must_be_real_iso_dates(value: str, problem: str) -> None:
    message = enrolment()
    message.effective_date = value
    assert descriptions(kinds.ROSTER_CHANGE, message) == {"payload.effective_date": problem}


def test_an_unknown_unit_is_refused() -> None:
    message = enrolment()
    message.unit_code = "610113"
    assert descriptions(kinds.ROSTER_CHANGE, message) == {
        "payload.unit_code": "'610113' is not a configured unit code"
    }


def test_an_unspecified_or_unknown_enum_is_refused() -> None:
    message = enrolment()
    message.change_type = pb.ROSTER_CHANGE_TYPE_UNSPECIFIED
    message.supervision_level = 99
    assert descriptions(kinds.ROSTER_CHANGE, message) == {
        "payload.change_type": "is required (must not be ROSTER_CHANGE_TYPE_UNSPECIFIED)",
        "payload.supervision_level": "99 is not a known SupervisionLevel",
    }


@pytest.mark.parametrize(
    "change_type",
    [
        pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED,
        pb.ROSTER_CHANGE_TYPE_LEAVE_ENDED,
        pb.ROSTER_CHANGE_TYPE_FREQUENT_TRAVEL_APPROVED,
    ],
)
def test_leave_changes_need_the_leave_period(change_type: int) -> None:
    assert {"payload.leave_start_date", "payload.leave_end_date"} <= set(
        fields(kinds.ROSTER_CHANGE, roster_change(change_type))
    )


def test_granted_leave_needs_a_destination_and_an_ordered_period() -> None:
    message = roster_change(
        pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED,
        leave_start_date="2025-06-10",
        leave_end_date="2025-06-09",
    )
    assert descriptions(kinds.ROSTER_CHANGE, message) == {
        "payload.leave_end_date": "must not be before leave_start_date (2025-06-10)",
        "payload.destination": "is required for ROSTER_CHANGE_TYPE_LEAVE_GRANTED",
    }


def test_granted_leave_with_period_and_destination_is_valid() -> None:
    message = roster_change(
        pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED,
        leave_start_date="2025-06-10",
        leave_end_date="2025-06-12",
        destination="西安市",
    )
    assert fields(kinds.ROSTER_CHANGE, message) == []


@pytest.mark.parametrize(
    ("new_unit_code", "problem"),
    [
        ("", "is required for ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED"),
        ("6101", "must be a 6-digit division code, got '6101'"),
        ("610302", "must differ from unit_code"),
        ("610399", "610399 is inside the city but not a configured unit code"),
    ],
)
def test_a_change_of_place_of_execution_needs_a_receiving_unit(
    new_unit_code: str, problem: str
) -> None:
    message = roster_change(
        pb.ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED, new_unit_code=new_unit_code
    )
    assert descriptions(kinds.ROSTER_CHANGE, message) == {"payload.new_unit_code": problem}


@pytest.mark.parametrize("new_unit_code", ["610331", "610113"])
def test_the_place_of_execution_may_move_within_or_out_of_the_city(new_unit_code: str) -> None:
    message = roster_change(
        pb.ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED, new_unit_code=new_unit_code
    )
    assert fields(kinds.ROSTER_CHANGE, message) == []


def test_a_sanction_must_give_its_reason() -> None:
    message = roster_change(pb.ROSTER_CHANGE_TYPE_WARNING)
    assert descriptions(kinds.ROSTER_CHANGE, message) == {
        "payload.reason": "is required for ROSTER_CHANGE_TYPE_WARNING"
    }


def test_a_change_of_residence_needs_the_new_address() -> None:
    message = roster_change(pb.ROSTER_CHANGE_TYPE_RESIDENCE_CHANGED)
    assert fields(kinds.ROSTER_CHANGE, message) == ["payload.subject.address"]


def test_a_change_of_supervision_level_needs_the_level() -> None:
    message = roster_change(pb.ROSTER_CHANGE_TYPE_SUPERVISION_LEVEL_CHANGED)
    assert fields(kinds.ROSTER_CHANGE, message) == ["payload.supervision_level"]


# --- verification -----------------------------------------------------------------


def test_a_verification_request_needs_subjects_with_ids_and_known_checks() -> None:
    message = verification_request()
    message.subjects.append(pb.Subject(name="李四"))
    message.check_types.append(pb.CHECK_TYPE_TRAVEL)
    message.check_types.append(pb.CHECK_TYPE_UNSPECIFIED)
    assert descriptions(kinds.VERIFICATION_REQUEST, message) == {
        "payload.subjects[2].resident_id": "is required",
        "payload.check_types[3]": "is required (must not be CHECK_TYPE_UNSPECIFIED)",
        "payload.check_types[2]": "repeats check_types[1]",
    }


def test_a_verification_result_needs_subject_check_outcome_and_time() -> None:
    message = verification_result()
    message.subject.resident_id = ""
    message.ClearField("check_type")
    message.ClearField("outcome")
    message.ClearField("observed_at")
    assert fields(kinds.VERIFICATION_RESULT, message) == [
        "payload.subject.resident_id",
        "payload.check_type",
        "payload.outcome",
        "payload.observed_at",
    ]


def test_a_verification_result_may_not_be_observed_in_the_future() -> None:
    message = verification_result()
    message.observed_at.CopyFrom(at(2025, 6, 2))
    assert descriptions(kinds.VERIFICATION_RESULT, message) == {
        "payload.observed_at": "2025-06-02T09:00:00+00:00 is in the future"
    }


def test_a_place_region_code_must_be_six_digits() -> None:
    message = verification_result()
    message.place_region_code = "西安"
    assert fields(kinds.VERIFICATION_RESULT, message) == ["payload.place_region_code"]


# --- inspections ------------------------------------------------------------------


def test_a_rectification_deadline_may_not_precede_the_finding() -> None:
    message = inspection_finding()
    message.rectification_deadline = "2025-05-19"
    assert descriptions(kinds.INSPECTION_FINDING, message) == {
        "payload.rectification_deadline": "must not be before issued_date (2025-05-20)"
    }


def test_a_finding_may_not_be_issued_in_the_future() -> None:
    message = inspection_finding()
    message.issued_date = "2025-06-02"
    message.rectification_deadline = "2025-07-01"
    assert descriptions(kinds.INSPECTION_FINDING, message) == {
        "payload.issued_date": "2025-06-02 is in the future"
    }


def test_a_written_finding_needs_a_deadline_and_an_oral_one_does_not() -> None:
    message = inspection_finding()
    message.ClearField("rectification_deadline")
    assert fields(kinds.INSPECTION_FINDING, message) == ["payload.rectification_deadline"]
    message.category = pb.FINDING_CATEGORY_ORAL_CORRECTION
    assert fields(kinds.INSPECTION_FINDING, message) == []


def test_a_correction_of_violation_cites_its_legal_basis() -> None:
    message = inspection_finding()
    message.category = pb.FINDING_CATEGORY_CORRECTION_OF_VIOLATION
    assert fields(kinds.INSPECTION_FINDING, message) == ["payload.legal_basis"]


def test_a_rectification_report_has_no_blank_evidence() -> None:
    message = inspection_rectification()
    message.evidence_refs.append(" ")
    assert fields(kinds.INSPECTION_RECTIFICATION, message) == ["payload.evidence_refs[1]"]


def test_reopening_a_finding_needs_a_reason() -> None:
    message = inspection_closure()
    message.decision = pb.CLOSURE_DECISION_REOPENED
    assert descriptions(kinds.INSPECTION_CLOSURE, message) == {
        "payload.reason": "is required to reopen a finding"
    }


# --- services ---------------------------------------------------------------------


def test_a_referral_lists_distinct_needs() -> None:
    message = service_referral()
    message.needs.append(pb.SERVICE_TYPE_COUNSELLING)
    assert descriptions(kinds.SERVICE_REFERRAL, message) == {"payload.needs[1]": "repeats needs[0]"}
    message.ClearField("needs")
    assert descriptions(kinds.SERVICE_REFERRAL, message) == {
        "payload.needs": "must list at least one value"
    }


def test_a_service_record_needs_type_kind_date_and_outcome() -> None:
    message = service_record()
    for name in ("service_type", "event_kind", "service_date", "outcome"):
        message.ClearField(name)
    assert fields(kinds.SERVICE_RECORD, message) == [
        "payload.service_type",
        "payload.event_kind",
        "payload.outcome",
        "payload.service_date",
    ]


def test_a_group_event_has_at_least_one_attendee() -> None:
    message = service_record()
    message.event_kind = pb.EVENT_KIND_GROUP
    message.attendance = 0
    assert descriptions(kinds.SERVICE_RECORD, message) == {
        "payload.attendance": "must be at least 1 for a group event"
    }
    message.attendance = 30
    assert fields(kinds.SERVICE_RECORD, message) == []


def test_a_group_event_counts_at_least_the_subjects_it_lists() -> None:
    message = service_record()
    message.event_kind = pb.EVENT_KIND_GROUP
    message.subject_pseudonyms[:] = ["p-1", "p-2", "p-3"]
    message.attendance = 2
    assert descriptions(kinds.SERVICE_RECORD, message) == {
        "payload.attendance": "is less than the 3 subject_pseudonyms listed"
    }


def test_an_individual_event_serves_exactly_one_subject() -> None:
    message = service_record()
    message.subject_pseudonyms.append("p-2")
    assert fields(kinds.SERVICE_RECORD, message) == ["payload.subject_pseudonyms"]


def test_a_service_lasts_unless_nobody_came() -> None:
    message = service_record()
    message.duration_minutes = 0
    assert fields(kinds.SERVICE_RECORD, message) == ["payload.duration_minutes"]
    message.outcome = pb.SERVICE_OUTCOME_NO_SHOW
    assert fields(kinds.SERVICE_RECORD, message) == []
    message.duration_minutes = 1441
    assert fields(kinds.SERVICE_RECORD, message) == ["payload.duration_minutes"]


# --- alerts -----------------------------------------------------------------------


def test_an_overdue_finding_alert_concerns_no_subject() -> None:
    message = alert()
    message.alert_type = pb.ALERT_TYPE_FINDING_OVERDUE
    message.ClearField("subject")
    assert fields(kinds.ALERT, message) == []
    message.alert_type = pb.ALERT_TYPE_NEW_OFFENCE
    assert fields(kinds.ALERT, message) == ["payload.subject.resident_id"]


def test_alert_evidence_is_message_ids() -> None:
    message = alert()
    message.evidence_mids.append("not-a-uuid")
    assert descriptions(kinds.ALERT, message) == {
        "payload.evidence_mids[1]": "must be a message id (UUID), got 'not-a-uuid'"
    }


# --- adapter rules ----------------------------------------------------------------


@pytest.fixture
def isolated_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    copy = {kind: list(rules) for kind, rules in validation._VALIDATORS.items()}
    monkeypatch.setattr(validation, "_VALIDATORS", copy)
    monkeypatch.setattr(kinds, "_PAYLOAD_TYPES", dict(kinds._PAYLOAD_TYPES))


def no_weekend_closures(message: Message, context: ValidationContext) -> list[FieldViolation]:
    assert isinstance(message, pb.InspectionClosure)
    if date.fromisoformat(message.decided_date).weekday() >= 5:
        return [FieldViolation("payload.decided_date", "must be a working day")]
    return []


@pytest.mark.usefixtures("isolated_registries")
def test_an_adapter_rule_adds_to_the_built_in_rules() -> None:
    register_validator(kinds.INSPECTION_CLOSURE, no_weekend_closures)
    message = inspection_closure()  # decided on a Saturday
    message.ClearField("finding_id")
    assert fields(kinds.INSPECTION_CLOSURE, message) == [
        "payload.finding_id",
        "payload.decided_date",
    ]


@pytest.mark.usefixtures("isolated_registries")
def test_a_new_kind_gets_its_adapter_rules_and_the_subject_rules() -> None:
    kinds.register("court.notice", pb.VerificationResult)
    seen: list[ValidationContext] = []

    def rule(message: Message, context: ValidationContext) -> list[FieldViolation]:
        seen.append(context)
        return [FieldViolation("payload.result_id", "court notices need a case number")]

    register_validator("court.notice", rule)
    message = pb.VerificationResult(subject=pb.Subject(resident_id=ID[:17]))
    assert fields("court.notice", message) == ["payload.subject.resident_id", "payload.result_id"]
    assert seen == [ValidationContext(units=UNITS, today=TODAY)]

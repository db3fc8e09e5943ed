"""The police linkage's rules on a real LinkageContext (in-memory SQLite):
roster tracking, alerts from verification results, and the silence sweep."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from adapters.police.linkage import SILENCE_DAYS_ENV, PoliceLinkage, silence_days_from_env
from gateway.domain import kinds
from gateway.domain.errors import NotFound
from gateway.domain.linkage import Accepted, AlertDraft
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security.atrest import DataKeys
from gateway.store.linkage_state import StoredLinkageContext, flush
from gateway.store.models import Base
from gateway.store.sealed import INFO_KEY
from gateway.testing import enrolment, resident_id

START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
XIAN = "610113"  # 西安市雁塔区, outside Baoji
CHENCANG = "610304"  # 陈仓区, inside


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine, info={INFO_KEY: DataKeys.ephemeral()}) as session:
        yield session
    engine.dispose()


class Police:
    """Drives a PoliceLinkage the way the gateway does, one message at a time."""

    def __init__(self, session: Session, silence_days: int = 7) -> None:
        self.session = session
        self.linkage = PoliceLinkage(silence_days)
        self.person = resident_id()

    def context(self, now: datetime) -> StoredLinkageContext:
        return StoredLinkageContext(
            self.session,
            "police",
            subject_key=lambda rid: f"key-{rid.upper()}",
            units=Units.default(),
            now=now,
        )

    def accept(
        self, kind: str, message: pb.RosterChange | pb.VerificationResult, at: datetime
    ) -> tuple[str, list[AlertDraft]]:
        mid = str(uuid.uuid4())
        accepted = Accepted(kind, "sender", mid, message, at)
        context = self.context(at)
        drafts = self.linkage.on_accepted(accepted, context)
        flush(self.session, context.overlay, at)  # as the gateway does once the hook accepted
        return mid, drafts

    def enrol(self, at: datetime = START, unit: str = "610302") -> str:
        return self.accept(kinds.ROSTER_CHANGE, enrolment(self.person, unit), at)[0]

    def change(self, change_type: int, at: datetime, **fields: str) -> str:
        change = pb.RosterChange(
            change_id=str(uuid.uuid4()),
            change_type=change_type,  # type: ignore[arg-type]
            subject=pb.Subject(resident_id=self.person),
            unit_code="610302",
            effective_date=at.date().isoformat(),
            **fields,
        )
        return self.accept(kinds.ROSTER_CHANGE, change, at)[0]

    def result(
        self,
        observed_at: datetime,
        *,
        check: int = pb.CHECK_TYPE_HOTEL_STAY,
        outcome: int = pb.CHECK_OUTCOME_HIT,
        region: str = XIAN,
    ) -> tuple[str, list[AlertDraft]]:
        result = pb.VerificationResult(
            result_id=str(uuid.uuid4()),
            subject=pb.Subject(resident_id=self.person, name="王某"),
            unit_code="610302",
            check_type=check,  # type: ignore[arg-type]
            outcome=outcome,  # type: ignore[arg-type]
            place="某酒店",
            place_region_code=region,
            police_reference="GA-1",
        )
        result.observed_at.FromDatetime(observed_at)
        return self.accept(kinds.VERIFICATION_RESULT, result, observed_at + timedelta(hours=1))

    def sweep(self, now: datetime) -> list[AlertDraft]:
        context = self.context(now)
        drafts = self.linkage.sweep(context)
        flush(self.session, context.overlay, now)
        return drafts


@pytest.fixture
def police(session: Session) -> Police:
    return Police(session)


def _types(drafts: list[AlertDraft]) -> list[int]:
    return [draft.alert_type for draft in drafts]


# --- 越界 out of bounds ---------------------------------------------------------------


def test_a_hit_outside_the_city_without_leave_is_out_of_bounds(police: Police) -> None:
    police.enrol()
    mid, (alert,) = police.result(START + timedelta(days=2))
    assert alert.alert_type == pb.ALERT_TYPE_OUT_OF_BOUNDS
    assert alert.severity == pb.SEVERITY_HIGH
    assert list(alert.evidence_mids) == [mid]
    assert alert.unit_code == "610302"
    assert alert.subject is not None and alert.subject.resident_id == police.person
    assert "610113" in alert.description and "no approved leave covering 2026-03-03" in (
        alert.description
    )


def test_hits_inside_the_city_without_a_place_code_or_without_a_hit_raise_nothing(
    police: Police,
) -> None:
    police.enrol()
    day = START + timedelta(days=2)
    assert police.result(day, region=CHENCANG)[1] == []
    assert police.result(day, region="")[1] == []
    assert police.result(day, outcome=pb.CHECK_OUTCOME_NO_HIT)[1] == []
    assert police.result(day, outcome=pb.CHECK_OUTCOME_ANOMALY)[1] == []


@pytest.mark.parametrize(
    "approval",
    [pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED, pb.ROSTER_CHANGE_TYPE_FREQUENT_TRAVEL_APPROVED],
)
def test_approved_leave_covers_every_day_of_its_period(police: Police, approval: int) -> None:
    police.enrol()
    police.change(
        approval,
        START,
        leave_start_date="2026-03-05",
        leave_end_date="2026-03-07",
        destination="西安",
    )
    for day in (5, 7):
        assert police.result(datetime(2026, 3, day, 4, tzinfo=UTC))[1] == []
    assert _types(police.result(datetime(2026, 3, 8, 4, tzinfo=UTC))[1]) == [
        pb.ALERT_TYPE_OUT_OF_BOUNDS
    ]


def test_leave_days_are_beijing_days(police: Police) -> None:
    police.enrol()
    police.change(
        pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED,
        START,
        leave_start_date="2026-03-05",
        leave_end_date="2026-03-05",
        destination="西安",
    )
    assert police.result(datetime(2026, 3, 4, 17, tzinfo=UTC))[1] == []  # 03-05 01:00 CST
    late = police.result(datetime(2026, 3, 5, 17, tzinfo=UTC))[1]  # 03-06 01:00 CST
    assert _types(late) == [pb.ALERT_TYPE_OUT_OF_BOUNDS]


def test_a_leave_ended_early_no_longer_covers_the_days_after(police: Police) -> None:
    police.enrol()
    police.change(
        pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED,
        START,
        leave_start_date="2026-03-05",
        leave_end_date="2026-03-10",
        destination="西安",
    )
    police.change(
        pb.ROSTER_CHANGE_TYPE_LEAVE_ENDED,
        datetime(2026, 3, 6, tzinfo=UTC),
        leave_start_date="2026-03-05",
        leave_end_date="2026-03-06",
    )
    assert police.result(datetime(2026, 3, 6, 4, tzinfo=UTC))[1] == []
    assert _types(police.result(datetime(2026, 3, 8, 4, tzinfo=UTC))[1]) == [
        pb.ALERT_TYPE_OUT_OF_BOUNDS
    ]


# --- new offences and 人机分离 ------------------------------------------------------------


@pytest.mark.parametrize(
    "check", [pb.CHECK_TYPE_NEW_OFFENCE, pb.CHECK_TYPE_DETENTION, pb.CHECK_TYPE_ARREST]
)
def test_new_offence_detention_and_arrest_hits_are_urgent(police: Police, check: int) -> None:
    police.enrol()
    mid, alerts = police.result(START + timedelta(days=1), check=check, region=CHENCANG)
    (alert,) = alerts
    assert (alert.alert_type, alert.severity) == (pb.ALERT_TYPE_NEW_OFFENCE, pb.SEVERITY_URGENT)
    assert list(alert.evidence_mids) == [mid]


def test_an_arrest_outside_the_city_is_both_a_new_offence_and_out_of_bounds(
    police: Police,
) -> None:
    police.enrol()
    _, alerts = police.result(START + timedelta(days=1), check=pb.CHECK_TYPE_ARREST)
    assert sorted(_types(alerts)) == [pb.ALERT_TYPE_OUT_OF_BOUNDS, pb.ALERT_TYPE_NEW_OFFENCE]


def test_a_device_separation_hit_raises_its_alert(police: Police) -> None:
    police.enrol()
    mid, alerts = police.result(
        START + timedelta(days=1), check=pb.CHECK_TYPE_DEVICE_SEPARATION, region=CHENCANG
    )
    (alert,) = alerts
    assert alert.alert_type == pb.ALERT_TYPE_DEVICE_SEPARATION
    assert list(alert.evidence_mids) == [mid] and "人机分离" in alert.description


# --- who is on the roster -------------------------------------------------------------------


def test_a_result_about_someone_never_enrolled_is_not_found(police: Police) -> None:
    with pytest.raises(NotFound) as raised:
        police.result(START)
    assert raised.value.reason == "SUBJECT_NOT_ON_ROSTER"
    assert [v.field for v in raised.value.violations] == ["payload.subject.resident_id"]
    assert police.person not in raised.value.message


def test_after_release_results_are_not_found_but_earlier_observations_are_taken(
    police: Police,
) -> None:
    police.enrol()
    police.change(pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED, datetime(2026, 3, 10, tzinfo=UTC))
    assert police.result(datetime(2026, 3, 9, 4, tzinfo=UTC), region=CHENCANG)[1] == []
    with pytest.raises(NotFound):
        police.result(datetime(2026, 3, 11, 4, tzinfo=UTC))


def test_a_new_enrolment_after_release_puts_the_person_back_on_the_roster(
    police: Police,
) -> None:
    police.enrol()
    police.change(pb.ROSTER_CHANGE_TYPE_TERMINATED_REVOKED, datetime(2026, 3, 10, tzinfo=UTC))
    police.enrol(datetime(2026, 5, 1, tzinfo=UTC), unit="610303")
    (alert,) = police.result(datetime(2026, 5, 2, 4, tzinfo=UTC))[1]
    assert alert.unit_code == "610303"


def test_a_transfer_within_the_city_moves_the_person_and_one_outside_ends_supervision(
    police: Police,
) -> None:
    police.enrol()
    police.change(pb.ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED, START, new_unit_code="610331")
    (alert,) = police.result(START + timedelta(days=1))[1]
    assert alert.unit_code == "610331"
    police.change(
        pb.ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED,
        START + timedelta(days=2),
        new_unit_code=XIAN,
    )
    with pytest.raises(NotFound):
        police.result(START + timedelta(days=3))


# --- possible 脱管: no successful check for N days -----------------------------------------


def test_silence_raises_one_possible_absconding_alert_with_the_enrolment_as_evidence(
    police: Police,
) -> None:
    enrolled = police.enrol()
    assert police.sweep(START + timedelta(days=6, hours=23)) == []
    (alert,) = police.sweep(START + timedelta(days=7))
    assert (alert.alert_type, alert.severity) == (
        pb.ALERT_TYPE_POSSIBLE_ABSCONDING,
        pb.SEVERITY_HIGH,
    )
    assert list(alert.evidence_mids) == [enrolled]
    assert "no successful police check for 7 days" in alert.description
    assert police.sweep(START + timedelta(days=30)) == []


def test_a_successful_check_ends_the_silence_and_a_new_one_alerts_again(police: Police) -> None:
    police.enrol()
    assert len(police.sweep(START + timedelta(days=8))) == 1
    checked, _ = police.result(START + timedelta(days=9), outcome=pb.CHECK_OUTCOME_NO_HIT)
    assert police.sweep(START + timedelta(days=15)) == []
    (alert,) = police.sweep(START + timedelta(days=16, hours=1))
    assert list(alert.evidence_mids) == [checked]


def test_an_anomalous_check_is_not_a_successful_one(police: Police) -> None:
    police.enrol()
    police.result(START + timedelta(days=5), outcome=pb.CHECK_OUTCOME_ANOMALY)
    assert len(police.sweep(START + timedelta(days=7, hours=1))) == 1


def test_absconded_and_released_people_raise_no_silence_alerts(session: Session) -> None:
    absconded, released = Police(session), Police(session)
    for police in (absconded, released):
        police.enrol()
    absconded.change(pb.ROSTER_CHANGE_TYPE_ABSCONDED, START + timedelta(days=1))
    released.change(pb.ROSTER_CHANGE_TYPE_RELEASED_PARDONED, START + timedelta(days=1))
    assert absconded.sweep(START + timedelta(days=10)) == []
    absconded.change(pb.ROSTER_CHANGE_TYPE_ABSCONDING_RESOLVED, START + timedelta(days=12))
    assert absconded.sweep(START + timedelta(days=18)) == []
    assert len(absconded.sweep(START + timedelta(days=19))) == 1


def test_the_silence_is_configurable(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    police = Police(session, silence_days=2)
    police.enrol()
    assert len(police.sweep(START + timedelta(days=2))) == 1
    monkeypatch.setenv(SILENCE_DAYS_ENV, "14")
    assert silence_days_from_env() == 14
    assert PoliceLinkage().silence == timedelta(days=14)
    monkeypatch.setenv(SILENCE_DAYS_ENV, "0")
    with pytest.raises(ValueError, match="SILIAN_POLICE_SILENCE_DAYS must be"):
        PoliceLinkage()


def test_the_state_read_ahead_is_the_person_named(police: Police) -> None:
    mid = str(uuid.uuid4())
    accepted = Accepted(kinds.ROSTER_CHANGE, "judicial", mid, enrolment(police.person), START)
    assert police.linkage.state_keys(accepted, lambda rid: f"key-{rid}") == [
        f"subject:key-{police.person.upper()}"
    ]


def test_silence_is_measured_in_absolute_time_whatever_the_time_zones(police: Police) -> None:
    enrolled = police.enrol()  # 02:00 UTC, 10:00 in Beijing
    police.result(START - timedelta(hours=1), outcome=pb.CHECK_OUTCOME_NO_HIT)  # 09:00 Beijing
    assert police.sweep(START + timedelta(days=7, minutes=-30)) == []
    (alert,) = police.sweep(START + timedelta(days=7))
    assert list(alert.evidence_mids) == [enrolled]

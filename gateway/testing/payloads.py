"""Valid payloads of the kinds agencies send, for tests and benchmarks.

Each call makes a new record: new record ids (unique across runs), a new
person unless one is named, dates that validation accepts today. The
module-level functions share one generator; a benchmark that needs the same
people in several processes makes its own ``Payloads(seed)``.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

from gateway.domain.validation import check_character
from gateway.proto.silian.v1 import payloads_pb2 as pb

#: The county-level units of Baoji in the default configuration (the
#: high-tech zone's configured code aside).
BAOJI_UNITS = (
    "610302",
    "610303",
    "610304",
    "610305",
    "610323",
    "610324",
    "610326",
    "610327",
    "610328",
    "610329",
    "610330",
    "610331",
)
#: The name on every payload (tests look for it where a view must not show it).
NAME = "王某"
#: A place outside Baoji (雁塔区, Xi'an): a hit there without leave raises an alert.
OUTSIDE_BAOJI = "610113"


def _record_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Payloads:
    """Valid payloads drawn from a generator seeded with ``seed``."""

    def __init__(self, seed: int = 20261127) -> None:
        self.rng = random.Random(seed)

    def resident_id(self, unit: str = "610302", birth: date | None = None) -> str:
        """A valid resident ID of a man (odd sequence number) of ``unit``, born on
        ``birth`` or on a random day of 1960–1999 (collisions are then unlikely)."""
        birth = birth or date(1960, 1, 1) + timedelta(days=self.rng.randrange(40 * 365))
        first17 = f"{unit}{birth:%Y%m%d}{self.rng.randrange(500) * 2 + 1:03d}"
        return first17 + check_character(first17)

    def enrolment(self, subject_id: str | None = None, unit: str = "610302") -> pb.RosterChange:
        """An enrolment 入矫 of ``subject_id`` (default a new person of ``unit``)
        in ``unit`` on probation, for a year from today."""
        today = date.today()
        return pb.RosterChange(
            change_id=_record_id("RC"),
            change_type=pb.ROSTER_CHANGE_TYPE_ENROLMENT,
            subject=pb.Subject(
                resident_id=subject_id or self.resident_id(unit),
                name=NAME,
                gender=pb.GENDER_MALE,
                address="宝鸡市金台区",
            ),
            unit_code=unit,
            category=pb.CORRECTION_CATEGORY_PROBATION,
            supervision_level=pb.SUPERVISION_LEVEL_ORDINARY,
            effective_date=today.isoformat(),
            term_start_date=today.isoformat(),
            term_end_date=(today + timedelta(days=365)).isoformat(),
            offence="盗窃罪",
            officer="officer-1",
        )

    def verification_result(
        self,
        subject_id: str | None = None,
        *,
        unit: str = "610302",
        check_type: pb.CheckType.ValueType = pb.CHECK_TYPE_HOTEL_STAY,
        outcome: pb.CheckOutcome.ValueType = pb.CHECK_OUTCOME_NO_HIT,
        place: str = "宝鸡市某酒店",
        place_region_code: str = "",
    ) -> pb.VerificationResult:
        """The police's result of a check of ``subject_id`` (default a new person)
        of ``unit``, observed an hour ago at ``place`` (in ``unit`` unless
        ``place_region_code`` says otherwise)."""
        result = pb.VerificationResult(
            result_id=_record_id("VR"),
            subject=pb.Subject(resident_id=subject_id or self.resident_id(unit), name=NAME),
            unit_code=unit,
            check_type=check_type,
            outcome=outcome,
            place=place,
            place_region_code=place_region_code or unit,
            police_reference="GA-1",
        )
        result.observed_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
        return result

    def verification_hit(self, subject_id: str | None = None) -> pb.VerificationResult:
        """A hotel stay of ``subject_id`` (of unit 610302) outside Baoji: without
        approved leave, the police linkage raises an alert for it."""
        return self.verification_result(
            subject_id,
            outcome=pb.CHECK_OUTCOME_HIT,
            place="西安市某酒店",
            place_region_code=OUTSIDE_BAOJI,
        )

    def referral(self, subject_id: str | None = None) -> pb.ServiceReferral:
        """The bureau's referral of ``subject_id`` (default a new person) of unit
        610302 for counselling (to the NGO: not drug-related)."""
        return pb.ServiceReferral(
            referral_id=_record_id("REF"),
            subject=pb.Subject(
                resident_id=subject_id or self.resident_id(),
                name=NAME,
                address="宝鸡市金台区某街",
            ),
            unit_code="610302",
            needs=[pb.SERVICE_TYPE_COUNSELLING],
            offence="盗窃罪",
            notes="家庭困难",
        )

    def inspection_finding(self, unit: str = "610302") -> pb.InspectionFinding:
        """A procuratorial suggestion to ``unit``, issued today, to rectify within 30 days."""
        today = date.today()
        return pb.InspectionFinding(
            inspection_id=f"INS-{self.rng.randrange(10**4)}",
            finding_id=_record_id("F"),
            unit_code=unit,
            category=pb.FINDING_CATEGORY_PROCURATORIAL_SUGGESTION,
            severity=pb.SEVERITY_MEDIUM,
            finding="未按规定开展走访 home visits not made as required",
            recommendation="限期整改 rectify within the deadline",
            issued_date=today.isoformat(),
            rectification_deadline=(today + timedelta(days=30)).isoformat(),
        )

    def service_record(
        self, *pseudonyms: str, group: bool = False, unit: str = "610303", record_id: str = ""
    ) -> pb.ServiceRecord:
        """A partner's counselling yesterday in ``unit`` of the people it knows by
        ``pseudonyms``: one person, or a group event they attended with others."""
        return pb.ServiceRecord(
            record_id=record_id or _record_id("SR"),
            unit_code=unit,
            service_type=pb.SERVICE_TYPE_COUNSELLING,
            event_kind=pb.EVENT_KIND_GROUP if group else pb.EVENT_KIND_INDIVIDUAL,
            service_date=(date.today() - timedelta(days=1)).isoformat(),
            duration_minutes=90,
            subject_pseudonyms=list(pseudonyms),
            attendance=len(pseudonyms) + 5 if group else 1,
            outcome=pb.SERVICE_OUTCOME_COMPLETED,
            provider="李老师",
        )


#: The generator of the module-level functions below.
_shared = Payloads()
resident_id = _shared.resident_id
enrolment = _shared.enrolment
verification_result = _shared.verification_result
verification_hit = _shared.verification_hit
referral = _shared.referral
inspection_finding = _shared.inspection_finding
service_record = _shared.service_record

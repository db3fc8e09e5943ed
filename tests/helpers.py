"""Helpers shared by the tests: valid payloads and inbox reading."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from gateway.client import AgencyClient
from gateway.domain.validation import check_character
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb

_rng = random.Random(20261127)


def resident_id(unit: str = "610302", birth: date | None = None) -> str:
    """A valid resident ID of a man (odd sequence number), born on ``birth``
    or on a random day of 1960–1999 (collisions are then very unlikely)."""
    birth = birth or date(1960, 1, 1) + timedelta(days=_rng.randrange(40 * 365))
    first17 = f"{unit}{birth:%Y%m%d}{_rng.randrange(500) * 2 + 1:03d}"
    return first17 + check_character(first17)


def enrolment(subject_id: str | None = None, unit: str = "610302") -> pb.RosterChange:
    today = date.today()
    return pb.RosterChange(
        change_id=f"RC-{_rng.randrange(10**9)}",
        change_type=pb.ROSTER_CHANGE_TYPE_ENROLMENT,
        subject=pb.Subject(
            resident_id=subject_id or resident_id(unit),
            name="王某",
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


def enrolled(judicial: AgencyClient, unit: str = "610302") -> str:
    """The resident ID of a person the bureau just enrolled (police results and
    partner records must name someone on the roster)."""
    person = resident_id(unit)
    judicial.submit("roster.change", enrolment(person, unit))
    return person


def verification_hit(subject_id: str | None = None) -> pb.VerificationResult:
    result = pb.VerificationResult(
        result_id=f"VR-{_rng.randrange(10**9)}",
        subject=pb.Subject(resident_id=subject_id or resident_id(), name="王某"),
        unit_code="610302",
        check_type=pb.CHECK_TYPE_HOTEL_STAY,
        outcome=pb.CHECK_OUTCOME_HIT,
        place="西安市某酒店",
        place_region_code="610113",
        police_reference="GA-1",
    )
    result.observed_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    return result


def referral(subject_id: str | None = None) -> pb.ServiceReferral:
    return pb.ServiceReferral(
        referral_id=f"REF-{_rng.randrange(10**9)}",
        subject=pb.Subject(
            resident_id=subject_id or resident_id(), name="王某", address="宝鸡市金台区某街"
        ),
        unit_code="610302",
        needs=[pb.SERVICE_TYPE_COUNSELLING],
        offence="盗窃罪",
        notes="家庭困难",
    )


def receive_mids(
    client: AgencyClient, mids: Iterable[str], timeout: float = 15.0, ack: bool = True
) -> dict[str, envelope_pb2.Delivery]:
    """Read the inbox (through the agency side's reader, which checks the gateway's
    signature of each delivery when the client has the gateway's keys) until every
    mid in ``mids`` arrived (or ``timeout``); returns every delivery read, by mid,
    and acknowledges them unless ``ack`` is False."""
    wanted = set(mids)
    found: dict[str, envelope_pb2.Delivery] = {}
    with client.inbox(timeout=timeout) as inbox:
        for delivery in inbox:
            if ack:
                inbox.acknowledge(delivery)
            found[delivery.mid] = delivery
            if wanted <= set(found):
                break
        inbox.flush()
    return found


class JobsOnly:
    """A CommitHandler for a group committer that only runs jobs (delivery
    records, sweeps): messages it is given are stored without linkages."""

    def stage(self, session: object, pending: object, state: object) -> list[object]:
        return []

    def receipt(self, pending: object, audit_index: int) -> bytes:
        return b""

    def rejection(self, pending: object, error: Exception) -> object:
        raise AssertionError(f"nothing is refused here: {error}")

    def committed(self, messages: object) -> None:
        pass

"""A referral ends — closed by the bureau, with the person's release or
termination, or after ``referral_idle_days`` without a service record — and
after it the partner receives nothing more about the person (until referred
again). The receipt names every recipient a message was routed to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from gateway import bootstrap
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security import pseudonyms
from gateway.store.models import SubjectPseudonym
from gateway.testing import enrolment, referral, resident_id, service_record
from tests.e2e.conftest import Running
from tests.helpers import known_as, receive_mids

IDLE_DAYS = 30


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    return replace(settings, referral_idle_days=IDLE_DAYS)


@pytest.fixture
def judicial(running: Running) -> Iterator[AgencyClient]:
    client = running.client("judicial")
    yield client
    client.close()


def _referred(judicial: AgencyClient) -> str:
    """A person enrolled and referred to the NGO."""
    person = resident_id()
    judicial.submit(kinds.ROSTER_CHANGE, enrolment(person))
    assert "ngo" in judicial.submit(kinds.SERVICE_REFERRAL, referral(person)).recipients
    return person


def _change(judicial: AgencyClient, person: str, change_type: int) -> list[str]:
    """Who a roster change of ``person`` reached."""
    change = enrolment(person)
    change.change_type = change_type  # type: ignore[assignment]
    change.reason = "依规处理 as the rules require"
    return list(judicial.submit(kinds.ROSTER_CHANGE, change).recipients)


def _warned(judicial: AgencyClient, person: str) -> list[str]:
    return _change(judicial, person, pb.ROSTER_CHANGE_TYPE_WARNING)


def _closure(person: str) -> pb.ServiceReferral:
    closure = referral(person)
    closure.action = pb.REFERRAL_ACTION_CLOSE
    return closure


def _ngo_pseudonym(settings: Settings, person: str) -> str:
    return pseudonyms.pseudonym(bootstrap.pseudonym_keys(settings)("ngo"), person)


def _backdate(settings: Settings, people: list[str], days: int) -> None:
    """Make the NGO's referrals of ``people`` ``days`` old, as if that time had
    passed without a service record."""
    store = bootstrap.open_store(settings)
    try:
        with store.transaction() as session:
            session.execute(
                update(SubjectPseudonym)
                .where(
                    SubjectPseudonym.recipient == "ngo",
                    SubjectPseudonym.pseudonym.in_([_ngo_pseudonym(settings, p) for p in people]),
                )
                .values(referred_at=datetime.now(UTC) - timedelta(days=days))
            )
    finally:
        store.engine.dispose()


def test_the_bureaus_closure_reaches_the_partner_and_ends_the_referral(
    running: Running, judicial: AgencyClient
) -> None:
    person = _referred(judicial)
    assert "ngo" in _warned(judicial, person)
    closed = judicial.submit(kinds.SERVICE_REFERRAL, _closure(person))
    assert "ngo" in closed.recipients and "detox" not in closed.recipients
    known = known_as(running.settings, "ngo", "judicial", closed.mid)
    delivery = receive_mids(running.client("ngo"), [known])[known]
    seen = kinds.decode(delivery.kind, delivery.payload)
    assert isinstance(seen, pb.ServiceReferral) and seen.action == pb.REFERRAL_ACTION_CLOSE
    assert "ngo" not in _warned(judicial, person)
    assert "police" in _warned(judicial, person)


def test_a_person_referred_again_after_the_end_reaches_the_partner_again(
    judicial: AgencyClient,
) -> None:
    person = _referred(judicial)
    judicial.submit(kinds.SERVICE_REFERRAL, _closure(person))
    assert "ngo" not in _warned(judicial, person)
    assert "ngo" in judicial.submit(kinds.SERVICE_REFERRAL, referral(person)).recipients
    assert "ngo" in _warned(judicial, person)


@pytest.mark.parametrize(
    "ending",
    [pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED, pb.ROSTER_CHANGE_TYPE_TERMINATED_DEATH],
)
def test_release_or_termination_is_the_last_the_partner_hears(
    judicial: AgencyClient, ending: int
) -> None:
    person = _referred(judicial)
    assert "ngo" in _change(judicial, person, ending)
    assert "ngo" not in _warned(judicial, person)


def test_a_referral_idle_past_the_configured_days_ends_and_a_service_record_keeps_it(
    running: Running, judicial: AgencyClient
) -> None:
    settings = running.settings
    idle, served = _referred(judicial), _referred(judicial)
    _backdate(settings, [idle, served], IDLE_DAYS + 1)
    ngo = running.client("ngo")
    record = service_record(_ngo_pseudonym(settings, served), unit="610302")
    ngo.submit(kinds.SERVICE_RECORD, record)  # the gateway looks at referrals again
    ngo.close()
    assert "ngo" not in _warned(judicial, idle)
    assert "ngo" in _warned(judicial, served)

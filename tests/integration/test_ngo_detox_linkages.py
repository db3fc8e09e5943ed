"""The NGO and detox linkages through the real exchange service and database:
what each partner receives, and the rules for the service records it sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message

from gateway import bootstrap
from gateway.bootstrap import Gateway
from gateway.client import build_envelope
from gateway.config import Settings
from gateway.domain import kinds
from gateway.domain.errors import Conflict, NotFound
from gateway.domain.views import age_band
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.service.provision import ensure_principals
from gateway.testing import enrolment, referral, resident_id, service_record

PARTNERS = {"ngo": False, "detox": True}  # principal: drug_related of its referrals

Submit = Callable[[str, str, Message], envelope_pb2.Receipt]


@pytest.fixture(scope="module")
def gateway(settings: Settings) -> Iterator[Gateway]:
    built = bootstrap.build(settings)
    yield built
    built.service.committer.close()
    built.store.engine.dispose()


@pytest.fixture(scope="module")
def submit(gateway: Gateway, settings: Settings) -> Submit:
    keys: dict[str, Ed25519PrivateKey] = ensure_principals(settings, gateway.store, gateway.policy)

    def send(agency: str, kind: str, message: Message) -> envelope_pb2.Receipt:
        envelope = build_envelope(agency, keys[agency], kind, message)
        return gateway.service.submit(envelope, agency)

    return send


def deliveries(gateway: Gateway, receipt: envelope_pb2.Receipt) -> dict[str, Message]:
    """What each recipient's inbox row holds, decoded, by recipient."""
    found = {}
    for row in gateway.store.outbox_of(receipt.sender, receipt.mid):
        if row.destination == "inbox":
            delivery = envelope_pb2.Delivery.FromString(gateway.store.body_of(row))
            found[row.recipient] = kinds.decode(delivery.kind, delivery.payload)
    return found


def referred(submit: Submit, gateway: Gateway, partner: str, person: str) -> str:
    """Refer ``person`` to ``partner``; its pseudonym there."""
    message = referral(person)
    message.drug_related = PARTNERS[partner]
    view = deliveries(gateway, submit("judicial", kinds.SERVICE_REFERRAL, message))[partner]
    assert isinstance(view, pb.ServiceReferral)
    return view.subject.pseudonym


# --- referrals --------------------------------------------------------------------------


@pytest.mark.parametrize("partner", PARTNERS)
def test_a_referral_gives_the_partner_only_pseudonym_unit_age_band_and_needs(
    partner: str, submit: Submit, gateway: Gateway
) -> None:
    message = referral(resident_id(birth=date(1990, 1, 1)))
    message.drug_related = PARTNERS[partner]
    message.needs.append(pb.SERVICE_TYPE_VOCATIONAL_TRAINING)
    receipt = submit("judicial", kinds.SERVICE_REFERRAL, message)
    assert list(receipt.recipients) == [partner]
    view = deliveries(gateway, receipt)[partner]
    assert isinstance(view, pb.ServiceReferral)
    assert view == pb.ServiceReferral(
        subject=pb.Subject(pseudonym=view.subject.pseudonym, age_band=view.subject.age_band),
        unit_code="610302",
        needs=[pb.SERVICE_TYPE_COUNSELLING, pb.SERVICE_TYPE_VOCATIONAL_TRAINING],
    )
    assert view.subject.pseudonym.startswith("P-") and view.subject.age_band == "30-39"


def test_each_partner_knows_a_person_by_a_pseudonym_of_its_own(
    submit: Submit, gateway: Gateway
) -> None:
    person = resident_id()
    assert referred(submit, gateway, "ngo", person) != referred(submit, gateway, "detox", person)


@pytest.mark.parametrize("partner", PARTNERS)
def test_a_roster_change_reaches_a_partner_only_for_people_referred_to_it(
    partner: str, submit: Submit, gateway: Gateway
) -> None:
    person, stranger = resident_id(birth=date(1985, 3, 1)), resident_id()
    pseudonym = referred(submit, gateway, partner, person)
    release = enrolment(person, unit="610303")
    release.change_type = pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED
    release.drug_related = True
    view = deliveries(gateway, submit("judicial", kinds.ROSTER_CHANGE, release))[partner]
    assert view == pb.RosterChange(
        subject=pb.Subject(pseudonym=pseudonym, age_band=age_band(person, date.today())),
        change_type=pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED,
        unit_code="610303",
        effective_date=release.effective_date,
    )
    other = submit("judicial", kinds.ROSTER_CHANGE, enrolment(stranger))
    assert partner not in other.recipients


# --- service records -----------------------------------------------------------------


@pytest.mark.parametrize("partner", PARTNERS)
def test_the_bureau_receives_a_group_record_with_people_resolved(
    partner: str, submit: Submit, gateway: Gateway
) -> None:
    people = [resident_id(), resident_id()]
    pseudonyms = [referred(submit, gateway, partner, person) for person in people]
    sent = service_record(*pseudonyms, group=True)
    receipt = submit(partner, kinds.SERVICE_RECORD, sent)
    assert list(receipt.recipients) == ["judicial"]
    view = deliveries(gateway, receipt)["judicial"]
    assert isinstance(view, pb.ServiceRecord)
    assert list(view.subject_pseudonyms) == people
    assert view.attendance == 7 and view.event_kind == pb.EVENT_KIND_GROUP
    view.ClearField("subject_pseudonyms")
    sent.ClearField("subject_pseudonyms")
    assert view == sent


@pytest.mark.parametrize("partner", PARTNERS)
def test_a_record_naming_a_pseudonym_never_issued_to_the_sender_is_not_found(
    partner: str, submit: Submit, gateway: Gateway
) -> None:
    other = next(p for p in PARTNERS if p != partner)
    mine = referred(submit, gateway, partner, resident_id())
    theirs = referred(submit, gateway, other, resident_id())
    with pytest.raises(NotFound) as raised:
        submit(
            partner,
            kinds.SERVICE_RECORD,
            service_record(mine, theirs, "P-AAAAAAAAAAAAAAAAAAAA", group=True),
        )
    assert raised.value.reason == "UNKNOWN_PSEUDONYM"
    assert [v.field for v in raised.value.violations] == [
        "payload.subject_pseudonyms[1]",
        "payload.subject_pseudonyms[2]",
    ]


@pytest.mark.parametrize("partner", PARTNERS)
def test_a_record_id_is_submitted_once(partner: str, submit: Submit, gateway: Gateway) -> None:
    pseudonym = referred(submit, gateway, partner, resident_id())
    first = service_record(pseudonym)
    submit(partner, kinds.SERVICE_RECORD, first)
    with pytest.raises(Conflict) as raised:
        submit(partner, kinds.SERVICE_RECORD, service_record(pseudonym, record_id=first.record_id))
    assert raised.value.reason == "RECORD_EXISTS"
    assert [v.field for v in raised.value.violations] == ["payload.record_id"]

"""Privacy: nothing the NGO or the detox centre receives names a person or an offence.

Whatever a sender writes into any string field (and whichever enum values and
flags it picks) of any payload kind, the deliveries the real exchange service
routes to the partners hold no resident ID, name, address or offence. Messages
go through ``ExchangeService.prepare`` — signature, validation, policy routing
and views, exactly as over gRPC — with the installed adapter policies; alerts,
which only the gateway raises, through its router. The person named is
referred to both partners, so every partner route's condition can hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway import bootstrap
from gateway.bootstrap import Gateway
from gateway.client import build_envelope
from gateway.config import Settings
from gateway.domain import kinds, validation
from gateway.domain.errors import GatewayError
from gateway.domain.routing import sha256_hex
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.service import lookups
from gateway.service.alerts import GATEWAY_PRINCIPAL
from gateway.service.provision import ensure_principals
from gateway.testing import resident_id

PARTNERS = ("ngo", "detox")
PERSON = resident_id(birth=date(1988, 8, 8))
OTHER_PERSON = resident_id()
ID_PATTERN = re.compile(r"[0-9]{17}[0-9Xx]")
CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)


@dataclass(frozen=True)
class Secrets:
    """What a partner must never see: ID numbers, the name, address and offence."""

    name: str
    address: str
    offence: str

    def all(self) -> list[str]:
        return [PERSON, OTHER_PERSON, self.name, self.address, self.offence]


SECRETS = st.builds(
    Secrets,
    name=st.text(CJK, min_size=2, max_size=4),
    address=st.text(CJK, min_size=4, max_size=10).map(lambda s: "宝鸡市" + s),
    offence=st.text(CJK, min_size=2, max_size=6).map(lambda s: s + "罪"),
)
FIXED = Secrets(name="王某某", address="宝鸡市渭滨区经二路1号", offence="非法持有毒品罪")


# --- the gateway -------------------------------------------------------------------------


@dataclass
class Exchange:
    gateway: Gateway
    keys: dict[str, Ed25519PrivateKey]

    def sender(self, kind: str) -> str:
        return next(
            p.id
            for p in self.gateway.policy.principals()
            if kind in p.may_send and p.role in ("agency", "gateway")
        )

    def route(self, kind: str, message: Message) -> dict[str, bytes] | None:
        """Each recipient's delivery (serialized) of ``message``; None if refused."""
        sender = self.sender(kind)
        if sender == GATEWAY_PRINCIPAL:
            return self._route_alert(message)
        envelope = build_envelope(sender, self.keys[sender], kind, message)
        try:
            pending = self.gateway.service.prepare(envelope, sender)
        except GatewayError:
            return None
        return {r.recipient: r.body for r in pending.message.outbox if r.destination == "inbox"}

    def _route_alert(self, alert: Message) -> dict[str, bytes] | None:
        now = datetime.now(UTC)
        service = self.gateway.service
        if validation.validate(kinds.ALERT, alert, units=service.units, today=now.date()):
            return None
        payload = kinds.encode(alert)
        envelope = envelope_pb2.Envelope(
            mid="00000000-0000-4000-8000-000000000000",
            kind=kinds.ALERT,
            sender=GATEWAY_PRINCIPAL,
            payload=payload,
        )
        routing = service.router.route(
            envelope,
            alert,
            sha256_hex(payload),
            now,
            now.date(),
            lookups.of_store(service.store, service.referrals),
        )
        return {r.recipient: r.body for r in routing.outbox if r.destination == "inbox"}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    data: Path = tmp_path_factory.mktemp("privacy")
    settings = Settings(data_dir=data, log_format="console")
    gateway = bootstrap.build(settings)
    keys = ensure_principals(settings, gateway.store, gateway.policy)
    exchange = Exchange(gateway, keys)
    for drug_related in (False, True):
        referral = base(kinds.SERVICE_REFERRAL, FIXED)
        assert isinstance(referral, pb.ServiceReferral)
        referral.drug_related = drug_related
        envelope = build_envelope("judicial", keys["judicial"], kinds.SERVICE_REFERRAL, referral)
        gateway.service.submit(envelope, "judicial")
    yield exchange
    gateway.service.committer.close()
    gateway.store.engine.dispose()


# --- a complete, valid message of every kind about PERSON ------------------------------


def base(kind: str, secrets: Secrets) -> Message:
    """A valid message of ``kind`` naming PERSON, with every string field filled."""
    today = date.today()
    yesterday = (today - timedelta(days=1)).isoformat()
    person = pb.Subject(
        resident_id=PERSON, name=secrets.name, gender=pb.GENDER_MALE, address=secrets.address
    )
    observed = datetime.now(UTC) - timedelta(hours=2)
    messages: dict[str, Message] = {
        kinds.ROSTER_CHANGE: pb.RosterChange(
            change_id="RC-1",
            change_type=pb.ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED,
            subject=person,
            unit_code="610302",
            category=pb.CORRECTION_CATEGORY_PROBATION,
            supervision_level=pb.SUPERVISION_LEVEL_ORDINARY,
            effective_date=yesterday,
            term_start_date=yesterday,
            term_end_date=(today + timedelta(days=300)).isoformat(),
            offence=secrets.offence,
            leave_start_date=yesterday,
            leave_end_date=today.isoformat(),
            destination="西安市",
            new_unit_code="610303",
            reason="迁居",
            officer="李警官",
        ),
        kinds.VERIFICATION_REQUEST: pb.VerificationRequest(
            request_id="VQ-1",
            unit_code="610302",
            subjects=[person, pb.Subject(resident_id=OTHER_PERSON, name=secrets.name)],
            check_types=[pb.CHECK_TYPE_BIG_DATA],
            reason="核查",
        ),
        kinds.VERIFICATION_RESULT: pb.VerificationResult(
            result_id="VR-1",
            request_id="VQ-1",
            subject=person,
            unit_code="610302",
            check_type=pb.CHECK_TYPE_HOTEL_STAY,
            outcome=pb.CHECK_OUTCOME_HIT,
            observed_at=observed,
            place="西安市某酒店",
            place_region_code="610113",
            police_reference="GA-1",
            details="入住",
        ),
        kinds.INSPECTION_FINDING: pb.InspectionFinding(
            inspection_id="IN-1",
            finding_id="F-1",
            unit_code="610302",
            category=pb.FINDING_CATEGORY_CORRECTION_OF_VIOLATION,
            severity=pb.SEVERITY_MEDIUM,
            finding="未按时报到",
            legal_basis="社区矫正法第二十三条",
            recommendation="整改",
            issued_date=yesterday,
            rectification_deadline=(today + timedelta(days=30)).isoformat(),
            subjects=[person],
        ),
        kinds.INSPECTION_RECTIFICATION: pb.InspectionRectification(
            finding_id="F-1",
            unit_code="610302",
            actions="已整改",
            evidence_refs=["EV-1"],
            reported_date=yesterday,
        ),
        kinds.INSPECTION_CLOSURE: pb.InspectionClosure(
            finding_id="F-1",
            unit_code="610302",
            decision=pb.CLOSURE_DECISION_REOPENED,
            reason="未整改到位",
            decided_date=yesterday,
        ),
        kinds.SERVICE_REFERRAL: pb.ServiceReferral(
            referral_id="REF-1",
            subject=person,
            unit_code="610302",
            needs=[pb.SERVICE_TYPE_COUNSELLING],
            offence=secrets.offence,
            notes="家庭困难",
        ),
        kinds.SERVICE_RECORD: pb.ServiceRecord(
            record_id="SR-1",
            unit_code="610302",
            service_type=pb.SERVICE_TYPE_COUNSELLING,
            event_kind=pb.EVENT_KIND_INDIVIDUAL,
            service_date=yesterday,
            duration_minutes=60,
            subject_pseudonyms=["P-AAAAAAAAAAAAAAAAAAAA"],
            attendance=1,
            outcome=pb.SERVICE_OUTCOME_COMPLETED,
            provider="张老师",
            notes="良好",
        ),
        kinds.ALERT: pb.Alert(
            alert_id="AL-1",
            alert_type=pb.ALERT_TYPE_NEW_OFFENCE,
            severity=pb.SEVERITY_URGENT,
            unit_code="610302",
            subject=person,
            description=secrets.offence,
            evidence_mids=["9b2f3c1e-0000-4000-8000-000000000001"],
            raised_at=observed,
        ),
        kinds.ALERT_DISPOSITION: pb.AlertDisposition(
            disposition_id="AD-1",
            alert_id="AL-1",
            alert_type=pb.ALERT_TYPE_NEW_OFFENCE,
            unit_code="610302",
            step=pb.DISPOSITION_STEP_REOPENED,
            method=pb.VERIFICATION_METHOD_ON_SITE,
            finding=pb.DISPOSITION_FINDING_OFFENCE_CONFIRMED,
            action=pb.DISPOSITION_ACTION_REVOCATION_REQUESTED,
            officer=secrets.name,
            occurred_at=observed,
            notes=secrets.offence,
            reason=secrets.address,
        ),
    }
    return messages[kind]


def string_paths(message: Message, prefix: str = "") -> Iterator[str]:
    """Paths (no list indexes) of every string field, at any depth."""
    for field in message.DESCRIPTOR.fields:
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            yield path
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            yield from string_paths(
                message_factory.GetMessageClass(field.message_type)(), path + "."
            )


PROBE = "王某 610302198808081234 盗窃罪"
UNITS = bootstrap.Units.default()


def constrained(kind: str, message: Message) -> frozenset[str]:
    """String fields validation restricts in ``message`` (a probe text there makes
    it refuse); which ones depends on the enum values (e.g. the change type)."""
    found = set()
    for path in set(string_paths(message)):
        probed = type(message)()
        probed.CopyFrom(message)
        _set_everywhere(probed, path.split("."), PROBE)
        violations = validation.validate(kind, probed, units=UNITS, today=date.today())
        if any(re.sub(r"\[\d+\]", "", v.field) == f"payload.{path}" for v in violations):
            found.add(path)
    return frozenset(found)


def _set_everywhere(message: Message, parts: list[str], value: str) -> None:
    field = message.DESCRIPTOR.fields_by_name[parts[0]]
    if len(parts) == 1:
        if field.is_repeated:
            values = getattr(message, parts[0])
            values[:] = [value] * max(len(values), 1)
        else:
            setattr(message, parts[0], value)
        return
    children = getattr(message, parts[0]) if field.is_repeated else [getattr(message, parts[0])]
    for child in children:
        _set_everywhere(child, parts[1:], value)


# --- what a sender may put in ------------------------------------------------------------


@st.composite
def adversarial(draw: st.DrawFn, kind: str) -> tuple[Message, Secrets]:
    """A message of ``kind`` with any declared enum values and flags, whose strings
    may hold any secret anywhere."""
    secrets = draw(SECRETS)
    message = base(kind, secrets)
    _choose(draw, message)
    texts = st.lists(
        st.one_of(st.sampled_from(secrets.all()), st.text(max_size=4)), min_size=1, max_size=4
    ).map("".join)
    _write(draw, message, texts, constrained(kind, message), "")
    return message, secrets


def _children(message: Message, field: FieldDescriptor) -> list[Message]:
    if field.is_repeated:
        return list(getattr(message, field.name))
    return [getattr(message, field.name)] if message.HasField(field.name) else []


def _choose(draw: st.DrawFn, message: Message) -> None:
    """Often other declared values for the enums that are set; any flags."""
    for field in message.DESCRIPTOR.fields:
        if field.type == FieldDescriptor.TYPE_ENUM and draw(st.booleans()):
            numbers = [value.number for value in field.enum_type.values if value.number]
            values = st.sampled_from(numbers)
            if field.is_repeated:
                chosen = draw(st.lists(values, min_size=1, max_size=3, unique=True))
                getattr(message, field.name)[:] = chosen
            elif getattr(message, field.name):
                setattr(message, field.name, draw(values))
        elif field.type == FieldDescriptor.TYPE_BOOL:
            setattr(message, field.name, draw(st.booleans()))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for child in _children(message, field):
                _choose(draw, child)


def _write(
    draw: st.DrawFn,
    message: Message,
    texts: st.SearchStrategy[str],
    restricted: frozenset[str],
    prefix: str,
) -> None:
    """Secrets into the strings: often into free fields, rarely into restricted ones
    (a refused message reaches no one, so most should pass)."""
    for field in message.DESCRIPTOR.fields:
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            rewrite = st.integers(0, 30 if path in restricted else 1).map(lambda n: n == 0)
            if field.is_repeated:
                values = getattr(message, field.name)
                values[:] = [draw(texts) if draw(rewrite) else value for value in values]
            elif draw(rewrite):
                setattr(message, field.name, draw(texts))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for child in _children(message, field):
                _write(draw, child, texts, restricted, path + ".")


def assert_no_secrets(deliveries: dict[str, bytes], secrets: Secrets) -> None:
    for partner in PARTNERS:
        body = deliveries.get(partner)
        if body is None:
            continue
        delivery = envelope_pb2.Delivery.FromString(body)
        for secret in secrets.all():
            assert secret.encode() not in body, (partner, secret)
        view = kinds.decode(delivery.kind, delivery.payload)
        for text in _strings(view):
            assert not ID_PATTERN.search(text), (partner, text)


def _strings(message: Message) -> Iterator[str]:
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for item in values:
            if field.type == FieldDescriptor.TYPE_STRING:
                yield item
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                yield from _strings(item)


# --- the tests ----------------------------------------------------------------------


def partner_routes() -> list[tuple[str, str]]:
    policy = bootstrap.Policy.default()
    return [
        (route.kind, route.id)
        for kind in kinds.known_kinds()
        for route in policy.routes_for(kind)
        if route.recipient in PARTNERS
    ]


def test_the_base_message_of_every_kind_is_accepted(exchange: Exchange) -> None:
    for kind in kinds.known_kinds():
        assert exchange.route(kind, base(kind, FIXED)) is not None, kind


@pytest.mark.parametrize(("kind", "route_id"), partner_routes())
def test_each_partner_route_delivers_no_secret_from_secrets_in_every_free_field(
    exchange: Exchange, kind: str, route_id: str
) -> None:
    route = exchange.gateway.policy.route(route_id)
    assert route is not None
    message = base(kind, FIXED)
    stuffed = "".join(FIXED.all())
    for path in set(string_paths(message)) - constrained(kind, message):
        _set_everywhere(message, path.split("."), stuffed)
    if isinstance(message, pb.RosterChange | pb.ServiceReferral):
        message.drug_related = route.when == "drug_related"
    deliveries = exchange.route(kind, message)
    assert deliveries is not None and route.recipient in deliveries
    assert_no_secrets(deliveries, FIXED)


@pytest.mark.parametrize("kind", kinds.known_kinds())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_whatever_the_sender_writes_no_partner_receives_an_id_name_or_offence(
    exchange: Exchange, kind: str, data: st.DataObject
) -> None:
    message, secrets = data.draw(adversarial(kind))
    deliveries = exchange.route(kind, message)
    reached = sorted(set(deliveries or ()) & set(PARTNERS))
    event("refused" if deliveries is None else f"delivered to partners {reached}")
    if deliveries is not None:
        assert_no_secrets(deliveries, secrets)

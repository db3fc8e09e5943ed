from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain import kinds
from gateway.domain.validation import check_character
from gateway.domain.views import (
    CONDITIONS,
    PSEUDONYMOUS_KEPT_FIELDS,
    VIEWS,
    age_band,
    apply_view,
    condition_applies_to,
    register_condition,
    register_view,
)
from gateway.proto.silian.v1 import payloads_pb2 as pb

TODAY = date(2025, 6, 1)


def resident_id(born: str = "19900615", sequence: str = "123", region: str = "610302") -> str:
    body = f"{region}{born}{sequence}"
    return body + check_character(body)


ID = resident_id()
OTHER_ID = resident_id(born="20010101")


@dataclass
class Recipient:
    """A ViewContext as the service layer provides one, with a letters-only pseudonym."""

    recipient: str = "ngo"
    today: date = TODAY
    referred: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def pseudonym(self, resident_id: str) -> str:
        self.asked.append(resident_id)
        digest = hashlib.sha256(f"{self.recipient}:{resident_id}".encode()).hexdigest()
        return "ps-" + digest[:16].translate(str.maketrans("0123456789", "ghijklmnop"))

    def is_referred(self, resident_id: str) -> bool:
        return resident_id in self.referred


def roster_change(**values: object) -> pb.RosterChange:
    defaults: dict[str, object] = {
        "change_id": "RC-1",
        "change_type": pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED,
        "subject": pb.Subject(
            resident_id=ID, name="张三", gender=pb.GENDER_MALE, address="宝鸡市渭滨区经二路1号"
        ),
        "unit_code": "610302",
        "category": pb.CORRECTION_CATEGORY_PAROLE,
        "effective_date": "2025-05-01",
        "offence": "盗窃罪",
        "drug_related": True,
        "leave_start_date": "2025-06-10",
        "leave_end_date": "2025-06-12",
        "destination": "西安市雁塔区",
        "reason": "探亲",
        "officer": "王警官",
    }
    return pb.RosterChange(**(defaults | values))


# --- full and pseudonymous views ----------------------------------------------------


def test_the_full_view_is_an_equal_copy() -> None:
    original = roster_change()
    view = apply_view("full", original, Recipient())
    assert view == original
    assert view is not original


def test_the_pseudonymous_view_keeps_only_pseudonym_and_age_band_of_the_subject() -> None:
    ctx = Recipient()
    view = apply_view("pseudonymous", roster_change(), ctx)
    assert isinstance(view, pb.RosterChange)
    assert view.subject == pb.Subject(pseudonym=ctx.pseudonym(ID), age_band="30-39")


def test_the_pseudonymous_view_clears_offence_and_free_text_and_keeps_the_facts() -> None:
    view = apply_view("pseudonymous", roster_change(), Recipient())
    expected = roster_change(subject=view.subject)
    for name in ("offence", "destination", "reason", "officer"):
        expected.ClearField(name)
    assert view == expected


def test_a_view_never_changes_the_senders_message() -> None:
    original = roster_change()
    for name in VIEWS:
        apply_view(name, original, Recipient())
    assert original == roster_change()


def test_pseudonyms_are_asked_for_the_upper_case_id() -> None:
    with_x = next(
        candidate
        for candidate in (resident_id(sequence=f"{n:03d}") for n in range(1000))
        if candidate.endswith("X")
    )
    ctx = Recipient()
    apply_view("pseudonymous", roster_change(subject=pb.Subject(resident_id=with_x.lower())), ctx)
    assert ctx.asked == [with_x]


def test_a_subject_without_an_id_gets_no_pseudonym() -> None:
    ctx = Recipient()
    view = apply_view("pseudonymous", roster_change(subject=pb.Subject(name="张三")), ctx)
    assert isinstance(view, pb.RosterChange)
    assert view.subject == pb.Subject()
    assert ctx.asked == []


def test_every_subject_in_a_list_is_pseudonymized() -> None:
    request = pb.VerificationRequest(
        request_id="VQ-1",
        subjects=[pb.Subject(resident_id=ID, name="张三"), pb.Subject(resident_id=OTHER_ID)],
        reason="视频点名",
    )
    ctx = Recipient()
    view = apply_view("pseudonymous", request, ctx)
    assert view == pb.VerificationRequest(
        request_id="VQ-1",
        subjects=[
            pb.Subject(pseudonym=ctx.pseudonym(ID), age_band="30-39"),
            pb.Subject(pseudonym=ctx.pseudonym(OTHER_ID), age_band="20-29"),
        ],
    )


@pytest.mark.parametrize(
    ("born", "today", "band"),
    [
        ("19900615", date(2020, 6, 14), "20-29"),
        ("19900615", date(2020, 6, 15), "30-39"),
        ("20200229", date(2025, 6, 1), "0-9"),
        ("19450101", date(2025, 6, 1), "80-89"),
        ("20250602", date(2025, 6, 1), ""),
    ],
)
def test_the_age_band_is_the_decade_of_age_at_today(born: str, today: date, band: str) -> None:
    assert age_band(resident_id(born=born), today) == band


def test_an_id_without_a_birth_date_has_no_age_band() -> None:
    assert age_band("", TODAY) == ""
    assert age_band("610302199913401234", TODAY) == ""


def test_an_unknown_view_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown view 'minimal'"):
        apply_view("minimal", roster_change(), Recipient())


def test_a_view_name_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="view 'full' is already registered"):
        register_view("full", lambda message, ctx: message)


# --- nothing identifying survives the pseudonymous view, for any payload ------------

# String fields that carry no personal data: the only string fields the pseudonymous
# view may keep (a string field listed in PSEUDONYMOUS_KEPT_FIELDS must be here).
SAFE_STRING_FIELDS = {
    "change_id",
    "unit_code",
    "new_unit_code",
    "effective_date",
    "term_start_date",
    "term_end_date",
    "leave_start_date",
    "leave_end_date",
    "request_id",
    "result_id",
    "inspection_id",
    "finding_id",
    "issued_date",
    "rectification_deadline",
    "reported_date",
    "decided_date",
    "referral_id",
    "record_id",
    "service_date",
    "subject_pseudonyms",
    "provider",
    "alert_id",
    "disposition_id",
    "evidence_mids",
}

PAYLOAD_TYPES = [kinds.payload_type(kind) for kind in kinds.known_kinds()]
SUBJECT = pb.Subject.DESCRIPTOR.full_name
ID_PATTERN = re.compile(rb"[0-9]{17}[0-9Xx]")

# Disjoint alphabets: whatever the sender wrote into a field not known to be safe is
# CJK; the safe fields hold ASCII letters, so a CJK string in the view is a leak.
SENSITIVE_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=2, max_size=8
)
KEPT_TEXT = st.text(alphabet=string.ascii_letters + " -", max_size=12)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(["610302", "610331", "610113", "110105"]))
    born = draw(st.dates(date(1930, 1, 1), date(2012, 12, 31)))
    body = f"{region}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    check = check_character(body)
    return body + (check.lower() if draw(st.booleans()) else check)


def subjects() -> st.SearchStrategy[pb.Subject]:
    return st.builds(
        pb.Subject,
        resident_id=st.one_of(st.just(""), resident_ids()),
        name=SENSITIVE_TEXT,
        gender=st.sampled_from(pb.Gender.values()),
        birth_date=SENSITIVE_TEXT,
        address=SENSITIVE_TEXT,
        pseudonym=SENSITIVE_TEXT,
        age_band=SENSITIVE_TEXT,
    )


def values(descriptor: FieldDescriptor) -> st.SearchStrategy[object]:
    if descriptor.type == FieldDescriptor.TYPE_STRING:
        return KEPT_TEXT if descriptor.name in SAFE_STRING_FIELDS else SENSITIVE_TEXT
    if descriptor.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if descriptor.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([value.number for value in descriptor.enum_type.values])
    if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(descriptor.message_type)
    return st.integers(0, 100_000)


def messages(descriptor: Descriptor) -> st.SearchStrategy[object]:
    if descriptor.full_name == SUBJECT:
        return subjects()
    if descriptor.full_name == Timestamp.DESCRIPTOR.full_name:
        return st.builds(Timestamp, seconds=st.integers(0, 4_000_000_000))
    cls = message_factory.GetMessageClass(descriptor)
    fields = {
        f.name: st.lists(values(f), max_size=3) if f.is_repeated else values(f)
        for f in descriptor.fields
    }
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


def strings(message: Message) -> Iterator[str]:
    """Every string value in ``message``, at any depth."""
    for descriptor, value in message.ListFields():
        items = value if descriptor.is_repeated else [value]
        for item in items:
            if descriptor.type == FieldDescriptor.TYPE_STRING:
                yield item
            elif descriptor.type == FieldDescriptor.TYPE_MESSAGE:
                yield from strings(item)


def string_fields(descriptor: Descriptor) -> Iterator[str]:
    """Names of the string fields of a payload type and the messages it holds, bar Subject."""
    for f in descriptor.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            yield f.name
        elif f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.full_name != SUBJECT:
            yield from string_fields(f.message_type)


def test_every_string_field_the_pseudonymous_view_keeps_is_known_safe() -> None:
    kept_text = {
        name
        for payload in PAYLOAD_TYPES
        for name in string_fields(payload.DESCRIPTOR)
        if name in PSEUDONYMOUS_KEPT_FIELDS
    }
    assert kept_text - SAFE_STRING_FIELDS == set()


@pytest.mark.parametrize("payload", PAYLOAD_TYPES, ids=lambda payload: payload.__name__)
def test_no_identity_name_or_offence_survives_the_pseudonymous_view(
    payload: type[Message],
) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(messages(payload.DESCRIPTOR))
    def check(message: Message) -> None:
        secrets = [s for s in strings(message) if s and "\u4e00" <= s[0] <= "\u9fff"]
        ids = [s for s in strings(message) if len(s) == 18 and s[:17].isdigit()]
        view = apply_view("pseudonymous", message, Recipient())
        data = view.SerializeToString(deterministic=True)
        assert ID_PATTERN.search(data) is None
        for secret in secrets + ids:
            assert secret.encode() not in data, secret

    check()


# --- conditions -------------------------------------------------------------------


def test_referred_holds_when_every_subject_was_referred_to_the_recipient() -> None:
    request = pb.VerificationRequest(
        subjects=[pb.Subject(resident_id=ID), pb.Subject(resident_id=OTHER_ID)]
    )
    referred = CONDITIONS["referred"]
    assert referred(request, Recipient(referred={ID, OTHER_ID}))
    assert not referred(request, Recipient(referred={ID}))


def test_referred_does_not_hold_for_a_message_about_nobody() -> None:
    referred = CONDITIONS["referred"]
    assert not referred(pb.VerificationRequest(), Recipient(referred={ID}))
    assert not referred(roster_change(subject=pb.Subject(name="张三")), Recipient(referred={""}))


@pytest.mark.parametrize(
    "message",
    [roster_change(drug_related=True), pb.ServiceReferral(drug_related=True)],
    ids=["roster.change", "service.referral"],
)
def test_the_drug_related_flag_addresses_detox_and_not_the_ngo(message: Message) -> None:
    assert CONDITIONS["drug_related"](message, Recipient("detox"))
    assert not CONDITIONS["not_drug_related"](message, Recipient("ngo"))


def test_a_referral_without_the_flag_goes_to_the_ngo_only() -> None:
    referral = pb.ServiceReferral(drug_related=False)
    assert CONDITIONS["not_drug_related"](referral, Recipient("ngo"))
    assert not CONDITIONS["drug_related"](referral, Recipient("detox"))


@pytest.mark.parametrize(
    ("alert_type", "relevant"),
    [
        (pb.ALERT_TYPE_NEW_OFFENCE, True),
        (pb.ALERT_TYPE_FINDING_OVERDUE, True),
        (pb.ALERT_TYPE_OUT_OF_BOUNDS, False),
        (pb.ALERT_TYPE_DEVICE_SEPARATION, False),
        (pb.ALERT_TYPE_POSSIBLE_ABSCONDING, False),
    ],
)
def test_supervision_relevant_alerts_are_new_offences_and_overdue_findings(
    alert_type: int, relevant: bool
) -> None:
    alert = pb.Alert(alert_type=alert_type)
    assert CONDITIONS["supervision_relevant"](alert, Recipient("procuratorate")) is relevant


def test_conditions_say_which_kinds_they_apply_to() -> None:
    assert condition_applies_to("referred", kinds.VERIFICATION_REQUEST)
    assert condition_applies_to("drug_related", kinds.SERVICE_REFERRAL)
    assert not condition_applies_to("drug_related", kinds.ALERT)
    assert condition_applies_to("supervision_relevant", kinds.ALERT)
    assert not condition_applies_to("supervision_relevant", kinds.ROSTER_CHANGE)
    assert not condition_applies_to("weekday", kinds.ALERT)


def test_a_condition_name_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="condition 'referred' is already registered"):
        register_condition("referred", lambda message, ctx: True)

"""Fields the .proto does not declare are refused at the door and can never
reach a recipient through a view."""

from __future__ import annotations

from datetime import date

import pytest
from google.protobuf import struct_pb2, unknown_fields
from google.protobuf.message import Message

from adapters.partner_services import views as partner_views
from gateway.domain import kinds
from gateway.domain.errors import InvalidMessage
from gateway.domain.policy import FieldsView
from gateway.domain.views import apply_view, declared_copy, register_view
from gateway.proto.silian.v1 import payloads_pb2 as pb
from tests.unit.test_views import ID, Recipient, roster_change

SECRET = "张三 610302199006151234".encode()


def field(number: int, text: bytes) -> bytes:
    """A length-delimited field ``number`` (wire type 2) holding ``text``."""
    key = number << 3 | 2
    varint = bytearray()
    while key > 0x7F:
        varint.append(key & 0x7F | 0x80)
        key >>= 7
    varint.append(key)
    return bytes(varint) + bytes([len(text)]) + text


def referral_with_smuggled_name() -> bytes:
    """A referral whose top level and subject both carry a field 99 with a name."""
    subject = pb.Subject(resident_id=ID, name="李四").SerializeToString() + field(99, SECRET)
    body = pb.ServiceReferral(
        referral_id="REF-1", unit_code="610302", needs=[pb.SERVICE_TYPE_COUNSELLING]
    ).SerializeToString()
    return body + field(2, subject) + field(99, SECRET)


def unknown_anywhere(message: Message) -> list[int]:
    found = [f.field_number for f in unknown_fields.UnknownFieldSet(message)]
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None:
            for item in value if descriptor.is_repeated else [value]:
                found += unknown_anywhere(item)
    return found


def test_a_payload_with_an_unknown_field_is_refused_naming_the_numbers() -> None:
    with pytest.raises(InvalidMessage) as caught:
        kinds.decode(kinds.SERVICE_REFERRAL, referral_with_smuggled_name())
    err = caught.value
    assert err.reason == "UNKNOWN_FIELDS"
    assert "99 in payload" in err.message and "99 in payload.subject" in err.message
    assert [v.field for v in err.violations] == ["payload.#99", "payload.subject.#99"]
    assert "张三" not in err.message


def test_the_refusal_names_at_most_twenty_unknown_fields() -> None:
    body = b"".join(field(n, b"x") for n in range(100, 160))
    with pytest.raises(InvalidMessage) as caught:
        kinds.decode(kinds.SERVICE_REFERRAL, body)
    assert len(caught.value.violations) == kinds.MAX_LISTED_UNKNOWN
    assert "and 40 more" in caught.value.message


def test_a_payload_of_declared_fields_only_is_accepted() -> None:
    payload = kinds.encode(roster_change())
    assert kinds.decode(kinds.ROSTER_CHANGE, payload) == roster_change()


def test_stored_history_can_be_read_back_leniently() -> None:
    decoded = kinds.decode(
        kinds.SERVICE_REFERRAL, referral_with_smuggled_name(), allow_unknown=True
    )
    assert isinstance(decoded, pb.ServiceReferral) and decoded.referral_id == "REF-1"


def test_a_declared_copy_leaves_unknown_fields_behind_at_any_depth() -> None:
    source = pb.ServiceReferral.FromString(referral_with_smuggled_name())
    assert sorted(unknown_anywhere(source)) == [99, 99]
    copy = declared_copy(source)
    assert unknown_anywhere(copy) == []
    assert copy.subject.name == "李四" and copy.referral_id == "REF-1"


DECLARED = FieldsView(
    "declared-for-test",
    ((pb.ServiceReferral.DESCRIPTOR.full_name, frozenset({"subject", "needs"})),),
)


@pytest.mark.parametrize("name", ["full", "pseudonymous", DECLARED.name, partner_views.RESOLVED])
def test_every_view_holds_only_declared_fields_even_of_a_source_with_unknown_ones(
    name: str,
) -> None:
    partner_views.register()
    register_view(DECLARED.name, DECLARED)
    source = pb.ServiceReferral.FromString(referral_with_smuggled_name())
    view = apply_view(name, source, Recipient())
    assert unknown_anywhere(view) == []
    assert SECRET not in view.SerializeToString()
    assert sorted(unknown_anywhere(source)) == [99, 99], "the sender's message is unchanged"


def test_a_declared_view_builds_a_new_message_even_when_called_directly() -> None:
    source = pb.ServiceReferral.FromString(referral_with_smuggled_name())
    view = DECLARED(source, Recipient())
    assert view is not source and unknown_anywhere(view) == []
    assert {d.name for d, _ in view.ListFields()} == {"subject", "needs"}


def test_the_pseudonymous_view_is_a_new_message_of_the_kept_fields() -> None:
    source = roster_change()
    view = apply_view("pseudonymous", source, Recipient(today=date(2025, 6, 1)))
    assert view is not source
    assert {d.name for d, _ in view.ListFields()} == {
        "change_id",
        "change_type",
        "subject",
        "unit_code",
        "category",
        "effective_date",
        "drug_related",
        "leave_start_date",
        "leave_end_date",
    }


def test_a_declared_copy_copies_maps_and_leaves_their_unknown_fields_behind() -> None:
    value = struct_pb2.Value.FromString(
        struct_pb2.Value(string_value="kept").SerializeToString() + field(99, SECRET)
    )
    source = struct_pb2.Struct()
    source.fields["a"].CopyFrom(value)
    copy = declared_copy(source)
    assert copy.fields["a"].string_value == "kept"
    assert SECRET not in copy.SerializeToString()

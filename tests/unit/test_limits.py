"""Every field has a documented size limit; a message over one is refused for
that alone, and a refusal naming thousands of fields stays small enough for
gRPC's metadata."""

from __future__ import annotations

from datetime import date

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from grpc_status import rpc_status

from gateway.domain import kinds, limits, validation
from gateway.domain.errors import FieldViolation, InvalidMessage, NotFound, summary
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.rpc.errors import MAX_DETAILS_BYTES, to_grpc_status, to_rejection, to_rpc_status
from gateway.testing import service_record

TODAY = date(2025, 6, 1)


def fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    found = list(descriptor.fields)
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.full_name.startswith("silian"):
            found += fields(field.message_type)
    return found


ALL_FIELDS = [
    f for kind in kinds.known_kinds() for f in fields(kinds.payload_type(kind).DESCRIPTOR)
]


def test_every_string_field_has_a_documented_length_and_every_list_a_cap() -> None:
    strings = {f.name for f in ALL_FIELDS if f.type == FieldDescriptor.TYPE_STRING}
    lists = {f.name for f in ALL_FIELDS if f.is_repeated}
    assert strings - set(limits.FIELD_LENGTHS) == set()
    assert lists - set(limits.FIELD_ENTRIES) == set()


def _validate(kind: str, message: object) -> list[FieldViolation]:
    return validation.validate(kind, message, units=Units.default(), today=TODAY)  # type: ignore[arg-type]


def test_a_300_character_record_id_is_refused_naming_the_field() -> None:
    record = service_record("P-1")
    record.record_id = "R" * 300
    assert _validate(kinds.SERVICE_RECORD, record) == [
        FieldViolation("payload.record_id", "is 300 characters long; at most 64 are allowed")
    ]


def test_nested_and_listed_strings_are_measured_too() -> None:
    change = pb.RosterChange(subject=pb.Subject(name="张" * 201), unit_code="610302")
    change.subject.address = "x" * 4001
    found = [v.field for v in limits.violations(change)]
    assert found == ["payload.subject.name", "payload.subject.address"]


def test_a_record_naming_20000_people_is_refused_with_one_violation() -> None:
    record = service_record(*(f"P-{n:06d}" for n in range(20_000)), group=True)
    assert _validate(kinds.SERVICE_RECORD, record) == [
        FieldViolation("payload.subject_pseudonyms", "lists 20000 entries; at most 500 are allowed")
    ]


def test_a_refusal_naming_thousands_of_fields_fits_in_grpc_metadata() -> None:
    err = NotFound(
        "UNKNOWN_PSEUDONYM",
        "record names people never referred: " + "P-x, " * 5000,
        [
            FieldViolation(f"payload.subject_pseudonyms[{i}]", "不是转介给本机构的人员 " * 20)
            for i in range(20_000)
        ],
    )
    status = to_rpc_status(err)
    assert status.ByteSize() <= MAX_DETAILS_BYTES + 600
    assert len(to_grpc_status(err).trailing_metadata[0][1]) < 8 * 1024
    assert len(to_rejection(err).field_violations) <= 20
    assert rpc_status.to_status(status).code is not None


def test_a_summary_names_the_first_twenty_violations_and_counts_the_rest() -> None:
    violations = [FieldViolation(f"f{i}", "bad") for i in range(25)]
    text = summary(violations)
    assert text.startswith("f0: bad; f1: bad") and text.endswith("f19: bad; and 5 more")
    assert "f20" not in InvalidMessage("X", text, violations).message

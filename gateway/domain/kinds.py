"""Message kinds and the payload type of each (DESIGN §2).

Adapters may register further kinds (a fifth linkage) with ``register``.

The ``.proto`` is the contract: ``decode`` refuses a payload carrying fields
its type does not declare, at any depth (a partner on a newer schema, or bytes
smuggled past the views), naming the field numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError, Message

from gateway.domain.errors import FieldViolation, InvalidMessage
from gateway.proto.silian.v1 import payloads_pb2 as pb

ROSTER_CHANGE = "roster.change"
VERIFICATION_REQUEST = "verification.request"
VERIFICATION_RESULT = "verification.result"
INSPECTION_FINDING = "inspection.finding"
INSPECTION_RECTIFICATION = "inspection.rectification"
INSPECTION_CLOSURE = "inspection.closure"
SERVICE_REFERRAL = "service.referral"
SERVICE_RECORD = "service.record"
ALERT = "alert"
ALERT_DISPOSITION = "alert.disposition"

_PAYLOAD_TYPES: dict[str, type[Message]] = {
    ROSTER_CHANGE: pb.RosterChange,
    VERIFICATION_REQUEST: pb.VerificationRequest,
    VERIFICATION_RESULT: pb.VerificationResult,
    INSPECTION_FINDING: pb.InspectionFinding,
    INSPECTION_RECTIFICATION: pb.InspectionRectification,
    INSPECTION_CLOSURE: pb.InspectionClosure,
    SERVICE_REFERRAL: pb.ServiceReferral,
    SERVICE_RECORD: pb.ServiceRecord,
    ALERT: pb.Alert,
    ALERT_DISPOSITION: pb.AlertDisposition,
}


def register(kind: str, payload_type: type[Message]) -> None:
    """Make a new message kind known (used by adapters of further linkages)."""
    existing = _PAYLOAD_TYPES.get(kind)
    if existing is not None and existing is not payload_type:
        raise ValueError(f"kind {kind!r} is already registered to {existing.__name__}")
    _PAYLOAD_TYPES[kind] = payload_type


def known_kinds() -> list[str]:
    return sorted(_PAYLOAD_TYPES)


def payload_type(kind: str) -> type[Message]:
    """The payload message class of ``kind``; InvalidMessage(UNKNOWN_KIND) if none."""
    try:
        return _PAYLOAD_TYPES[kind]
    except KeyError:
        raise InvalidMessage(
            "UNKNOWN_KIND",
            f"unknown message kind {kind!r}",
            [FieldViolation("envelope.kind", f"must be one of {', '.join(known_kinds())}")],
        ) from None


def encode(message: Message) -> bytes:
    """Serialize deterministically, as senders must before signing."""
    return message.SerializeToString(deterministic=True)


def decode(kind: str, payload: bytes, *, allow_unknown: bool = False) -> Message:
    """Parse ``payload`` as the message type of ``kind``; InvalidMessage if it cannot,
    or (unless ``allow_unknown``) if it carries fields the type does not declare
    (``UNKNOWN_FIELDS``). ``allow_unknown`` is for what the gateway itself
    wrote: payloads stored before this rule, and deliveries read by an agency
    whose ``.proto`` is older than the gateway's."""
    message = payload_type(kind)()
    try:
        message.ParseFromString(payload)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidMessage(
            "UNPARSEABLE_PAYLOAD",
            f"payload is not a valid {type(message).__name__}: {exc}",
            [FieldViolation("envelope.payload", "cannot be parsed")],
        ) from None
    unknown = [] if allow_unknown else list(unknown_field_numbers(message))
    if unknown:
        listed = unknown[:MAX_LISTED_UNKNOWN]
        more = f" and {len(unknown) - len(listed)} more" if len(unknown) > len(listed) else ""
        raise InvalidMessage(
            "UNKNOWN_FIELDS",
            f"payload has fields {type(message).__name__} does not declare: "
            + ", ".join(f"{number} in {path}" for path, number in listed)
            + more
            + " (the contract is silian.v1's .proto; send only the fields it declares)",
            [
                FieldViolation(f"{path}.#{number}", "is not a field of this message type")
                for path, number in listed
            ],
        )
    return message


#: At most this many unknown fields are named in a refusal.
MAX_LISTED_UNKNOWN = 20


def unknown_field_numbers(message: Message, path: str = "payload") -> Iterator[tuple[str, int]]:
    """(path, field number) of every field in ``message`` its type does not declare,
    at any depth; a number repeated in one message is named once."""
    found = unknown_fields.UnknownFieldSet(message)
    numbers = sorted({found[index].field_number for index in range(len(found))})
    yield from ((path, number) for number in numbers)
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        name = f"{path}.{descriptor.name}"
        if descriptor.message_type.GetOptions().map_entry:
            if descriptor.message_type.fields_by_name["value"].message_type is not None:
                for key in sorted(value):
                    yield from unknown_field_numbers(value[key], f"{name}[{key!r}]")
        elif descriptor.is_repeated:
            for index, item in enumerate(value):
                yield from unknown_field_numbers(item, f"{name}[{index}]")
        else:
            yield from unknown_field_numbers(value, name)

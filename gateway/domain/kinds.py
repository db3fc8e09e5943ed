"""Message kinds and the payload type of each (DESIGN §2).

Adapters may register further kinds (a fifth linkage) with ``register``.
"""

from __future__ import annotations

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


def decode(kind: str, payload: bytes) -> Message:
    """Parse ``payload`` as the message type of ``kind``; InvalidMessage if it cannot."""
    message = payload_type(kind)()
    try:
        message.ParseFromString(payload)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidMessage(
            "UNPARSEABLE_PAYLOAD",
            f"payload is not a valid {type(message).__name__}: {exc}",
            [FieldViolation("envelope.payload", "cannot be parsed")],
        ) from None
    return message

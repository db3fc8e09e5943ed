"""The one place where domain errors become gRPC statuses with google.rpc details.

gRPC carries the details in the call's trailing metadata (base64, and clients
refuse metadata over 8 KiB by default), so an answer lists at most
MAX_LISTED_VIOLATIONS field violations, clips long texts, and stops adding
violations before the details reach MAX_DETAILS_BYTES: a refusal naming
20,000 fields stays readable.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.domain import errors
from gateway.proto.silian.v1 import exchange_pb2

DOMAIN = "silian.gateway"
MAX_DETAILS_BYTES = 4096
MESSAGE_CHARS = 400
FIELD_CHARS = 120
DESCRIPTION_CHARS = 200

#: Every GatewayError subclass and its status code (a test checks completeness).
STATUS_CODES: dict[type[errors.GatewayError], grpc.StatusCode] = {
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.InvalidMessage: grpc.StatusCode.INVALID_ARGUMENT,
    errors.TooLarge: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Conflict: grpc.StatusCode.ALREADY_EXISTS,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Internal: grpc.StatusCode.INTERNAL,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_code(err: errors.GatewayError) -> grpc.StatusCode:
    return STATUS_CODES[type(err)]


def to_rpc_status(err: errors.GatewayError) -> status_pb2.Status:
    """google.rpc.Status with ErrorInfo (reason, domain) and, if any, BadRequest."""
    code = status_code(err)
    status = status_pb2.Status(code=code.value[0], message=_clip(err.message, MESSAGE_CHARS))
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN))
    status.details.append(info)
    if isinstance(err, errors.Overloaded):
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(int(err.retry_after_seconds * 1000))
        detail = any_pb2.Any()
        detail.Pack(retry)
        status.details.append(detail)
    if err.violations:
        bad = error_details_pb2.BadRequest()
        budget = MAX_DETAILS_BYTES - status.ByteSize()
        for field, description in _listed(err.violations):
            violation = error_details_pb2.BadRequest.FieldViolation(
                field=field, description=description
            )
            budget -= violation.ByteSize() + 8  # tag, length and the Any's wrapping
            if budget < 0:
                break
            bad.field_violations.append(violation)
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    return status


def _listed(violations: list[errors.FieldViolation]) -> list[tuple[str, str]]:
    return [
        (_clip(v.field, FIELD_CHARS), _clip(v.description, DESCRIPTION_CHARS))
        for v in violations[: errors.MAX_LISTED_VIOLATIONS]
    ]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_grpc_status(err: errors.GatewayError) -> grpc.Status:
    return rpc_status.to_status(to_rpc_status(err))


def internal_status(message: str = "internal error") -> grpc.Status:
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message))


def to_rejection(err: errors.GatewayError) -> exchange_pb2.Rejection:
    """The per-message result of a refused message on SubmitStream."""
    retry_ms = int(err.retry_after_seconds * 1000) if isinstance(err, errors.Overloaded) else 0
    return exchange_pb2.Rejection(
        retry_after_ms=retry_ms,
        code=status_code(err).value[0],
        reason=err.reason,
        message=_clip(err.message, MESSAGE_CHARS),
        field_violations=[
            exchange_pb2.FieldViolation(field=field, description=description)
            for field, description in _listed(err.violations)
        ],
    )

"""The one place where domain errors become gRPC statuses with google.rpc details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.domain import errors
from gateway.proto.silian.v1 import exchange_pb2

DOMAIN = "silian.gateway"

#: Every GatewayError subclass and its status code (a test checks completeness).
STATUS_CODES: dict[type[errors.GatewayError], grpc.StatusCode] = {
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.InvalidMessage: grpc.StatusCode.INVALID_ARGUMENT,
    errors.TooLarge: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Conflict: grpc.StatusCode.ALREADY_EXISTS,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_code(err: errors.GatewayError) -> grpc.StatusCode:
    return STATUS_CODES[type(err)]


def to_rpc_status(err: errors.GatewayError) -> status_pb2.Status:
    """google.rpc.Status with ErrorInfo (reason, domain) and, if any, BadRequest."""
    code = status_code(err)
    status = status_pb2.Status(code=code.value[0], message=err.message)
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
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in err.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    return status


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
        message=err.message,
        field_violations=[
            exchange_pb2.FieldViolation(field=v.field, description=v.description)
            for v in err.violations
        ],
    )

import grpc
from google.rpc import error_details_pb2

from gateway.domain import errors
from gateway.rpc.errors import STATUS_CODES, to_rejection, to_rpc_status


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def test_every_domain_error_has_a_status_code() -> None:
    assert _subclasses(errors.GatewayError) == set(STATUS_CODES)


def test_status_carries_error_info_and_field_violations() -> None:
    err = errors.InvalidMessage(
        "PAYLOAD_INVALID",
        "bad payload",
        [errors.FieldViolation("payload.unit_code", "unknown unit")],
    )
    status = to_rpc_status(err)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and info.reason == "PAYLOAD_INVALID"
    assert status.details[1].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("payload.unit_code", "unknown unit")
    ]


def test_unavailable_is_retryable_unavailable() -> None:
    status = to_rpc_status(errors.Unavailable("DATABASE_UNAVAILABLE", "down"))
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]


def test_stream_rejection_mirrors_the_status() -> None:
    rejection = to_rejection(
        errors.Conflict("MID_REUSED", "again", [errors.FieldViolation("envelope.mid", "used")])
    )
    assert rejection.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    assert rejection.reason == "MID_REUSED"
    assert rejection.field_violations[0].field == "envelope.mid"

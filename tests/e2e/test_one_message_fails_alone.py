"""One partner's oversized message fails alone, with a status its client can
read, while everyone else's messages are stored (real gateway, RabbitMQ,
SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.client import AgencyClient
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2
from gateway.testing import enrolment, resident_id, service_record
from tests.e2e.conftest import Running


def _refusal(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, list[str]]:
    """Code, reason and fields of a refusal, as a client reads them."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "the client could not read the google.rpc details"
    reason, fields = "", []
    for detail in status.details:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad):
            fields = [v.field for v in bad.field_violations]
    return err.code(), reason, fields  # type: ignore[attr-defined]


def _submit_record(ngo: AgencyClient, *pseudonyms: str, record_id: str = "") -> grpc.RpcError:
    record = service_record(*pseudonyms, group=len(pseudonyms) > 1, record_id=record_id)
    with pytest.raises(grpc.RpcError) as caught:
        ngo.submit(kinds.SERVICE_RECORD, record)
    return caught.value


def test_a_300_character_record_id_is_refused_while_600_enrolments_all_succeed(
    running: Running,
) -> None:
    judicial, ngo = running.client("judicial"), running.client("ngo")

    def enrol(_: int) -> envelope_pb2.Receipt:
        return judicial.submit(kinds.ROSTER_CHANGE, enrolment(resident_id()))

    def oversized(_: int) -> grpc.RpcError:
        return _submit_record(ngo, "P-1", record_id="R" * 300)

    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            refused = [pool.submit(oversized, n) for n in range(3)]
            accepted = list(pool.map(enrol, range(600)))
            refused += [pool.submit(oversized, n) for n in range(3)]
            errors = [future.result() for future in refused]
    finally:
        judicial.close()
        ngo.close()
    assert len({receipt.mid for receipt in accepted}) == 600
    assert all(receipt.audit_index > 0 for receipt in accepted)
    for err in errors:
        assert _refusal(err) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAYLOAD_INVALID",
            ["payload.record_id"],
        )
        assert "at most 64" in err.details()  # type: ignore[attr-defined]


def test_a_service_record_naming_20000_people_is_refused_with_a_readable_status(
    running: Running,
) -> None:
    ngo = running.client("ngo")
    try:
        err = _submit_record(ngo, *(f"P-{n:06d}" for n in range(20_000)))
    finally:
        ngo.close()
    assert _refusal(err) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "PAYLOAD_INVALID",
        ["payload.subject_pseudonyms"],
    )
    assert "20000 entries; at most 500" in err.details()  # type: ignore[attr-defined]

"""The police's native files: the verification export read into messages, and
the verification requests written out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.police.formats import VERIFICATION_EXPORT, VERIFICATION_REQUESTS, VerificationMapper
from gateway.client.connectors import FieldError, Outgoing, Row
from gateway.domain import kinds
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import resident_id

PERSON = resident_id()
GOOD = {
    "record_id": "HC-2026-000123",
    "request_id": "VQ-7",
    "resident_id": PERSON.lower(),
    "name": "王某",
    "unit": "渭滨区",
    "check_type": "旅馆住宿",
    "outcome": "比中",
    "observed_at": "2026-03-05 22:10",
    "place": "西安市雁塔区某酒店",
    "place_region_code": "610113",
    "police_reference": "A6101130000002026030001",
    "details": "同住1人",
}


def _map(**changes: str) -> Outgoing | list[FieldError]:
    return VerificationMapper(Units.default()).map_row(Row(2, {**GOOD, **changes}))


def test_a_row_of_the_export_becomes_a_verification_result() -> None:
    outgoing = _map()
    assert isinstance(outgoing, Outgoing)
    assert outgoing.kind == kinds.VERIFICATION_RESULT
    assert outgoing.key == "记录编号 HC-2026-000123"
    result = outgoing.payload
    assert isinstance(result, pb.VerificationResult)
    assert (result.result_id, result.request_id) == ("HC-2026-000123", "VQ-7")
    assert (result.subject.resident_id, result.subject.name) == (PERSON.upper(), "王某")
    assert result.unit_code == "610302"
    assert (result.check_type, result.outcome) == (pb.CHECK_TYPE_HOTEL_STAY, pb.CHECK_OUTCOME_HIT)
    assert result.observed_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 5, 14, 10, tzinfo=UTC)
    assert (result.place_region_code, result.details) == ("610113", "同住1人")


def test_english_labels_are_read_too() -> None:
    outgoing = _map(check_type="device_separation", outcome="no_hit", unit="610331")
    assert isinstance(outgoing, Outgoing) and isinstance(outgoing.payload, pb.VerificationResult)
    assert outgoing.payload.check_type == pb.CHECK_TYPE_DEVICE_SEPARATION
    assert outgoing.payload.outcome == pb.CHECK_OUTCOME_NO_HIT


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        (
            {"resident_id": PERSON[:17] + ("1" if PERSON[17] == "0" else "0")},
            "resident_id",
            "check character should be",
        ),
        ({"check_type": "散步"}, "check_type", "unknown value '散步'"),
        ({"outcome": ""}, "outcome", "is required"),
        ({"observed_at": "2026-02-30 10:00"}, "observed_at", "not a date and time that exists"),
        ({"place_region_code": "6101"}, "place_region_code", "is not 6 digits"),
        ({"unit": "长安区"}, "unit", "unknown unit"),
        ({"record_id": ""}, "record_id", "is required"),
    ],
)
def test_bad_cells_are_named_with_their_reason(
    changes: dict[str, str], field: str, reason: str
) -> None:
    errors = _map(**changes)
    assert isinstance(errors, list)
    assert [error.field for error in errors] == [field]
    assert reason in errors[0].reason


def test_every_column_names_the_payload_field_it_fills() -> None:
    assert VERIFICATION_EXPORT.column_for_path("payload.subject.resident_id") is not None
    assert VERIFICATION_EXPORT.column_for_path("payload.observed_at") is not None
    required = [c.headers[0] for c in VERIFICATION_EXPORT.columns if c.required]
    assert required == ["记录编号", "身份证号", "单位", "核查类型", "核查结果", "发现时间"]


def test_a_request_is_written_one_row_per_person() -> None:
    other = resident_id()
    request = pb.VerificationRequest(
        request_id="VQ-7",
        unit_code="610302",
        subjects=[pb.Subject(resident_id=PERSON, name="王某"), pb.Subject(resident_id=other)],
        check_types=[pb.CHECK_TYPE_BIG_DATA, pb.CHECK_TYPE_VIDEO_CHECK],
        reason="疑似脱管",
    )
    request.response_deadline.FromDatetime(datetime(2026, 3, 6, 1, 0, tzinfo=UTC))
    rows = list(VERIFICATION_REQUESTS.rows(request))
    assert [list(row) for row in rows] == [
        [
            "VQ-7",
            "610302",
            PERSON,
            "王某",
            "大数据核查、视频点名",
            "疑似脱管",
            "2026-03-06 09:00:00",
        ],
        ["VQ-7", "610302", other, "", "大数据核查、视频点名", "疑似脱管", "2026-03-06 09:00:00"],
    ]
    assert len(VERIFICATION_REQUESTS.headers) == len(rows[0])

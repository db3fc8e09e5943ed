"""The police's native files.

In: the verification export of the police's information-check platform (核查
结果导出), one row per hit or check (``VERIFICATION_EXPORT``; ``silian police
columns`` lists it), becomes ``verification.result`` messages.

Out: the roster changes (``roster-*.csv``, the shared roster format) and the
bureau's verification requests (``requests-*.csv``, one row per person named).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC

from google.protobuf.message import Message

from adapters.police.labels import CHECK_OUTCOMES, CHECK_TYPES
from gateway.client.connectors import (
    Cells,
    Column,
    ExportFormat,
    FieldError,
    NativeFormat,
    Outgoing,
    Row,
)
from gateway.client.connectors.fields import local_text
from gateway.client.connectors.standard import ROSTER_CHANGES
from gateway.domain.kinds import VERIFICATION_REQUEST, VERIFICATION_RESULT
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

_DIVISION_CODE = re.compile(r"\d{6}")

VERIFICATION_EXPORT = NativeFormat(
    "police verification export (核查结果导出)",
    (
        Column(
            "record_id",
            ("记录编号", "record_id", "核查编号"),
            path="result_id",
            help="the platform's id of this record; one id, one record",
        ),
        Column(
            "request_id",
            ("请求编号", "request_id"),
            required=False,
            path="request_id",
            help="the bureau's verification request this answers, if any",
        ),
        Column(
            "resident_id",
            ("身份证号", "resident_id", "公民身份号码"),
            path="subject.resident_id",
            help="18 characters, check character verified",
        ),
        Column("name", ("姓名", "name"), required=False, path="subject.name", help="name"),
        Column(
            "unit",
            ("单位", "unit", "单位代码", "unit_code"),
            path="unit_code",
            help="supervising county unit: code (610302) or name (渭滨区), as in the roster",
        ),
        Column(
            "check_type",
            ("核查类型", "check_type"),
            path="check_type",
            help=CHECK_TYPES.choices(),
        ),
        Column("outcome", ("核查结果", "outcome"), path="outcome", help=CHECK_OUTCOMES.choices()),
        Column(
            "observed_at",
            ("发现时间", "observed_at", "比中时间"),
            path="observed_at",
            help="YYYY-MM-DD HH:MM[:SS], Beijing time",
        ),
        Column("place", ("地点", "place", "发现地点"), required=False, path="place", help="place"),
        Column(
            "place_region_code",
            ("地点区划代码", "place_region_code", "行政区划代码"),
            required=False,
            path="place_region_code",
            help="6-digit division code of the place (decides 越界)",
        ),
        Column(
            "police_reference",
            ("警情编号", "police_reference"),
            required=False,
            path="police_reference",
            help="incident or case number",
        ),
        Column("details", ("备注", "details"), required=False, path="details", help="notes"),
    ),
)


class VerificationMapper:
    """Rows of the verification export → ``verification.result`` messages."""

    native = VERIFICATION_EXPORT

    def __init__(self, units: Units) -> None:
        self.units = units

    def map_row(self, row: Row) -> Outgoing | list[FieldError]:
        cells = Cells(row)
        record_id = cells.text("record_id", required=True)
        result = pb.VerificationResult(
            result_id=record_id,
            request_id=cells.text("request_id"),
            subject=pb.Subject(
                resident_id=cells.resident_id("resident_id"), name=cells.text("name")
            ),
            unit_code=cells.unit("unit", self.units),
            check_type=cells.choice("check_type", CHECK_TYPES) or 0,  # type: ignore[arg-type]
            outcome=cells.choice("outcome", CHECK_OUTCOMES) or 0,  # type: ignore[arg-type]
            place=cells.text("place"),
            place_region_code=cells.text("place_region_code"),
            police_reference=cells.text("police_reference"),
            details=cells.text("details"),
        )
        if result.place_region_code and not _DIVISION_CODE.fullmatch(result.place_region_code):
            cells.fail("place_region_code", f"{result.place_region_code!r} is not 6 digits")
        observed_at = cells.moment("observed_at")
        if observed_at is not None:
            result.observed_at.FromDatetime(observed_at)
        if cells.errors:
            return cells.errors
        return Outgoing(VERIFICATION_RESULT, result, key=f"记录编号 {record_id}")


def _request_rows(message: Message) -> Iterable[Sequence[str]]:
    assert isinstance(message, pb.VerificationRequest)
    request = message
    checks = "、".join(CHECK_TYPES.label(check) for check in request.check_types)
    deadline = (
        local_text(request.response_deadline.ToDatetime(tzinfo=UTC))
        if request.HasField("response_deadline")
        else ""
    )
    for subject in request.subjects:
        yield (
            request.request_id,
            request.unit_code,
            subject.resident_id,
            subject.name,
            checks,
            request.reason,
            deadline,
        )


#: 核查请求 — one row per person named in a verification request.
VERIFICATION_REQUESTS = ExportFormat(
    kind=VERIFICATION_REQUEST,
    stem="requests",
    headers=("请求编号", "单位代码", "身份证号", "姓名", "核查类型", "核查原因", "回复期限"),
    rows=_request_rows,
)

#: What ``silian police export`` writes.
EXPORTS = (ROSTER_CHANGES, VERIFICATION_REQUESTS)

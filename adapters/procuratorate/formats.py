"""The procuratorate's native files.

In: its supervision ledger (检察监督台账, ``SUPERVISION_LEDGER``; ``silian
procuratorate columns`` lists it): one row per finding issued (记录类型 检察发现)
or per decision on a rectification (结案 closed, 重新整改 reopened). Findings
become ``inspection.finding``, decisions ``inspection.closure``. A finding row
fills the finding columns; a decision row needs only 问题编号, 单位, 决定日期
and, to reopen, 理由.

Out: the bureau's rectification reports (``rectifications-*.csv``), roster
changes (``roster-*.csv``), supervision-relevant alerts (``alerts-*.csv``) and
the bureau's dispositions of them (``dispositions-*.csv``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.protobuf.message import Message

from adapters.procuratorate.labels import CLOSE, FINDING, FINDING_CATEGORIES, RECORD_TYPES, REOPEN
from gateway.client.connectors import (
    Cells,
    Column,
    ExportFormat,
    FieldError,
    NativeFormat,
    Outgoing,
    Row,
)
from gateway.client.connectors.labels import SEVERITIES
from gateway.client.connectors.standard import ALERTS, DISPOSITIONS, ROSTER_CHANGES
from gateway.domain.kinds import INSPECTION_CLOSURE, INSPECTION_FINDING, INSPECTION_RECTIFICATION
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

_DECISIONS = {
    CLOSE: pb.CLOSURE_DECISION_CLOSED,
    REOPEN: pb.CLOSURE_DECISION_REOPENED,
}
_FOR_FINDING = " for a finding (检察发现)"

SUPERVISION_LEDGER = NativeFormat(
    "procuratorate supervision ledger (检察监督台账)",
    (
        Column(
            "record_type",
            ("记录类型", "record_type"),
            help=RECORD_TYPES.choices(),
        ),
        Column("finding_id", ("问题编号", "finding_id"), path="finding_id", help="finding id"),
        Column(
            "unit",
            ("单位", "unit", "单位代码", "unit_code"),
            path="unit_code",
            help="county unit inspected: code (610302) or name (渭滨区)",
        ),
        Column(
            "inspection_id",
            ("检察编号", "inspection_id"),
            required=False,
            path="inspection_id",
            help="the inspection (巡回检察) the finding came from",
        ),
        Column(
            "category",
            ("类别", "category"),
            required=False,
            path="category",
            help=FINDING_CATEGORIES.choices(),
        ),
        Column(
            "severity",
            ("严重程度", "severity"),
            required=False,
            path="severity",
            help=SEVERITIES.choices(),
        ),
        Column(
            "finding", ("问题描述", "finding"), required=False, path="finding", help="the finding"
        ),
        Column(
            "legal_basis",
            ("法律依据", "legal_basis"),
            required=False,
            path="legal_basis",
            help="required for 纠正违法",
        ),
        Column(
            "recommendation",
            ("检察建议内容", "recommendation"),
            required=False,
            path="recommendation",
            help="what the bureau should do",
        ),
        Column(
            "issued_date",
            ("发出日期", "issued_date"),
            required=False,
            path="issued_date",
            help="YYYY-MM-DD",
        ),
        Column(
            "rectification_deadline",
            ("整改期限", "rectification_deadline"),
            required=False,
            path="rectification_deadline",
            help="YYYY-MM-DD; required for 检察建议 and 纠正违法",
        ),
        Column(
            "resident_ids",
            ("涉及人员身份证号", "resident_ids"),
            required=False,
            path="subjects.resident_id",
            help="resident IDs of people concerned, separated by ; or 、",
        ),
        Column(
            "decided_date",
            ("决定日期", "decided_date"),
            required=False,
            path="decided_date",
            help="YYYY-MM-DD, for 结案 and 重新整改",
        ),
        Column(
            "reason",
            ("理由", "reason"),
            required=False,
            path="reason",
            help="why; required for 重新整改",
        ),
    ),
)


class LedgerMapper:
    """Rows of the supervision ledger → findings and closures."""

    native = SUPERVISION_LEDGER

    def __init__(self, units: Units) -> None:
        self.units = units

    def map_row(self, row: Row) -> Outgoing | list[FieldError]:
        cells = Cells(row)
        record_type = cells.choice("record_type", RECORD_TYPES)
        finding_id = cells.text("finding_id", required=True)
        unit_code = cells.unit("unit", self.units)
        if record_type is None:
            return cells.errors
        if record_type == FINDING:
            finding = self._finding(cells, finding_id, unit_code)
            if cells.errors:
                return cells.errors
            return Outgoing(INSPECTION_FINDING, finding, key=f"问题编号 {finding_id}")
        decided = cells.date("decided_date", because=" for a decision (结案/重新整改)")
        if cells.errors or decided is None:
            return cells.errors
        closure = pb.InspectionClosure(
            finding_id=finding_id,
            unit_code=unit_code,
            decision=_DECISIONS[record_type],
            reason=cells.text("reason"),
            decided_date=decided.isoformat(),
        )
        key = f"问题编号 {finding_id} {RECORD_TYPES.label(record_type)} {decided}"
        return Outgoing(INSPECTION_CLOSURE, closure, key=key)

    def _finding(self, cells: Cells, finding_id: str, unit_code: str) -> pb.InspectionFinding:
        issued = cells.date("issued_date", because=_FOR_FINDING)
        deadline = cells.date("rectification_deadline", required=False)
        category = cells.choice("category", FINDING_CATEGORIES, because=_FOR_FINDING)
        severity = cells.choice("severity", SEVERITIES, because=_FOR_FINDING)
        return pb.InspectionFinding(
            inspection_id=cells.text("inspection_id", required=True, because=_FOR_FINDING),
            finding_id=finding_id,
            unit_code=unit_code,
            category=category or 0,  # type: ignore[arg-type]
            severity=severity or 0,  # type: ignore[arg-type]
            finding=cells.text("finding", required=True, because=_FOR_FINDING),
            legal_basis=cells.text("legal_basis"),
            recommendation=cells.text("recommendation"),
            issued_date=issued.isoformat() if issued else "",
            rectification_deadline=deadline.isoformat() if deadline else "",
            subjects=[pb.Subject(resident_id=rid) for rid in cells.resident_ids("resident_ids")],
        )


def _rectification_rows(message: Message) -> Iterable[Sequence[str]]:
    assert isinstance(message, pb.InspectionRectification)
    report = message
    yield (
        report.finding_id,
        report.unit_code,
        report.actions,
        ";".join(report.evidence_refs),
        report.reported_date,
    )


#: 整改报告 — one row per rectification report.
RECTIFICATIONS = ExportFormat(
    kind=INSPECTION_RECTIFICATION,
    stem="rectifications",
    headers=("问题编号", "单位代码", "整改措施", "证据材料", "报告日期"),
    rows=_rectification_rows,
)

#: What ``silian procuratorate export`` writes.
EXPORTS = (RECTIFICATIONS, ROSTER_CHANGES, ALERTS, DISPOSITIONS)

"""The procuratorate's ledger read into findings and closures, and the
rectification reports written out."""

from __future__ import annotations

import pytest

from adapters.procuratorate.formats import (
    EXPORTS,
    RECTIFICATIONS,
    SUPERVISION_LEDGER,
    LedgerMapper,
)
from gateway.client.connectors import FieldError, Outgoing, Row
from gateway.client.connectors.standard import DISPOSITIONS
from gateway.domain import kinds
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import resident_id

PERSON = resident_id()
FINDING_ROW = {
    "record_type": "检察发现",
    "inspection_id": "XH-2026-01",
    "finding_id": "JC-2026-001",
    "unit": "金台区",
    "category": "纠正违法",
    "severity": "高",
    "finding": "对脱管人员未及时提请治安处罚",
    "legal_basis": "《社区矫正法》第二十八条",
    "recommendation": "依法提请",
    "issued_date": "2026/3/2",
    "rectification_deadline": "2026年3月31日",
    "resident_ids": f"{PERSON}；",
}


def _map(row: dict[str, str]) -> Outgoing | list[FieldError]:
    return LedgerMapper(Units.default()).map_row(Row(5, row))


def test_a_finding_row_becomes_an_inspection_finding() -> None:
    outgoing = _map(FINDING_ROW)
    assert isinstance(outgoing, Outgoing)
    assert (outgoing.kind, outgoing.key) == (kinds.INSPECTION_FINDING, "问题编号 JC-2026-001")
    finding = outgoing.payload
    assert isinstance(finding, pb.InspectionFinding)
    assert (finding.inspection_id, finding.finding_id, finding.unit_code) == (
        "XH-2026-01",
        "JC-2026-001",
        "610303",
    )
    assert finding.category == pb.FINDING_CATEGORY_CORRECTION_OF_VIOLATION
    assert finding.severity == pb.SEVERITY_HIGH
    assert (finding.issued_date, finding.rectification_deadline) == ("2026-03-02", "2026-03-31")
    assert [s.resident_id for s in finding.subjects] == [PERSON]


@pytest.mark.parametrize(
    ("label", "decision"),
    [("结案", pb.CLOSURE_DECISION_CLOSED), ("reopen", pb.CLOSURE_DECISION_REOPENED)],
)
def test_decision_rows_become_closures(label: str, decision: int) -> None:
    row = {
        "record_type": label,
        "finding_id": "JC-2026-001",
        "unit": "610303",
        "decided_date": "2026-04-02",
        "reason": "整改到位",
    }
    outgoing = _map(row)
    assert isinstance(outgoing, Outgoing) and outgoing.kind == kinds.INSPECTION_CLOSURE
    assert outgoing.payload == pb.InspectionClosure(
        finding_id="JC-2026-001",
        unit_code="610303",
        decision=decision,  # type: ignore[arg-type]
        reason="整改到位",
        decided_date="2026-04-02",
    )
    assert outgoing.key.startswith("问题编号 JC-2026-001 ") and outgoing.key.endswith("2026-04-02")


def test_a_finding_row_missing_its_finding_cells_names_each() -> None:
    row = {"record_type": "检察发现", "finding_id": "JC-9", "unit": "610302"}
    errors = _map(row)
    assert isinstance(errors, list)
    assert {e.field for e in errors} == {
        "issued_date",
        "category",
        "severity",
        "inspection_id",
        "finding",
    }
    assert all("for a finding (检察发现)" in e.reason for e in errors)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"record_type": "通报"}, "record_type", "unknown value '通报'"),
        ({"issued_date": "2026-02-30"}, "issued_date", "not a date that exists"),
        ({"rectification_deadline": "下月底"}, "rectification_deadline", "is not a date"),
        ({"unit": "长安区"}, "unit", "unknown unit"),
        ({"resident_ids": f"{PERSON};110101199002300011"}, "resident_ids", "not a valid resident"),
        ({"severity": "极高"}, "severity", "unknown value"),
    ],
)
def test_bad_cells_are_named_with_their_reason(
    changes: dict[str, str], field: str, reason: str
) -> None:
    errors = _map({**FINDING_ROW, **changes})
    assert isinstance(errors, list)
    assert [e.field for e in errors] == [field] and reason in errors[0].reason


def test_a_decision_needs_its_date() -> None:
    errors = _map({"record_type": "结案", "finding_id": "JC-1", "unit": "610302"})
    assert errors == [FieldError("decided_date", "is required for a decision (结案/重新整改)")]


def test_only_the_identifying_columns_are_required_in_the_header() -> None:
    required = [c.headers[0] for c in SUPERVISION_LEDGER.columns if c.required]
    assert required == ["记录类型", "问题编号", "单位"]
    column = SUPERVISION_LEDGER.column_for_path("payload.subjects[0].resident_id")
    assert column is not None and column.field == "resident_ids"


def test_rectification_reports_are_written_one_row_each() -> None:
    report = pb.InspectionRectification(
        finding_id="JC-2026-001",
        unit_code="610303",
        actions="已提请治安处罚",
        evidence_refs=["DOC-1", "DOC-2"],
        reported_date="2026-03-20",
    )
    assert [list(r) for r in RECTIFICATIONS.rows(report)] == [
        ["JC-2026-001", "610303", "已提请治安处罚", "DOC-1;DOC-2", "2026-03-20"]
    ]


def test_dispositions_are_written_one_row_each_in_the_procuratorates_words() -> None:
    step = pb.AlertDisposition(
        disposition_id="AD-1",
        alert_id="AL-1",
        alert_type=pb.ALERT_TYPE_NEW_OFFENCE,
        unit_code="610303",
        step=pb.DISPOSITION_STEP_DISPOSED,
        method=pb.VERIFICATION_METHOD_ON_SITE,
        finding=pb.DISPOSITION_FINDING_OFFENCE_CONFIRMED,
        action=pb.DISPOSITION_ACTION_REVOCATION_REQUESTED,
        officer="王矫正官",
    )
    step.occurred_at.FromSeconds(1_780_000_000)
    (row,) = DISPOSITIONS.rows(step)
    assert EXPORTS[-1] is DISPOSITIONS and DISPOSITIONS.stem == "dispositions"
    assert dict(zip(DISPOSITIONS.headers, row, strict=True)) | {"时间": ""} == {
        "处置编号": "AD-1",
        "预警编号": "AL-1",
        "预警类型": "新的违法犯罪",
        "单位代码": "610303",
        "处置环节": "处置",
        "核查方式": "现地核查",
        "核查结论": "重新犯罪属实",
        "处置措施": "提请撤销缓刑假释或收监执行",
        "责任人": "王矫正官",
        "时间": "",
        "备注": "",
        "理由": "",
    }

"""The procuratorate linkage end to end, through a real gateway and RabbitMQ:
findings imported from the procuratorate's ledger (XLSX, with bad rows), the
bureau's rectification, closures in and out of order, the finding lifecycle
refusing what comes out of order, and a finding past its deadline raising an
alert to both sides — in the procuratorate's native export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import grpc
import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from gateway.cli import main
from gateway.client import AgencyClient
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import resident_id
from tests.e2e.conftest import Running

PERSON = resident_id("610303")
# Dates a day back: the gateway refuses dates after its own (UTC) today.
ISSUED = (datetime.now(UTC) - timedelta(days=1)).date()
DEADLINE = ISSUED + timedelta(days=10)
LEDGER = [
    "记录类型", "检察编号", "问题编号", "单位", "类别", "严重程度", "问题描述",
    "法律依据", "整改期限", "发出日期", "涉及人员身份证号", "决定日期", "理由",
]  # fmt: skip


def cli(running: Running, *args: str) -> click.testing.Result:
    settings = running.settings
    return CliRunner().invoke(
        main,
        ["--data-dir", str(settings.data_dir), *args, "--target", running.target],
        env={"SILIAN_DATABASE_URL": settings.database_url},
        catch_exceptions=False,
    )


def _finding_row(finding_id: str, **changes: object) -> list[object]:
    row: dict[str, object] = {
        "记录类型": "检察发现",
        "检察编号": "XH-2026-03",
        "问题编号": finding_id,
        "单位": "金台区",
        "类别": "检察建议",
        "严重程度": "中",
        "问题描述": "社区矫正对象外出请假审批材料不全",
        "法律依据": "",
        "整改期限": DEADLINE,
        "发出日期": ISSUED,
        "涉及人员身份证号": PERSON,
        "决定日期": "",
        "理由": "",
    }
    row.update(changes)
    return [row[header] for header in LEDGER]


def _decision(label: str, finding_id: str, reason: str = "") -> str:
    return f"{label},{finding_id},金台区,{ISSUED},{reason}\n"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _report(path: Path) -> list[tuple[str, str, str]]:
    return [(r["line"], r["column"], r["code"]) for r in _rows(path)]


def _decoded(deliveries: list[envelope_pb2.Delivery]) -> list[tuple[str, object]]:
    return [(d.mid, kinds.decode(d.kind, d.payload)) for d in deliveries]


@pytest.fixture(scope="module")
def bureau(running: Running) -> Iterator[AgencyClient]:
    judicial = running.client("judicial")
    yield judicial
    judicial.close()


@pytest.fixture(scope="module")
def findings(
    running: Running, bureau: AgencyClient, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The procuratorate's ledger of three findings, imported; the bureau's
    received findings by id → mid."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(LEDGER)
    sheet.append(_finding_row("JC-1"))
    sheet.append(_finding_row("JC-2", 严重程度="高"))
    sheet.append(_finding_row("JC-3", 单位="长安区"))
    sheet.append(_finding_row("JC-4", 发出日期="2026-02-30"))
    sheet.append(_finding_row("JC-1"))
    sheet.append(_finding_row("JC-5", 类别="纠正违法"))
    sheet.append(_finding_row("JC-6", 单位="610399"))
    path = tmp_path_factory.mktemp("ledger") / "检察监督台账.xlsx"
    book.save(path)

    result = cli(running, "procuratorate", "import", str(path))

    assert result.exit_code == 1, result.output
    assert "检察监督台账.xlsx (XLSX): 7 rows — 2 accepted, 5 rejected" in result.output
    report = path.with_name(path.name + ".report.csv")
    assert _report(report) == [
        ("4", "单位/unit", "INVALID"),
        ("5", "发出日期/issued_date", "INVALID"),
        ("6", "", "DUPLICATE"),
        ("7", "法律依据/legal_basis", "INVALID_ARGUMENT/PAYLOAD_INVALID"),
        ("8", "单位/unit", "INVALID_ARGUMENT/PAYLOAD_INVALID"),
    ]
    assert "is required for FINDING_CATEGORY_CORRECTION_OF_VIOLATION" in _rows(report)[3]["reason"]
    received = {
        message.finding_id: mid
        for mid, message in _decoded(bureau.drain(2, timeout=20))
        if isinstance(message, pb.InspectionFinding)
    }
    assert sorted(received) == ["JC-1", "JC-2"]
    return received


def _rectification(finding_id: str) -> pb.InspectionRectification:
    return pb.InspectionRectification(
        finding_id=finding_id,
        unit_code="610303",
        actions="补齐外出请假审批材料并组织全员培训",
        evidence_refs=["金司矫〔2026〕12号"],
        reported_date=ISSUED.isoformat(),
    )


def _refusal(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value


def test_the_bureau_rectifies_and_the_procuratorate_exports_it(
    running: Running, bureau: AgencyClient, findings: dict[str, str], tmp_path: Path
) -> None:
    receipt = bureau.submit(kinds.INSPECTION_RECTIFICATION, _rectification("JC-1"))
    result = cli(running, "procuratorate", "export", "--out", str(tmp_path), "--idle", "2")
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.glob("rectifications-*.csv")
    (row,) = _rows(path)
    assert (row["问题编号"], row["证据材料"], row["消息编号"]) == (
        "JC-1",
        "金司矫〔2026〕12号",
        receipt.mid,
    )


def test_a_rectification_of_an_unknown_finding_is_a_failed_precondition(
    bureau: AgencyClient,
) -> None:
    refused = _refusal(
        lambda: bureau.submit(kinds.INSPECTION_RECTIFICATION, _rectification("JC-9"))
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert "no finding 'JC-9'" in refused.details()  # type: ignore[attr-defined]


def test_closures_in_order_go_through_and_out_of_order_ones_are_refused(
    running: Running, bureau: AgencyClient, findings: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "结案.csv"
    path.write_text(
        "记录类型,问题编号,单位,决定日期,理由\n"
        + _decision("结案", "JC-1", "整改到位")
        + _decision("结案", "JC-2")
        + _decision("重新整改", "JC-8", "未整改"),
        encoding="gb18030",
    )
    result = cli(running, "procuratorate", "import", str(path))
    assert result.exit_code == 1, result.output
    assert "1 accepted, 2 rejected" in result.output
    assert _report(path.with_name(path.name + ".report.csv")) == [
        ("3", "问题编号/finding_id", "FAILED_PRECONDITION/FINDING_OUT_OF_ORDER"),
        ("4", "问题编号/finding_id", "FAILED_PRECONDITION/UNKNOWN_FINDING"),
    ]
    closures = [
        message
        for _, message in _decoded(bureau.drain(1, timeout=20))
        if isinstance(message, pb.InspectionClosure)
    ]
    assert [(c.finding_id, c.decision) for c in closures] == [("JC-1", pb.CLOSURE_DECISION_CLOSED)]
    refused = _refusal(
        lambda: bureau.submit(kinds.INSPECTION_RECTIFICATION, _rectification("JC-1"))
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert "finding JC-1 is CLOSED" in refused.details()  # type: ignore[attr-defined]


def test_a_finding_id_issued_again_is_a_failed_precondition(
    running: Running, findings: dict[str, str]
) -> None:
    procuratorate = running.client("procuratorate")
    again = pb.InspectionFinding(
        inspection_id="XH-2026-04",
        finding_id="JC-2",
        unit_code="610303",
        category=pb.FINDING_CATEGORY_ORAL_CORRECTION,
        severity=pb.SEVERITY_LOW,
        finding="另一问题",
        issued_date=ISSUED.isoformat(),
    )
    refused = _refusal(lambda: procuratorate.submit(kinds.INSPECTION_FINDING, again))
    procuratorate.close()
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert "finding JC-2 was already issued" in refused.details()  # type: ignore[attr-defined]


def test_a_finding_past_its_deadline_alerts_both_sides_once(
    running: Running, bureau: AgencyClient, findings: dict[str, str], tmp_path: Path
) -> None:
    service = running.background.gateway.service
    after = datetime.combine(DEADLINE + timedelta(days=2), datetime.min.time(), UTC)
    assert service.sweep(now=after) == 1  # JC-2 only: JC-1 was rectified and closed
    assert service.sweep(now=after + timedelta(days=1)) == 0
    alerts = [m for _, m in _decoded(bureau.drain(1, timeout=20)) if isinstance(m, pb.Alert)]
    assert [(a.alert_type, list(a.evidence_mids)) for a in alerts] == [
        (pb.ALERT_TYPE_FINDING_OVERDUE, [findings["JC-2"]])
    ]
    result = cli(running, "procuratorate", "export", "--out", str(tmp_path), "--idle", "2")
    (path,) = tmp_path.glob("alerts-*.csv")
    (row,) = _rows(path)
    assert (row["预警类型"], row["单位代码"], row["证据消息编号"]) == (
        "整改逾期",
        "610303",
        findings["JC-2"],
    ), result.output
    assert "JC-2" in row["预警描述"] and DEADLINE.isoformat() in row["预警描述"]

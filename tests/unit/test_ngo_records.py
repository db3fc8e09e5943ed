"""The NGO's service-record spreadsheet → service.record messages, and what its
export writes (no gateway: files and mapping only)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from adapters.ngo.formats import SERVICE_RECORDS, record_mapper
from adapters.partner_services.exports import CHANGES, REFERRALS
from gateway.client.connectors import FieldError, FileProblem, Outgoing, read_native
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

P1 = "P-ABCDEFGHIJKLMNOPQRST"
P2 = "P-234567ABCDEFGHIJKLMN"
CHINESE = (
    "记录编号,服务对象编号,区县代码,服务类型,活动形式,服务日期,时长(分钟),参加人数,"
    "服务结果,服务人员\n"
)
ENGLISH = (
    "record_id,subject_pseudonyms,unit_code,service_type,event_kind,service_date,"
    "duration_minutes,attendance,outcome,provider\n"
)


def mapped(tmp_path: Path, text: str, suffix: str = ".csv") -> list[Outgoing | list[FieldError]]:
    path = tmp_path / f"records{suffix}"
    path.write_text(text, encoding="utf-8")
    mapper = record_mapper(Units.default())
    return [mapper.map_row(row) for row in read_native(path, SERVICE_RECORDS).rows]


def record(result: Outgoing | list[FieldError]) -> pb.ServiceRecord:
    assert isinstance(result, Outgoing), result
    assert isinstance(result.payload, pb.ServiceRecord)
    return result.payload


def test_an_individual_session_becomes_a_record(tmp_path: Path) -> None:
    [row] = mapped(
        tmp_path, CHINESE + f"HS-1,{P1},610302,心理咨询,个别,2026/3/5,60,,已完成,李老师\n"
    )
    assert isinstance(row, Outgoing) and row.key == "记录编号 HS-1"
    assert record(row) == pb.ServiceRecord(
        record_id="HS-1",
        subject_pseudonyms=[P1],
        unit_code="610302",
        service_type=pb.SERVICE_TYPE_COUNSELLING,
        event_kind=pb.EVENT_KIND_INDIVIDUAL,
        service_date="2026-03-05",
        duration_minutes=60,
        attendance=1,
        outcome=pb.SERVICE_OUTCOME_COMPLETED,
        provider="李老师",
    )


def test_a_group_event_lists_several_people_and_the_head_count(tmp_path: Path) -> None:
    line = f"HS-2,{P1}；{P2.lower()},金台区,专家教育,集体,2026年3月6日,90分钟,35人,需跟进,\n"
    result = record(mapped(tmp_path, CHINESE + line)[0])
    assert list(result.subject_pseudonyms) == [P1, P2]
    assert (result.unit_code, result.event_kind, result.attendance) == (
        "610303",
        pb.EVENT_KIND_GROUP,
        35,
    )
    assert (result.duration_minutes, result.outcome) == (90, pb.SERVICE_OUTCOME_FOLLOW_UP_NEEDED)


def test_english_headers_and_values_are_read_too(tmp_path: Path) -> None:
    line = f"HS-3,{P1},610331,free_clinic,group,2026-03-07,120,12,completed,Dr Li\n"
    result = record(mapped(tmp_path, ENGLISH + line)[0])
    assert (result.service_type, result.event_kind) == (
        pb.SERVICE_TYPE_FREE_CLINIC,
        pb.EVENT_KIND_GROUP,
    )


def test_an_xlsx_workbook_is_read_with_dates_and_numbers_as_cells(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(CHINESE.strip().split(","))
    sheet.append(
        ["HS-4", P1, 610302, "技能培训", "个别", datetime(2026, 3, 8), 45, None, "完成", ""]
    )
    path = tmp_path / "records.xlsx"
    book.save(path)
    [row] = read_native(path, SERVICE_RECORDS).rows
    result = record(record_mapper(Units.default()).map_row(row))
    assert (result.service_date, result.duration_minutes, result.unit_code) == (
        "2026-03-08",
        45,
        "610302",
    )


@pytest.mark.parametrize(
    ("cells", "field", "reason"),
    [
        (f"HS-5,{P1},610302,禁毒教育,个别,2026-03-05,60,,已完成,", "service_type", "unknown value"),
        (
            f"HS-5,{P1},610302,义诊,个别,2026-02-30,60,,已完成,",
            "service_date",
            "not a date that exists",
        ),
        ("HS-5,王某,610302,义诊,个别,2026-02-03,60,,已完成,", "pseudonyms", "is not a pseudonym"),
        ("HS-5,,610302,义诊,个别,2026-02-03,60,,已完成,", "pseudonyms", "is required"),
        (f"HS-5,{P1},某某区,义诊,个别,2026-02-03,60,,已完成,", "unit", "unknown unit"),
        (f"HS-5,{P1},610302,义诊,个别,2026-02-03,一小时,,已完成,", "duration", "whole number"),
        (f"HS-5,{P1},610302,义诊,偶尔,2026-02-03,60,,已完成,", "event_kind", "unknown value"),
    ],
)
def test_a_bad_cell_is_reported_against_its_column(
    tmp_path: Path, cells: str, field: str, reason: str
) -> None:
    [errors] = mapped(tmp_path, CHINESE + cells + "\n")
    assert isinstance(errors, list)
    assert [e.field for e in errors] == [field]
    assert reason in errors[0].reason


def test_a_missing_column_makes_the_file_unusable_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text(CHINESE.replace(",服务日期", ""), encoding="utf-8")
    with pytest.raises(FileProblem) as raised:
        read_native(path, SERVICE_RECORDS)
    assert "line 1" in str(raised.value) and "服务日期/service_date" in str(raised.value)


def test_the_export_writes_what_the_ngo_received_and_nothing_else() -> None:
    referral = pb.ServiceReferral(
        subject=pb.Subject(pseudonym=P1, age_band="30-39"),
        unit_code="610302",
        needs=[pb.SERVICE_TYPE_COUNSELLING, pb.SERVICE_TYPE_VOCATIONAL_TRAINING],
    )
    assert list(REFERRALS.rows(referral)) == [
        (P1, "30-39", "610302", "心理咨询、职业技能培训", "转介")
    ]
    referral.action = pb.REFERRAL_ACTION_CLOSE
    ((*_, status),) = REFERRALS.rows(referral)
    assert status == "结束转介"
    change = pb.RosterChange(
        subject=pb.Subject(pseudonym=P1, age_band="30-39"),
        change_type=pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED,
        unit_code="610302",
        effective_date="2026-05-01",
    )
    assert list(CHANGES.rows(change)) == [(P1, "30-39", "期满解除矫正", "610302", "2026-05-01")]

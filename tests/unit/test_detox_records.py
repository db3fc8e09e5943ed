"""The 新航驿站 team's activity ledger → service.record messages (files and mapping only)."""

from __future__ import annotations

from pathlib import Path

from adapters.detox.formats import ACTIVITY_LEDGER, record_mapper
from gateway.client.connectors import FieldError, Outgoing, read_native
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

P1 = "P-ABCDEFGHIJKLMNOPQRST"
HEADER = (
    "活动编号,对象编号,所属区县,活动类型,活动形式,活动日期,活动时长(分钟),参与人数,"
    "活动效果,负责民警\n"
)


def mapped(
    tmp_path: Path, lines: str, encoding: str = "utf-8"
) -> list[Outgoing | list[FieldError]]:
    path = tmp_path / "ledger.csv"
    path.write_bytes((HEADER + lines).encode(encoding))
    mapper = record_mapper(Units.default())
    return [mapper.map_row(row) for row in read_native(path, ACTIVITY_LEDGER).rows]


def test_a_group_drug_education_event_in_gb18030_becomes_a_record(tmp_path: Path) -> None:
    [result] = mapped(
        tmp_path, f"XH-1,{P1},凤翔区,禁毒教育,集体,2026-04-02,120,48,已完成,王警官\n", "gb18030"
    )
    assert isinstance(result, Outgoing) and result.key == "活动编号 XH-1"
    assert result.payload == pb.ServiceRecord(
        record_id="XH-1",
        subject_pseudonyms=[P1],
        unit_code="610305",
        service_type=pb.SERVICE_TYPE_DRUG_EDUCATION,
        event_kind=pb.EVENT_KIND_GROUP,
        service_date="2026-04-02",
        duration_minutes=120,
        attendance=48,
        outcome=pb.SERVICE_OUTCOME_COMPLETED,
        provider="王警官",
    )


def test_the_teams_words_for_its_services_are_understood(tmp_path: Path) -> None:
    lines = "".join(
        f"XH-{n},{P1},610302,{word},个别,2026-04-02,30,,已完成,\n"
        for n, word in enumerate(["心理疏导", "法治教育", "就业指导", "义诊"])
    )
    types = [r.payload.service_type for r in mapped(tmp_path, lines) if isinstance(r, Outgoing)]
    assert types == [
        pb.SERVICE_TYPE_COUNSELLING,
        pb.SERVICE_TYPE_LEGAL_EDUCATION,
        pb.SERVICE_TYPE_EMPLOYMENT_GUIDANCE,
        pb.SERVICE_TYPE_FREE_CLINIC,
    ]


def test_a_service_the_team_does_not_offer_is_rejected_naming_what_it_offers(
    tmp_path: Path,
) -> None:
    [errors] = mapped(tmp_path, f"XH-9,{P1},610302,困境儿童帮扶,个别,2026-04-02,30,,已完成,\n")
    assert isinstance(errors, list) and [e.field for e in errors] == ["service_type"]
    assert "禁毒教育、心理疏导、法治教育、就业指导、义诊" in errors[0].reason

"""The detox centre's native files (新航驿站 帮教活动台账).

In: the 新航驿站 team's activity ledger (CSV or XLSX, Chinese or English
headers; ``silian detox columns`` lists them), one row per session or group
event, becomes ``service.record`` messages (see
``adapters.partner_services.records``). The team's services: 禁毒教育, 心理疏导,
法治教育, 就业指导, 义诊.

Out: the referrals and changes it received (``adapters.partner_services.exports``).
"""

from __future__ import annotations

from adapters.partner_services.records import Headers, ServiceRecordMapper, record_columns
from gateway.client.connectors import Labels
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

#: The services of the 新航驿站 team (活动类型), as its staff write them.
SERVICE_TYPES = Labels.of_enum(
    pb.ServiceType,
    "SERVICE_TYPE_",
    {
        pb.SERVICE_TYPE_DRUG_EDUCATION: ("禁毒教育", "禁毒宣传", "drug_education"),
        pb.SERVICE_TYPE_COUNSELLING: ("心理疏导", "心理咨询", "counselling"),
        pb.SERVICE_TYPE_LEGAL_EDUCATION: ("法治教育", "法制教育", "legal_education"),
        pb.SERVICE_TYPE_EMPLOYMENT_GUIDANCE: ("就业指导", "employment_guidance"),
        pb.SERVICE_TYPE_FREE_CLINIC: ("义诊", "free_clinic"),
    },
)

ACTIVITY_LEDGER = record_columns(
    "detox activity ledger (新航驿站 帮教活动台账)",
    Headers(
        record_id=("活动编号", "编号"),
        pseudonyms=("对象编号", "帮教对象编号"),
        unit=("所属区县", "区县代码", "区县"),
        service_type=("活动类型",),
        event_kind=("活动形式", "形式"),
        service_date=("活动日期", "日期"),
        duration=("活动时长(分钟)", "活动时长（分钟）", "时长(分钟)", "时长"),
        attendance=("参与人数", "参加人数"),
        outcome=("活动效果", "效果"),
        provider=("负责民警", "负责人"),
        notes=("备注",),
    ),
    SERVICE_TYPES,
)


def record_mapper(units: Units) -> ServiceRecordMapper:
    """The mapper of the 新航驿站 team's activity ledger."""
    return ServiceRecordMapper(ACTIVITY_LEDGER, SERVICE_TYPES, units)
